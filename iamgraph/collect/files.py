"""Build a snapshot from files users already have (layouts in docs/snapshot-format.md, "Inputs").

- ``aws iam get-account-authorization-details`` output: one file or several pages, policy documents
  as objects (what the AWS CLI and boto3 print) or URL-encoded JSON text (what the query API returns);
- an ``aws organizations`` export: a folder holding ``describe-organization.json`` and friends;
- resource-based policies under ``resource-policies/<account-id>/<region>/<service>/<name>.json``;
- IAM credential reports (the CSV, or ``aws iam get-credential-report`` JSON output);
- an IAM Identity Center export (``aws sso-admin`` / ``aws identitystore`` outputs; files_identity_center.py);
- S3 Block Public Access under ``public-access-block/`` (``aws s3control`` / ``aws s3api get-public-access-block``);
- KMS grants under ``kms-grants/<account-id>/<region>/<key-id>.json`` (``aws kms list-grants``).

Every problem is an ``InputError`` naming the file and the JSON path; no file in a given folder is
skipped without saying so (dotfiles excepted).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iamgraph import __version__
from iamgraph.collect.files_identity_center import IC_MARKER, IdentityCenterReader
from iamgraph.collect.files_json import Reader, read_json, reject_unconsumed
from iamgraph.errors import InputError
from iamgraph.model import is_account_id, try_parse
from iamgraph.snapshot.model import (
    RESOURCE_POLICY_CALLS,
    Account,
    CollectionError,
    DelegatedAdministrator,
    Group,
    IdentityCenter,
    InlinePolicy,
    InstanceProfile,
    ManagedPolicy,
    OrgAccount,
    Organization,
    OrgPolicy,
    OrgUnit,
    PolicyVersion,
    Resource,
    ResourceType,
    Role,
    RoleLastUsed,
    Snapshot,
    User,
)

# -- shapes of GetAccountAuthorizationDetails (botocore's iam service model; checked by a test)
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html
AUTH_TOP_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies", "IsTruncated", "Marker")
# NextToken: the AWS CLI's own pagination token (``--max-items``); ResponseMetadata: a boto3 dump.
AUTH_EXTRA_KEYS = ("NextToken", "ResponseMetadata")
USER_KEYS = (
    "Path", "UserName", "UserId", "Arn", "CreateDate", "UserPolicyList", "GroupList",
    "AttachedManagedPolicies", "PermissionsBoundary", "Tags",
)  # fmt: skip
GROUP_KEYS = (
    "Path",
    "GroupName",
    "GroupId",
    "Arn",
    "CreateDate",
    "GroupPolicyList",
    "AttachedManagedPolicies",
)
ROLE_KEYS = (
    "Path", "RoleName", "RoleId", "Arn", "CreateDate", "AssumeRolePolicyDocument", "InstanceProfileList",
    "RolePolicyList", "AttachedManagedPolicies", "PermissionsBoundary", "Tags", "RoleLastUsed",
)  # fmt: skip
INSTANCE_PROFILE_KEYS = (
    "Path",
    "InstanceProfileName",
    "InstanceProfileId",
    "Arn",
    "CreateDate",
    "Roles",
    "Tags",
)
NESTED_ROLE_KEYS = (
    "Path", "RoleName", "RoleId", "Arn", "CreateDate", "AssumeRolePolicyDocument", "Description",
    "MaxSessionDuration", "MaxSigninSessionDuration", "PermissionsBoundary", "Tags", "RoleLastUsed",
    "SourceRoleTemplate",
)  # fmt: skip
POLICY_KEYS = (
    "PolicyName", "PolicyId", "Arn", "Path", "DefaultVersionId", "AttachmentCount",
    "PermissionsBoundaryUsageCount", "IsAttachable", "Description", "CreateDate", "UpdateDate",
    "PolicyVersionList",
)  # fmt: skip
VERSION_KEYS = ("Document", "VersionId", "IsDefaultVersion", "CreateDate")
INLINE_KEYS = ("PolicyName", "PolicyDocument")
ATTACHED_KEYS = ("PolicyName", "PolicyArn")
BOUNDARY_KEYS = ("PermissionsBoundaryType", "PermissionsBoundaryArn")

ORG_MARKER = "describe-organization.json"
RESOURCE_DIR = "resource-policies"
BPA_DIR = "public-access-block"
GRANTS_DIR = "kms-grants"
BPA_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
"""Members of PublicAccessBlockConfiguration (s3control and s3 alike; checked by a test)."""
GRANT_KEYS = (
    "KeyId", "GrantId", "Name", "CreationDate", "GranteePrincipal", "RetiringPrincipal", "IssuingAccount",
    "Operations", "Constraints", "GranteeServicePrincipal", "RetiringServicePrincipal",
)  # fmt: skip
"""Members of KMS's GrantListEntry (checked by a test)."""
GRANT_CONSTRAINT_KEYS = ("EncryptionContextSubset", "EncryptionContextEquals", "SourceArn")
_CREDENTIAL_REPORT_HEADER = ("user", "arn")


def load_paths(
    paths: Sequence[str | Path],
    *,
    account_id: str | None = None,
    collected_at: str | None = None,
) -> Snapshot:
    """Read every input (files or folders) into one snapshot.

    ``account_id`` is used for inputs whose ARNs do not name an account (e.g. a page holding only
    AWS managed policies); an input whose ARNs name another account is an error.
    ``collected_at`` defaults to now: an import cannot know when the files were exported.
    """
    if account_id is not None and not is_account_id(account_id):
        raise InputError(f"--account-id {account_id!r} is not a 12-digit AWS account id")
    if not paths:
        raise InputError("no input files given")
    loader = _Loader(account_id)
    for p in paths:
        try:
            loader.add_path(Path(p))
        except OSError as exc:  # an unreadable folder or file met while walking
            raise InputError(f"cannot read: {exc.strerror}", source=str(exc.filename or p)) from None
    return loader.build(collected_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


# ---------------------------------------------------------------- account-level accumulation


@dataclass(slots=True)
class _Entry:
    """An item keyed by ARN, with the file it came from (for duplicate messages)."""

    value: Any
    source: str


@dataclass(slots=True)
class _AccountParts:
    users: dict[str, _Entry] = field(default_factory=dict)
    groups: dict[str, _Entry] = field(default_factory=dict)
    roles: dict[str, _Entry] = field(default_factory=dict)
    policies: dict[str, _Entry] = field(default_factory=dict)
    instance_profiles: dict[str, InstanceProfile] = field(default_factory=dict)
    resources: dict[str, _Entry] = field(default_factory=dict)
    credential_report: _Entry | None = None
    public_access_block: _Entry | None = None
    # page bookkeeping: files that were one page of several, and whether a last page was seen
    pages: list[str] = field(default_factory=list)
    saw_last_page: bool = False


def _put(store: dict[str, _Entry], key: str, value: Any, source: str, where: str, kind: str) -> None:
    old = store.get(key)
    if old is None:
        store[key] = _Entry(value, source)
    elif old.value != value:
        raise InputError(
            f"{kind} {key} is also in {old.source} with different contents; "
            "import one export per account (or all pages of one export)",
            source=source,
            location=where,
        )


class _Loader:
    def __init__(self, account_id: str | None) -> None:
        self.default_account = account_id
        self.accounts: dict[str, _AccountParts] = {}
        self.aws_managed: dict[str, tuple[ManagedPolicy, str]] = {}
        self.organization: tuple[Organization, str] | None = None
        self.identity_center: tuple[IdentityCenter, str] | None = None
        self.bucket_bpa: list[tuple[str, str, dict[str, bool], str]] = []
        """(account, bucket ARN, flags, file) from ``public-access-block/<account>/<bucket>.json``."""
        self.grants: list[tuple[str, str, list[dict[str, Any]], str]] = []
        """(account, key ARN, ListGrants entries, file) from ``kms-grants/``."""
        self.partitions: set[str] = set()
        self.unread: list[CollectionError] = []
        """Resource policies a file says could not be read (``"Error"``): recorded as the collector records them."""
        self.ownerless: list[tuple[str, bool]] = []
        """Authorization details files that name no account: (file, is_last_page)."""

    def acct(self, account_id: str) -> _AccountParts:
        return self.accounts.setdefault(account_id, _AccountParts())

    # -- dispatch

    def add_path(self, path: Path) -> None:
        if not path.exists():
            raise InputError("no such file or directory", source=str(path))
        if path.is_dir():
            self.add_dir(path)
        else:
            self.add_file(path)

    def add_dir(self, path: Path) -> None:
        if (path / ORG_MARKER).is_file():
            self.add_org_dir(path)
            return
        if (path / IC_MARKER).is_file():
            self.add_identity_center_dir(path)
            return
        if path.name == RESOURCE_DIR:
            self.add_resource_dir(path)
            return
        if path.name == BPA_DIR:
            self.add_bpa_dir(path)
            return
        if path.name == GRANTS_DIR:
            self.add_grants_dir(path)
            return
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue  # editor and OS droppings (.DS_Store); documented
            self.add_path(child)

    def add_file(self, path: Path) -> None:
        name = path.name.lower()
        if name.endswith(".csv"):
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
            self.add_credential_report_csv(path, raw)
            return
        if name.endswith((".json.gz", ".gz")):
            raise InputError(
                "compressed files are not read (an iamgraph snapshot? inputs are plain AWS CLI .json); "
                "decompress it or move it out of the input folder",
                source=str(path),
            )
        if not name.endswith(".json"):
            raise InputError(
                "not an input iamgraph knows (expected .json AWS CLI output or a credential report .csv)",
                source=str(path),
            )
        data = read_json(path)
        r = Reader(str(path))
        if isinstance(data, dict) and "schema_version" in data:
            raise InputError("this is an iamgraph snapshot already; read it directly", source=str(path))
        if isinstance(data, dict) and any(k in data for k in AUTH_TOP_KEYS):
            self.add_authorization_details(r, data)
            return
        if isinstance(data, dict) and "ReportFormat" in data and "Content" in data:
            self.add_credential_report_json(r, data)
            return
        if isinstance(data, dict) and "Organization" in data:
            raise InputError(
                f"an `aws organizations` export is read as a folder holding {ORG_MARKER} "
                "(see docs/snapshot-format.md); pass the folder",
                source=str(path),
            )
        keys = ", ".join(sorted(map(str, data)))[:200] if isinstance(data, dict) else ""
        raise InputError(
            "unrecognized input: expected `aws iam get-account-authorization-details` output "
            "(UserDetailList, GroupDetailList, RoleDetailList, Policies) or a credential report"
            + (f"; found keys {keys}" if keys else f"; found {type(data).__name__}"),
            source=str(path),
        )

    # -- get-account-authorization-details

    def add_authorization_details(self, r: Reader, data: dict[str, Any]) -> None:
        r.obj(data, "", AUTH_TOP_KEYS + AUTH_EXTRA_KEYS)
        users = [
            self.user(r, u, f"UserDetailList[{i}]")
            for i, u in enumerate(r.opt_list(data, "UserDetailList", ""))
        ]
        groups = [
            self.group(r, g, f"GroupDetailList[{i}]")
            for i, g in enumerate(r.opt_list(data, "GroupDetailList", ""))
        ]
        roles: list[tuple[Role, list[InstanceProfile]]] = []
        for i, raw in enumerate(r.opt_list(data, "RoleDetailList", "")):
            roles.append(self.role(r, raw, f"RoleDetailList[{i}]"))
        policies = [
            self.managed_policy(r, p, f"Policies[{i}]")
            for i, p in enumerate(r.opt_list(data, "Policies", ""))
        ]

        # Which account is this? Every ARN of a user, group, role or customer policy names it.
        owners: dict[str, str] = {}
        arns: list[tuple[str, str]] = [(u.arn, f"UserDetailList[{i}].Arn") for i, u in enumerate(users)]
        arns += [(g.arn, f"GroupDetailList[{i}].Arn") for i, g in enumerate(groups)]
        arns += [(p.arn, f"Policies[{i}].Arn") for i, p in enumerate(policies)]
        for arn, where in arns:
            self._owner(r, owners, arn, where)
        for i, (role, _) in enumerate(roles):
            self._owner(r, owners, role.arn, f"RoleDetailList[{i}].Arn")
        if len(owners) > 1:
            listed = ", ".join(f"{a} (at {w})" for a, w in sorted(owners.items()))
            raise r.fail(f"ARNs of more than one account in one file: {listed}", None)
        if owners:
            account_id = next(iter(owners))
            if self.default_account is not None and account_id != self.default_account:
                raise r.fail(
                    f"the ARNs name account {account_id}, not --account-id {self.default_account}",
                    owners[account_id],
                )
        elif self.default_account is not None:
            account_id = self.default_account
        else:
            account_id = None

        truncated = r.opt_bool(data, "IsTruncated", "")
        r.opt_string(data, "Marker", "")
        is_last = not (truncated or r.opt_string(data, "NextToken", ""))
        if account_id is None:
            # Nothing here names an account: only AWS managed policies, which pages list last
            # (users, groups, roles, then policies). Which account's page this is gets settled in
            # build(): the one account whose pages are incomplete, or the only account.
            for pol in policies:
                self._add_aws_managed(pol, r.source)
            self.ownerless.append((r.source, is_last))
            return
        parts = self.acct(account_id)
        if is_last:
            parts.saw_last_page = True
        else:
            parts.pages.append(r.source)
        for i, u in enumerate(users):
            _put(parts.users, u.arn, u, r.source, f"UserDetailList[{i}]", "user")
        for i, g in enumerate(groups):
            _put(parts.groups, g.arn, g, r.source, f"GroupDetailList[{i}]", "group")
        for i, (role, profiles) in enumerate(roles):
            _put(parts.roles, role.arn, role, r.source, f"RoleDetailList[{i}]", "role")
            for prof in profiles:
                known = parts.instance_profiles.get(prof.arn)
                if known is not None:
                    roles_union = sorted(set(known.roles) | set(prof.roles))
                    prof = known.model_copy(update={"roles": roles_union})
                parts.instance_profiles[prof.arn] = prof
        for i, pol in enumerate(policies):
            where = f"Policies[{i}]"
            if _is_aws_managed(pol.arn):
                self._add_aws_managed(pol, r.source)
            else:
                _put(parts.policies, pol.arn, pol, r.source, where, "customer managed policy")

    def _owner(self, r: Reader, owners: dict[str, str], arn: str, where: str) -> None:
        parsed = try_parse(arn)
        if parsed is None:
            raise r.fail(f"{arn!r} is not an ARN", where)
        self.partitions.add(parsed.partition)
        if parsed.account == "aws":
            return
        if not is_account_id(parsed.account):
            raise r.fail(f"the ARN {arn} has no 12-digit account id", where)
        owners.setdefault(parsed.account, where)

    def _add_aws_managed(self, pol: ManagedPolicy, source: str) -> None:
        known = self.aws_managed.get(pol.arn)
        if known is None:
            self.aws_managed[pol.arn] = (pol, source)
            return
        old, old_source = known
        if old == pol:
            return
        # The same AWS managed policy seen from two accounts. Versions are immutable, so a version id
        # names one document everywhere; the newer export says which version is the default.
        # Attachment counts are per account and cannot be merged into one number.
        versions = {v.version_id: v for v in old.versions}
        for v in pol.versions:
            if v.version_id in versions and versions[v.version_id].document != v.document:
                raise InputError(
                    f"AWS managed policy {pol.arn} version {v.version_id} has a different document in {old_source}",
                    source=source,
                )
            versions.setdefault(v.version_id, v)
        newer = pol if (pol.update_date or "") >= (old.update_date or "") else old
        merged = newer.model_copy(
            update={
                "versions": [
                    v.model_copy(update={"is_default": v.version_id == newer.default_version_id})
                    for v in sorted(versions.values(), key=lambda v: _version_sort_key(v.version_id))
                ],
                "attachment_count": old.attachment_count
                if old.attachment_count == pol.attachment_count
                else None,
                "permissions_boundary_usage_count": (
                    old.permissions_boundary_usage_count
                    if old.permissions_boundary_usage_count == pol.permissions_boundary_usage_count
                    else None
                ),
            }
        )
        self.aws_managed[pol.arn] = (merged, old_source)

    def inline(self, r: Reader, parent: dict[str, Any], key: str, where: str) -> list[InlinePolicy]:
        out = []
        names: set[str] = set()
        for i, raw in enumerate(r.opt_list(parent, key, where)):
            loc = f"{where}.{key}[{i}]"
            item = r.obj(raw, loc, INLINE_KEYS)
            name = r.string(item, "PolicyName", loc)
            if name in names:
                raise r.fail(f"inline policy {name!r} appears twice", loc)
            names.add(name)
            if "PolicyDocument" not in item:
                raise r.fail("missing required field PolicyDocument", loc)
            doc = r.policy(
                item["PolicyDocument"], f"{loc}.PolicyDocument", require_resource=True, principal=False
            )
            out.append(InlinePolicy(name=name, document=doc))
        return out

    def attached(self, r: Reader, parent: dict[str, Any], where: str) -> list[str]:
        out = []
        for i, raw in enumerate(r.opt_list(parent, "AttachedManagedPolicies", where)):
            loc = f"{where}.AttachedManagedPolicies[{i}]"
            item = r.obj(raw, loc, ATTACHED_KEYS)
            arn = r.string(item, "PolicyArn", loc)
            if try_parse(arn) is None:
                raise r.fail(f"{arn!r} is not an ARN", f"{loc}.PolicyArn")
            out.append(arn)
        return out

    def boundary(self, r: Reader, parent: dict[str, Any], where: str) -> str | None:
        if parent.get("PermissionsBoundary") is None:
            return None
        loc = f"{where}.PermissionsBoundary"
        item = r.obj(parent["PermissionsBoundary"], loc, BOUNDARY_KEYS)
        kind = r.opt_string(item, "PermissionsBoundaryType", loc)
        if kind not in (None, "PermissionsBoundaryPolicy"):
            # The only boundary type IAM defines: https://docs.aws.amazon.com/IAM/latest/APIReference/API_AttachedPermissionsBoundary.html
            raise r.fail(f"unknown permissions boundary type {kind!r}", f"{loc}.PermissionsBoundaryType")
        return r.string(item, "PermissionsBoundaryArn", loc)

    def user(self, r: Reader, raw: Any, where: str) -> User:
        u = r.obj(raw, where, USER_KEYS)
        groups = []
        for i, g in enumerate(r.opt_list(u, "GroupList", where)):
            if not isinstance(g, str):
                raise r.fail("a group name must be a string", f"{where}.GroupList[{i}]")
            groups.append(g)
        return User(
            arn=r.string(u, "Arn", where),
            name=r.string(u, "UserName", where),
            user_id=r.string(u, "UserId", where),
            path=r.opt_string(u, "Path", where) or "/",
            create_date=r.opt_string(u, "CreateDate", where),
            groups=groups,
            attached_managed_policies=self.attached(r, u, where),
            inline_policies=self.inline(r, u, "UserPolicyList", where),
            permissions_boundary=self.boundary(r, u, where),
            tags=r.tags(u, "Tags", where),
        )

    def group(self, r: Reader, raw: Any, where: str) -> Group:
        g = r.obj(raw, where, GROUP_KEYS)
        return Group(
            arn=r.string(g, "Arn", where),
            name=r.string(g, "GroupName", where),
            group_id=r.string(g, "GroupId", where),
            path=r.opt_string(g, "Path", where) or "/",
            create_date=r.opt_string(g, "CreateDate", where),
            attached_managed_policies=self.attached(r, g, where),
            inline_policies=self.inline(r, g, "GroupPolicyList", where),
        )

    def role(self, r: Reader, raw: Any, where: str) -> tuple[Role, list[InstanceProfile]]:
        ro = r.obj(raw, where, ROLE_KEYS)
        arn = r.string(ro, "Arn", where)
        if "AssumeRolePolicyDocument" not in ro:
            raise r.fail("missing required field AssumeRolePolicyDocument", where)
        trust = r.policy(ro["AssumeRolePolicyDocument"], f"{where}.AssumeRolePolicyDocument", principal=True)
        profiles: list[InstanceProfile] = []
        description: str | None = None
        max_session: int | None = None
        for i, praw in enumerate(r.opt_list(ro, "InstanceProfileList", where)):
            ploc = f"{where}.InstanceProfileList[{i}]"
            p = r.obj(praw, ploc, INSTANCE_PROFILE_KEYS)
            role_arns = []
            for j, nraw in enumerate(r.opt_list(p, "Roles", ploc)):
                nloc = f"{ploc}.Roles[{j}]"
                nested = r.obj(nraw, nloc, NESTED_ROLE_KEYS)
                narn = r.string(nested, "Arn", nloc)
                role_arns.append(narn)
                if narn == arn:
                    # RoleDetail lacks Description and MaxSessionDuration; the nested Role copy has them.
                    description = r.opt_string(nested, "Description", nloc)
                    max_session = r.opt_int(nested, "MaxSessionDuration", nloc)
            profiles.append(
                InstanceProfile(
                    arn=r.string(p, "Arn", ploc),
                    name=r.string(p, "InstanceProfileName", ploc),
                    instance_profile_id=r.opt_string(p, "InstanceProfileId", ploc),
                    path=r.opt_string(p, "Path", ploc) or "/",
                    roles=sorted(set(role_arns)),
                    create_date=r.opt_string(p, "CreateDate", ploc),
                    tags=r.tags(p, "Tags", ploc),
                )
            )
        last_used = None
        if ro.get("RoleLastUsed") is not None:
            lloc = f"{where}.RoleLastUsed"
            lu = r.obj(ro["RoleLastUsed"], lloc, ("LastUsedDate", "Region"))
            last_used = RoleLastUsed(
                last_used_date=r.opt_string(lu, "LastUsedDate", lloc), region=r.opt_string(lu, "Region", lloc)
            )
        role = Role(
            arn=arn,
            name=r.string(ro, "RoleName", where),
            role_id=r.string(ro, "RoleId", where),
            path=r.opt_string(ro, "Path", where) or "/",
            create_date=r.opt_string(ro, "CreateDate", where),
            description=description,
            max_session_duration=max_session,
            trust_policy=trust,
            attached_managed_policies=self.attached(r, ro, where),
            inline_policies=self.inline(r, ro, "RolePolicyList", where),
            permissions_boundary=self.boundary(r, ro, where),
            instance_profiles=sorted({p.arn for p in profiles}),
            tags=r.tags(ro, "Tags", where),
            last_used=last_used,
        )
        return role, profiles

    def managed_policy(self, r: Reader, raw: Any, where: str) -> ManagedPolicy:
        p = r.obj(raw, where, POLICY_KEYS)
        arn = r.string(p, "Arn", where)
        parsed = try_parse(arn)
        if parsed is None:
            raise r.fail(f"{arn!r} is not an ARN", f"{where}.Arn")
        default = r.string(p, "DefaultVersionId", where)
        versions = []
        seen: set[str] = set()
        for i, vraw in enumerate(r.opt_list(p, "PolicyVersionList", where)):
            vloc = f"{where}.PolicyVersionList[{i}]"
            v = r.obj(vraw, vloc, VERSION_KEYS)
            vid = r.string(v, "VersionId", vloc)
            if vid in seen:
                raise r.fail(f"version {vid} appears twice", vloc)
            seen.add(vid)
            if "Document" not in v:
                raise r.fail("missing required field Document", vloc)
            doc = r.policy(v["Document"], f"{vloc}.Document", require_resource=True, principal=False)
            is_default = r.opt_bool(v, "IsDefaultVersion", vloc)
            versions.append(
                PolicyVersion(
                    version_id=vid,
                    is_default=vid == default if is_default is None else is_default,
                    document=doc,
                    create_date=r.opt_string(v, "CreateDate", vloc),
                )
            )
        if default not in seen:
            # Without the default version's document nothing can say what the policy allows.
            raise r.fail(f"the default version {default} is not in PolicyVersionList", where)
        flagged = sorted(v.version_id for v in versions if v.is_default)
        if flagged != [default]:
            raise r.fail(
                f"DefaultVersionId is {default} but IsDefaultVersion marks {', '.join(flagged) or 'none'}",
                f"{where}.PolicyVersionList",
            )
        # moto omits PolicyName (see docs/TESTING-AWS notes); the ARN's last segment is the name.
        name = r.opt_string(p, "PolicyName", where) or parsed.resource_name
        path = r.opt_string(p, "Path", where)
        if path is None:
            resource = parsed.resource.split("/", 1)[1] if "/" in parsed.resource else parsed.resource
            path = "/" + resource[: -len(name)].lstrip("/") if resource.endswith(name) else "/"
        return ManagedPolicy(
            arn=arn,
            name=name,
            policy_id=r.opt_string(p, "PolicyId", where),
            path=path,
            default_version_id=default,
            versions=versions,
            attachment_count=r.opt_int(p, "AttachmentCount", where),
            permissions_boundary_usage_count=r.opt_int(p, "PermissionsBoundaryUsageCount", where),
            is_attachable=r.opt_bool(p, "IsAttachable", where) is not False,
            description=r.opt_string(p, "Description", where),
            create_date=r.opt_string(p, "CreateDate", where),
            update_date=r.opt_string(p, "UpdateDate", where),
        )

    # -- credential report

    def add_credential_report_json(self, r: Reader, data: dict[str, Any]) -> None:
        r.obj(data, "", ("Content", "ReportFormat", "GeneratedTime", "ResponseMetadata"))
        fmt = r.string(data, "ReportFormat", "")
        if fmt != "text/csv":
            raise r.fail(f"ReportFormat {fmt!r} is not text/csv", "ReportFormat")
        content = r.string(data, "Content", "")
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise r.fail(
                "Content is not base64 (the AWS CLI prints the report base64-encoded)", "Content"
            ) from None
        self.add_credential_report_csv(Path(r.source), raw, location_prefix="Content: ")

    def add_credential_report_csv(self, path: Path, raw: bytes, location_prefix: str = "") -> None:
        source = str(path)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text (byte offset {exc.start})",
                source=source,
                location=f"{location_prefix}byte {exc.start}",
            ) from None
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            raise InputError("the credential report is empty", source=source)
        header = rows[0]
        if any(col not in header for col in _CREDENTIAL_REPORT_HEADER):
            raise InputError(
                f"not an IAM credential report: the header has no {' or '.join(_CREDENTIAL_REPORT_HEADER)} column",
                source=source,
                location=f"{location_prefix}line 1",
            )
        if len(set(header)) != len(header):
            raise InputError("repeated column names", source=source, location=f"{location_prefix}line 1")
        owners: dict[str, int] = {}
        out: list[dict[str, str]] = []
        for n, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{len(row)} fields where the header has {len(header)}",
                    source=source,
                    location=f"{location_prefix}line {n}",
                )
            record = dict(zip(header, row, strict=True))
            acct = _account_in(record["arn"])
            if acct is None:
                raise InputError(
                    f"arn {record['arn']!r} names no account",
                    source=source,
                    location=f"{location_prefix}line {n}",
                )
            owners.setdefault(acct, n)
            out.append(record)
        if len(owners) > 1:
            raise InputError(
                f"rows of more than one account: {', '.join(sorted(owners))}",
                source=source,
                location=location_prefix or None,
            )
        account_id = next(iter(owners), None) or self.default_account
        if account_id is None:
            raise InputError(
                "the credential report has no rows naming an account; pass --account-id", source=source
            )
        if self.default_account is not None and account_id != self.default_account:
            raise InputError(
                f"the report is for account {account_id}, not --account-id {self.default_account}",
                source=source,
            )
        parts = self.acct(account_id)
        if parts.credential_report is not None and parts.credential_report.value != out:
            raise InputError(
                f"a different credential report of account {account_id} is also in {parts.credential_report.source}",
                source=source,
            )
        parts.credential_report = _Entry(out, source)

    # -- organizations export

    def add_org_dir(self, root: Path) -> None:
        if self.organization is not None:
            raise InputError(
                f"a second organizations export (the first is {self.organization[1]}); one snapshot holds one organization",
                source=str(root),
            )
        self.organization = (_OrgReader(root).read(), str(root))

    # -- Identity Center export

    def add_identity_center_dir(self, root: Path) -> None:
        if self.identity_center is not None:
            raise InputError(
                f"a second IAM Identity Center export (the first is {self.identity_center[1]}); one snapshot "
                "holds one instance",
                source=str(root),
            )
        self.identity_center = (IdentityCenterReader(root).read(), str(root))

    # -- S3 Block Public Access and KMS grants

    def add_bpa_dir(self, root: Path) -> None:
        layout = f"{BPA_DIR}/<account-id>.json or {BPA_DIR}/<account-id>/<bucket>.json"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).parts
            if any(part.startswith(".") for part in rel):
                continue
            source = str(path)
            account_id = _stem(Path(rel[0]))
            if len(rel) > 2 or not path.name.endswith(".json") or not is_account_id(account_id):
                raise InputError(f"not in the Block Public Access layout {layout}", source=source)
            r = Reader(source)
            data = r.obj(read_json(path), "", ("PublicAccessBlockConfiguration", "ResponseMetadata"))
            cfg = r.obj(data.get("PublicAccessBlockConfiguration"), "PublicAccessBlockConfiguration", BPA_FLAGS)
            flags: dict[str, bool] = {}
            for flag in BPA_FLAGS:
                value = r.opt_bool(cfg, flag, "PublicAccessBlockConfiguration")
                # An unset flag is off (the API's default).
                flags[flag] = value is True
            if len(rel) == 1:
                parts = self.acct(account_id)
                if parts.public_access_block is not None and parts.public_access_block.value != flags:
                    raise InputError(f"account {account_id} has two different Block Public Access files "
                                     f"(the other is {parts.public_access_block.source})", source=source)
                parts.public_access_block = _Entry(flags, source)
            else:
                bucket = _stem(path)
                self.bucket_bpa.append((account_id, f"arn:{self._partition()}:s3:::{bucket}", flags, source))

    def add_grants_dir(self, root: Path) -> None:
        layout = f"{GRANTS_DIR}/<account-id>/<region>/<key-id>.json"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).parts
            if any(part.startswith(".") for part in rel):
                continue
            source = str(path)
            if len(rel) != 3 or not path.name.endswith(".json") or not is_account_id(rel[0]):
                raise InputError(f"not in the KMS grants layout {layout}", source=source)
            account_id, region, key_id = rel[0], rel[1], _stem(path)
            key_arn = f"arn:{self._partition()}:kms:{region}:{account_id}:key/{key_id}"
            r = Reader(source)
            data = r.obj(read_json(path), "", ("Grants", "NextMarker", "Truncated", "ResponseMetadata"))
            if data.get("Truncated") is True or data.get("NextMarker"):
                raise r.fail("this is one page of several (Truncated/NextMarker); export without --max-items",
                             "Truncated")
            grants: list[dict[str, Any]] = []
            for i, raw in enumerate(r.lst(data.get("Grants"), "Grants")):
                loc = f"Grants[{i}]"
                g = r.obj(raw, loc, GRANT_KEYS)
                r.string(g, "GrantId", loc)
                key_of = r.opt_string(g, "KeyId", loc)
                if key_of is not None and key_of.startswith("arn:") and key_of != key_arn:
                    raise r.fail(f"a grant of key {key_of}, but the file is for {key_arn}", f"{loc}.KeyId")
                ops = r.lst(g.get("Operations", []), f"{loc}.Operations")
                if not all(isinstance(op, str) for op in ops):
                    raise r.fail("operations are names (strings)", f"{loc}.Operations")
                if g.get("Constraints") is not None:
                    r.obj(g["Constraints"], f"{loc}.Constraints", GRANT_CONSTRAINT_KEYS)
                grants.append(g)
            self.grants.append((account_id, key_arn, grants, source))

    def _attach_bpa_and_grants(self) -> None:
        """Bucket Block Public Access and KMS grants go to resources some other input holds: the
        bucket's policy (``"Policy": null`` for a bucket without one) and the key's key policy."""
        for account_id, arn, flags, source in self.bucket_bpa:
            entry = self.acct(account_id).resources.get(arn)
            if entry is None:
                raise InputError(
                    f"Block Public Access of bucket {arn}, which no input holds: add "
                    f'{RESOURCE_DIR}/{account_id}/global/s3/{arn.rsplit(":", 1)[-1]}.json (its get-bucket-policy '
                    f'output, or {{"Arn": "{arn}", "Policy": null}} for a bucket without a policy)',
                    source=source,
                )
            res: Resource = entry.value
            entry.value = res.model_copy(update={"attributes": {**res.attributes, "public_access_block": flags}})
        for account_id, arn, grants, source in self.grants:
            entry = self.acct(account_id).resources.get(arn)
            if entry is None:
                raise InputError(
                    f"grants of KMS key {arn}, whose key policy no input holds: add "
                    f"{RESOURCE_DIR}/{account_id}/{arn.split(':')[3]}/kms/{arn.rsplit('/', 1)[-1]}.json "
                    "(aws kms get-key-policy output)",
                    source=source,
                )
            res = entry.value
            entry.value = res.model_copy(update={"attributes": {**res.attributes, "grants": grants}})

    # -- resource policies

    def add_resource_dir(self, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).parts
            if any(part.startswith(".") for part in rel):
                continue
            self.add_resource_file(root, path, rel)

    def add_resource_file(self, root: Path, path: Path, rel: tuple[str, ...]) -> None:
        source = str(path)
        layout = f"{RESOURCE_DIR}/<account-id>/<region>/<service>/<name>.json"
        if len(rel) < 4 or not path.name.endswith(".json"):
            raise InputError(f"not in the resource policy layout {layout}", source=source)
        account_id, region, service = rel[0], rel[1], rel[2]
        if not is_account_id(account_id):
            raise InputError(f"{account_id!r} is not a 12-digit account id (layout: {layout})", source=source)
        name = "/".join(rel[3:])[: -len(".json")]
        r = Reader(source)
        data = read_json(path)
        res = _resource_from_cli_output(r, data, account_id, region, service, name, self._partition())
        if res.policy_unknown:
            err = data["Error"]
            self.unread.append(CollectionError(
                account_id=account_id, region=None if region == "global" else region, service=service,
                call=_POLICY_CALLS.get(service, "get-policy"), error_code=err["Code"],
                message=err.get("Message") or f"imported from {path.name}: the policy could not be read",
                resource=res.arn))
        parsed = try_parse(res.arn)
        if parsed is not None:
            # A derived ARN assumes the partition of the other inputs; a clash shows up in build().
            self.partitions.add(parsed.partition)
        acct_of_arn = _account_in(res.arn)
        if acct_of_arn is not None and acct_of_arn != account_id:
            raise InputError(
                f"the ARN {res.arn} names account {acct_of_arn}, but the file is under {account_id}",
                source=source,
            )
        _put(self.acct(account_id).resources, res.arn, res, source, "", "resource")

    def _partition(self) -> str:
        return next(iter(sorted(self.partitions)), "aws") if len(self.partitions) <= 1 else "aws"

    # -- assembly

    def _settle_ownerless(self) -> None:
        if not self.ownerless:
            return
        files = ", ".join(src for src, _ in self.ownerless)
        pending = [a for a, parts in self.accounts.items() if parts.pages and not parts.saw_last_page]
        with_iam = [a for a, parts in self.accounts.items() if parts.pages or parts.saw_last_page]
        if len(pending) == 1:
            owner = pending[0]
        elif not pending and len(with_iam) == 1:
            owner = with_iam[0]
        else:
            why = (
                f"the page sets of accounts {', '.join(sorted(pending))} are incomplete"
                if pending
                else "no other input says which account they belong to"
            )
            raise InputError(
                "no user, group, role or customer managed policy ARN tells which account this is, and "
                f"{why}; pass --account-id (importing one account at a time if need be)",
                source=files,
            )
        parts = self.acct(owner)
        parts.saw_last_page = parts.saw_last_page or any(last for _, last in self.ownerless)

    def build(self, collected_at: str) -> Snapshot:
        self._settle_ownerless()
        self._attach_bpa_and_grants()
        org_names = (
            {a.id: a.name for a in self.organization[0].accounts if a.name} if self.organization else {}
        )
        accounts = []
        for account_id in sorted(self.accounts):
            parts = self.accounts[account_id]
            if parts.pages and not parts.saw_last_page:
                raise InputError(
                    f"account {account_id}: every get-account-authorization-details page given is truncated "
                    "(IsTruncated/NextToken); the last page is missing",
                    source=", ".join(parts.pages),
                )
            accounts.append(
                Account(
                    account_id=account_id,
                    name=org_names.get(account_id),
                    users=[e.value for _, e in sorted(parts.users.items())],
                    groups=[e.value for _, e in sorted(parts.groups.items())],
                    roles=[e.value for _, e in sorted(parts.roles.items())],
                    policies=[e.value for _, e in sorted(parts.policies.items())],
                    instance_profiles=[p for _, p in sorted(parts.instance_profiles.items())],
                    resources=[e.value for _, e in sorted(parts.resources.items())],
                    credential_report=parts.credential_report.value if parts.credential_report else [],
                    public_access_block=parts.public_access_block.value if parts.public_access_block else None,
                )
            )
        if len(self.partitions) > 1:
            raise InputError(f"inputs from more than one partition: {', '.join(sorted(self.partitions))}")
        errors = [*self.unread, *(e for acct in accounts for e in self._missing_references(acct))]
        return Snapshot(
            collected_at=collected_at,
            source="import",
            tool_version=__version__,
            partition=self._partition(),
            organization=self.organization[0] if self.organization else None,
            accounts=accounts,
            aws_managed_policies=[p for _, (p, _) in sorted(self.aws_managed.items())],
            identity_center=self.identity_center[0] if self.identity_center else None,
            errors=errors,
        )

    def _missing_references(self, acct: Account) -> list[CollectionError]:
        """Policies and groups that principals refer to but the inputs do not hold.

        A filtered export (``--filter Role``) or a missing page leaves them out. What they grant is
        then unknown, and the snapshot says so instead of looking like "no policy".
        """
        have = set(self.aws_managed) | {p.arn for p in acct.policies}
        missing: dict[str, str] = {}
        for user in acct.users:
            for arn in [*user.attached_managed_policies, *filter(None, [user.permissions_boundary])]:
                missing.setdefault(arn, user.arn)
        for group in acct.groups:
            for arn in group.attached_managed_policies:
                missing.setdefault(arn, group.arn)
        for role in acct.roles:
            for arn in [*role.attached_managed_policies, *filter(None, [role.permissions_boundary])]:
                missing.setdefault(arn, role.arn)
        call = "GetAccountAuthorizationDetails"
        out = [
            CollectionError(
                account_id=acct.account_id,
                service="iam",
                call=call,
                error_code="NotInInput",
                message=f"{who} refers to this managed policy, but its document is not in the imported files; "
                "what it allows is unknown",
                resource=arn,
            )
            for arn, who in sorted(missing.items())
            if arn not in have
        ]
        groups = {g.name for g in acct.groups}
        absent: dict[str, str] = {}
        for user in acct.users:
            for name in user.groups:
                if name not in groups:
                    absent.setdefault(name, user.arn)
        out += [
            CollectionError(
                account_id=acct.account_id,
                service="iam",
                call=call,
                error_code="NotInInput",
                message=f"{who} is in group {name!r}, which is not in the imported files; its policies are unknown",
                resource=None,
            )
            for name, who in sorted(absent.items())
        ]
        return out


def _is_aws_managed(arn: str) -> bool:
    parsed = try_parse(arn)
    return parsed is not None and parsed.service == "iam" and parsed.account == "aws"


def _account_in(arn: str) -> str | None:
    parsed = try_parse(arn)
    return parsed.account if parsed is not None and is_account_id(parsed.account) else None


def _version_sort_key(version_id: str) -> tuple[int, str]:
    m = re.fullmatch(r"v(\d+)", version_id)
    return (int(m.group(1)), version_id) if m else (1 << 30, version_id)


# ---------------------------------------------------------------- resource policy files

_RESOURCE_TYPES: dict[str, ResourceType] = {
    "s3": "s3:bucket",
    "kms": "kms:key",
    "sqs": "sqs:queue",
    "sns": "sns:topic",
    "lambda": "lambda:function",
    "secretsmanager": "secretsmanager:secret",
    "ecr": "ecr:repository",
}


def _derived_arn(partition: str, service: str, region: str, account: str, name: str) -> str | None:
    """The ARN a resource name implies, per service; None when it cannot be derived (secret suffixes).

    Formats: https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
    """
    if service == "s3":
        return f"arn:{partition}:s3:::{name}"
    if service == "kms":
        return f"arn:{partition}:kms:{region}:{account}:key/{name}"
    if service in ("sqs", "sns"):
        return f"arn:{partition}:{service}:{region}:{account}:{name}"
    if service == "lambda":
        return f"arn:{partition}:lambda:{region}:{account}:function:{name}"
    if service == "ecr":
        return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"
    return None


_NO_POLICY = object()
_UNREAD = object()

_POLICY_CALLS: dict[str, str] = {
    # <service> folder -> the call that reads the resource's policy (one table with the collector and the queries)
    rtype.split(":", 1)[0]: call for rtype, call in RESOURCE_POLICY_CALLS.items()
}

_NO_POLICY_CODES: dict[str, frozenset[str]] = {
    # Error codes by which the call says the resource has no policy: absent, not unknown (the live collector
    # takes the same codes as "none"). Any other code leaves the policy unknown.
    "s3": frozenset({"NoSuchBucketPolicy"}),
    "ecr": frozenset({"RepositoryPolicyNotFoundException"}),
    "lambda": frozenset({"ResourceNotFoundException"}),
}


def _resource_from_cli_output(
    r: Reader, data: Any, account: str, region: str, service: str, name: str, partition: str
) -> Resource:
    """Accept the bare policy document, iamgraph's wrapper, or the AWS CLI output of the usual get-*-policy call."""
    r.obj(data, "")
    policy_raw: Any
    policy_where: str
    arn: str | None = None
    tags: dict[str, str] = {}
    if "Statement" in data:  # a bare policy document
        policy_raw, policy_where = data, ""
    elif "Error" in data:
        # The call failed: {"Arn"?, "Error": {"Code", "Message"?}}, the shape of an AWS error response. The
        # policy is unknown, not absent (unless the code says there is none), as the collector marks it.
        r.obj(data, "", ("Arn", "ARN", "Error", "Tags"))
        err = r.obj(data["Error"], "Error", ("Code", "Message"))
        code = r.string(err, "Code", "Error")
        r.opt_string(err, "Message", "Error")
        policy_raw, policy_where = (_NO_POLICY if code in _NO_POLICY_CODES.get(service, ()) else _UNREAD), "Error"
        arn = r.opt_string(data, "Arn", "") or r.opt_string(data, "ARN", "")
        tags = _file_tags(r, data)
    elif "Attributes" in data:  # sqs get-queue-attributes / sns get-topic-attributes
        attrs = r.obj(data["Attributes"], "Attributes")
        if "Policy" not in attrs:
            raise r.fail("no Policy attribute (ask for --attribute-names Policy)", "Attributes")
        policy_raw, policy_where = attrs["Policy"], "Attributes.Policy"
        arn = r.opt_string(attrs, "QueueArn", "Attributes") or r.opt_string(attrs, "TopicArn", "Attributes")
    else:
        # Policy: s3api get-bucket-policy, kms get-key-policy, lambda get-policy, iamgraph's wrapper;
        # ResourcePolicy: secretsmanager get-resource-policy; policyText: ecr get-repository-policy.
        key = next((k for k in ("Policy", "ResourcePolicy", "policyText") if k in data), None)
        if key is None:
            raise r.fail(
                "expected a policy document (Statement) or AWS CLI get-*-policy output "
                "(Policy, ResourcePolicy, policyText or Attributes.Policy)",
                None,
            )
        policy_raw, policy_where = data[key], key
        arn = r.opt_string(data, "Arn", "") or r.opt_string(data, "ARN", "")
        if policy_raw is None and key == "Policy" and service == "s3" and arn is not None:
            # iamgraph's wrapper saying "this bucket has no policy" (get-bucket-policy then fails
            # with NoSuchBucketPolicy), so its Block Public Access file has a bucket to go to.
            policy_raw = _NO_POLICY
        tags = _file_tags(r, data)
    unread = policy_raw is _UNREAD
    policy = None if policy_raw is _NO_POLICY or unread else r.policy(policy_raw, policy_where, principal=True)
    rtype: ResourceType = _RESOURCE_TYPES.get(service, "other")
    if arn is None:
        if "/" in name and service != "ecr":
            raise r.fail("sub-folders are for ECR repository names (which contain '/') only", None)
        if region == "global" and service != "s3":
            raise r.fail(f"a {service} resource has a region; 'global' is for S3 buckets only", None)
        arn = _derived_arn(partition, service, region, account, name)
        if arn is None:
            raise r.fail(
                f'cannot derive the ARN of a {service} resource from its file name; put it in the file as "Arn"',
                None,
            )
    parsed = try_parse(arn)
    if parsed is None:
        raise r.fail(f"{arn!r} is not an ARN", None)
    if parsed.service != service:
        raise r.fail(f"the ARN {arn} is not of service {service!r} (the folder it is in)", None)
    return Resource(
        arn=arn,
        type=rtype,
        region=None if service == "s3" or region == "global" else region,
        name=name.rsplit("/", 1)[-1] if service != "ecr" else name,
        policy=policy,
        policy_unknown=unread,
        tags=tags,
    )


def _file_tags(r: Reader, data: dict[str, Any]) -> dict[str, str]:
    """``Tags`` of a resource-policy file: an object or an IAM tag list (none when absent)."""
    if "Tags" not in data:
        return {}
    tags_raw = data["Tags"]
    if isinstance(tags_raw, dict):
        tags = {str(k): v for k, v in tags_raw.items() if isinstance(v, str)}
        if len(tags) != len(tags_raw):
            raise r.fail("tag values must be strings", "Tags")
        return tags
    return r.tags(data, "Tags", "")


# ---------------------------------------------------------------- organizations export


class _OrgReader:
    """Reads the organizations export folder (layout in docs/snapshot-format.md)."""

    FILES = ("describe-organization.json", "list-roots.json", "list-accounts.json")
    DIRS = (
        "list-organizational-units-for-parent",
        "list-accounts-for-parent",
        "list-parents",
        "list-policies",
        "describe-policy",
        "list-targets-for-policy",
        "list-delegated-services-for-account",
    )
    POLICY_TYPES = ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.consumed: set[Path] = set()

    def load(self, rel: str, keys: Iterable[str]) -> tuple[Reader, dict[str, Any]]:
        path = self.root / rel
        if not path.is_file():
            raise InputError(
                "missing file of the organizations export (see docs/snapshot-format.md)", source=str(path)
            )
        self.consumed.add(path)
        r = Reader(str(path))
        data = r.obj(read_json(path), "", (*keys, "NextToken", "ResponseMetadata"))
        if data.get("NextToken"):
            # One page of several: the rest would be silently missing.
            raise r.fail("this is one page of several (NextToken); export without --max-items", "NextToken")
        return r, data

    def dir_files(self, name: str) -> list[Path]:
        d = self.root / name
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))

    def read(self) -> Organization:
        r, data = self.load("describe-organization.json", ("Organization",))
        o = r.obj(data.get("Organization"), "Organization")
        org_id = r.string(o, "Id", "Organization")
        mgmt = r.string(o, "MasterAccountId", "Organization")
        org_arn = r.opt_string(o, "Arn", "Organization")
        feature_set = r.opt_string(o, "FeatureSet", "Organization")

        r, data = self.load("list-roots.json", ("Roots",))
        roots = r.lst(data.get("Roots"), "Roots")
        if len(roots) != 1:
            raise r.fail(f"an organization has exactly one root; found {len(roots)}", "Roots")
        root = r.obj(roots[0], "Roots[0]", ("Id", "Arn", "Name", "PolicyTypes"))
        root_id = r.string(root, "Id", "Roots[0]")
        root_arn = r.opt_string(root, "Arn", "Roots[0]")
        enabled = []
        for i, pt in enumerate(r.opt_list(root, "PolicyTypes", "Roots[0]")):
            loc = f"Roots[0].PolicyTypes[{i}]"
            item = r.obj(pt, loc, ("Type", "Status"))
            if r.string(item, "Status", loc) == "ENABLED":
                enabled.append(r.string(item, "Type", loc))

        ous: dict[str, OrgUnit] = {}
        for path in self.dir_files("list-organizational-units-for-parent"):
            parent = _stem(path)
            r, data = self.load(f"list-organizational-units-for-parent/{path.name}", ("OrganizationalUnits",))
            for i, raw in enumerate(r.lst(data.get("OrganizationalUnits"), "OrganizationalUnits")):
                loc = f"OrganizationalUnits[{i}]"
                item = r.obj(raw, loc, ("Id", "Arn", "Name", "Path"))
                ou_id = r.string(item, "Id", loc)
                ous[ou_id] = OrgUnit(
                    id=ou_id,
                    arn=r.opt_string(item, "Arn", loc),
                    name=r.string(item, "Name", loc),
                    parent_id=parent,
                )
        for ou in ous.values():
            if ou.parent_id != root_id and ou.parent_id not in ous:
                raise InputError(
                    f"parent {ou.parent_id} of OU {ou.id} is neither the root nor a listed OU",
                    source=str(self.root / "list-organizational-units-for-parent" / f"{ou.parent_id}.json"),
                )

        parents: dict[str, str] = {}
        for path in self.dir_files("list-accounts-for-parent"):
            r, data = self.load(f"list-accounts-for-parent/{path.name}", ("Accounts",))
            for i, raw in enumerate(r.lst(data.get("Accounts"), "Accounts")):
                acc = r.obj(raw, f"Accounts[{i}]")
                parents[r.string(acc, "Id", f"Accounts[{i}]")] = _stem(path)
        for path in self.dir_files("list-parents"):
            r, data = self.load(f"list-parents/{path.name}", ("Parents",))
            plist = r.lst(data.get("Parents"), "Parents")
            if len(plist) != 1:
                raise r.fail(f"an account has exactly one parent; found {len(plist)}", "Parents")
            parents[_stem(path)] = r.string(r.obj(plist[0], "Parents[0]", ("Id", "Type")), "Id", "Parents[0]")

        r, data = self.load("list-accounts.json", ("Accounts",))
        account_keys = (
            "Id",
            "Arn",
            "Email",
            "Name",
            "Status",
            "State",
            "Paths",
            "JoinedMethod",
            "JoinedTimestamp",
        )
        accounts = []
        for i, raw in enumerate(r.lst(data.get("Accounts"), "Accounts")):
            loc = f"Accounts[{i}]"
            acc = r.obj(raw, loc, account_keys)
            aid = r.string(acc, "Id", loc)
            parent_of = parents.get(aid)
            if parent_of is None:
                raise r.fail(
                    f"no parent known for account {aid}: add list-accounts-for-parent/<parent-id>.json "
                    f"or list-parents/{aid}.json (without it the SCPs above the account are unknown)",
                    loc,
                )
            if parent_of != root_id and parent_of not in ous:
                raise r.fail(f"parent {parent_of} of account {aid} is neither the root nor a listed OU", loc)
            accounts.append(
                OrgAccount(
                    id=aid,
                    arn=r.opt_string(acc, "Arn", loc),
                    name=r.opt_string(acc, "Name", loc),
                    email=r.opt_string(acc, "Email", loc),
                    status=r.opt_string(acc, "Status", loc) or r.opt_string(acc, "State", loc),
                    parent_id=parent_of,
                    joined_method=r.opt_string(acc, "JoinedMethod", loc),
                    joined_timestamp=r.opt_string(acc, "JoinedTimestamp", loc),
                )
            )
        known_ids = {a.id for a in accounts}
        for aid in parents:
            if aid not in known_ids:
                raise InputError(
                    f"account {aid} has a parent file but is not in list-accounts.json", source=str(self.root)
                )

        policies = self.read_policies()
        delegated = []
        for path in self.dir_files("list-delegated-services-for-account"):
            r, data = self.load(f"list-delegated-services-for-account/{path.name}", ("DelegatedServices",))
            for i, raw in enumerate(r.lst(data.get("DelegatedServices"), "DelegatedServices")):
                loc = f"DelegatedServices[{i}]"
                svc = r.obj(raw, loc, ("ServicePrincipal", "DelegationEnabledDate"))
                delegated.append(
                    DelegatedAdministrator(
                        account_id=_stem(path), service_principal=r.string(svc, "ServicePrincipal", loc)
                    )
                )

        self.check_all_consumed()
        return Organization(
            id=org_id,
            arn=org_arn,
            management_account_id=mgmt,
            root_id=root_id,
            root_arn=root_arn,
            feature_set=feature_set,
            enabled_policy_types=sorted(enabled),
            organizational_units=sorted(ous.values(), key=lambda u: u.id),
            accounts=sorted(accounts, key=lambda a: a.id),
            policies=policies,
            delegated_administrators=delegated,
        )

    def read_policies(self) -> list[OrgPolicy]:
        out: list[OrgPolicy] = []
        valid_targets: set[str] = set()
        for path in self.dir_files("list-policies"):
            ptype = _stem(path)
            if ptype not in self.POLICY_TYPES:
                raise InputError(
                    f"policy type {ptype!r} is not read by iamgraph (only {', '.join(self.POLICY_TYPES)}); "
                    "remove the file",
                    source=str(path),
                )
            r, data = self.load(f"list-policies/{path.name}", ("Policies",))
            for i, raw in enumerate(r.lst(data.get("Policies"), "Policies")):
                loc = f"Policies[{i}]"
                summary = r.obj(raw, loc, ("Id", "Arn", "Name", "Description", "Type", "AwsManaged"))
                pid = r.string(summary, "Id", loc)
                dr, ddata = self.load(f"describe-policy/{pid}.json", ("Policy",))
                pol = dr.obj(ddata.get("Policy"), "Policy", ("PolicySummary", "Content"))
                ds = dr.obj(pol.get("PolicySummary"), "Policy.PolicySummary")
                if ds.get("Id") != pid:
                    raise dr.fail(f"describes policy {ds.get('Id')!r}, not {pid}", "Policy.PolicySummary.Id")
                doc = dr.policy(dr.string(pol, "Content", "Policy"), "Policy.Content")
                tr, tdata = self.load(f"list-targets-for-policy/{pid}.json", ("Targets",))
                targets = []
                for j, traw in enumerate(tr.lst(tdata.get("Targets"), "Targets")):
                    t = tr.obj(traw, f"Targets[{j}]", ("TargetId", "Arn", "Name", "Type"))
                    targets.append(tr.string(t, "TargetId", f"Targets[{j}]"))
                valid_targets.update(targets)
                out.append(
                    OrgPolicy(
                        id=pid,
                        arn=r.opt_string(summary, "Arn", loc),
                        name=r.string(summary, "Name", loc),
                        type=ptype,  # type: ignore[arg-type]  # checked against POLICY_TYPES above
                        aws_managed=r.opt_bool(summary, "AwsManaged", loc) is True,
                        description=r.opt_string(summary, "Description", loc),
                        document=doc,
                        targets=sorted(targets),
                    )
                )
        return sorted(out, key=lambda p: p.id)

    def check_all_consumed(self) -> None:
        reject_unconsumed(
            self.root, self.consumed, "organizations export", "unknown name, or a policy/parent file nothing refers to"
        )


def _stem(path: Path) -> str:
    return path.name[: -len(".json")] if path.name.endswith(".json") else path.name


__all__ = ["load_paths"]
