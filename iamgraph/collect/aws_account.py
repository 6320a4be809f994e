"""One account: IAM (authorization details, credential report, providers, keys), resource policies, compute."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

from iamgraph.collect.aws_api import (
    GLOBAL_REGION,
    Clients,
    ErrorLog,
    call,
    document,
    iso,
    pages,
    tags_of,
    token_pages,
)
from iamgraph.snapshot.model import (
    AccessKey,
    Account,
    Compute,
    ComputeKind,
    Group,
    InlinePolicy,
    InstanceProfile,
    ManagedPolicy,
    OidcProvider,
    PolicyVersion,
    Resource,
    Role,
    RoleLastUsed,
    SamlProvider,
    User,
)

AWS_POLICY_MARK = ":iam::aws:policy/"
"""AWS managed policy ARNs are ``arn:<partition>:iam::aws:policy/...``."""


@dataclass(slots=True, kw_only=True)
class AccountParts:
    """What one account yields: its Account, the AWS managed policies it references."""

    account: Account
    aws_managed_policies: list[ManagedPolicy] = field(default_factory=list)


Step = Callable[[str], None]


def collect_account(
    *,
    account_id: str,
    name: str | None,
    clients: Clients,
    log: ErrorLog,
    regions: list[str] | None,
    pool: Executor,
    step: Step,
    sleep: Callable[[float], None] = time.sleep,
) -> AccountParts:
    """Read one account. Every failure of a call, an item or a service's part is recorded in ``log``; only the
    run's own stops (``CollectorError``, ``Cancelled``) raise, and whatever else escapes costs the account
    (``aws._account_job`` records it)."""
    step("regions")
    region_list = regions if regions is not None else enabled_regions(clients, log)

    # Regional work starts first so it runs while the global IAM reads go on in this thread.
    futures: list[Future[tuple[list[Resource], list[Compute]]]] = [
        pool.submit(_regional, clients, log, region) for region in region_list
    ]

    step("iam")
    acct, aws_managed = _iam(clients, log, account_id=account_id, name=name, sleep=sleep)
    step("s3")
    with log.guard(service="s3", call="*", region=GLOBAL_REGION):
        acct.resources.extend(_s3(clients, log, account_id))
    with log.guard(service="s3control", call="GetPublicAccessBlock", region=GLOBAL_REGION):
        acct.public_access_block = _account_bpa(clients, log, account_id)
    step("regions")
    for fut in futures:
        resources, compute = fut.result()
        acct.resources.extend(resources)
        acct.compute.extend(compute)
    acct.regions = sorted(region_list)
    _resolve_role_names(acct)
    _resolve_profile_names(acct, clients.partition)
    acct.resources.sort(key=lambda r: (r.type, r.arn))
    acct.compute.sort(key=lambda c: (c.kind, c.arn))
    return AccountParts(account=acct, aws_managed_policies=aws_managed)


def _resolve_role_names(acct: Account) -> None:
    """Compute that names its role by name only (Glue, SSM hybrid) gets the ARN of that role in the account.

    A role name is unique in an account whatever its path, but the ARN includes the path, so it can
    only be formed from the role list: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html
    """
    by_name = {r.name: r.arn for r in acct.roles}
    for i, c in enumerate(acct.compute):
        name = c.attributes.get("role_name")
        if c.role_arn is None and isinstance(name, str) and name in by_name:
            acct.compute[i] = c.model_copy(update={"role_arn": by_name[name]})


PROFILE_NAMES = "version_profile_names"
"""Launch template versions that name their instance profile by name: resolved by ``_resolve_profile_names``."""


def _resolve_profile_names(acct: Account, partition: str) -> None:
    """Launch template versions that give ``IamInstanceProfile.Name`` get the ARN of that profile.

    Like role names, an instance profile name is unique in an account but its ARN carries the path, so
    the ARN comes from the account's profile list; a name not in the list (the profile is gone, or IAM
    could not be read) gets the ARN without a path.
    """
    by_name = {p.name: p.arn for p in acct.instance_profiles}
    for i, c in enumerate(acct.compute):
        names = c.attributes.get(PROFILE_NAMES)
        if c.kind != "ec2_launch_template" or not isinstance(names, dict):
            continue
        versions = dict(c.attributes.get("version_profiles") or {})
        for version, name in names.items():
            versions[version] = by_name.get(
                name, f"arn:{partition}:iam::{acct.account_id}:instance-profile/{name}"
            )
        attrs = {k: v for k, v in c.attributes.items() if k != PROFILE_NAMES}
        attrs["version_profiles"] = versions
        default = versions.get(str(attrs.get("default_version")))
        acct.compute[i] = c.model_copy(update={"attributes": attrs, "instance_profile_arn": default})


def enabled_regions(clients: Clients, log: ErrorLog) -> list[str]:
    """Regions enabled for the account (opt-in regions that are not enabled are left out by AWS)."""
    res = call(clients.get("ec2"), "DescribeRegions", log, region=GLOBAL_REGION)
    if not isinstance(res, dict):
        return [GLOBAL_REGION]
    return sorted(r["RegionName"] for r in res.get("Regions", []))


# ---------------------------------------------------------------- IAM


def _iam(
    clients: Clients, log: ErrorLog, *, account_id: str, name: str | None, sleep: Callable[[float], None]
) -> tuple[Account, list[ManagedPolicy]]:
    iam = clients.get("iam")
    users: list[User] = []
    groups: list[Group] = []
    roles: list[Role] = []
    local: list[ManagedPolicy] = []
    aws: list[ManagedPolicy] = []
    profiles: dict[str, InstanceProfile] = {}
    details = "GetAccountAuthorizationDetails"
    for page in pages(iam, details, log, region=None, PaginationConfig={"PageSize": 1000}):
        # One principal or policy that cannot be read (a malformed entry, a document that is not JSON) is
        # recorded under its ARN and costs only itself.
        for u in page.get("UserDetailList", []):
            with log.guard(service="iam", call=details, region=None, resource=_arn_of(u)):
                users.append(_user(u))
        for g in page.get("GroupDetailList", []):
            with log.guard(service="iam", call=details, region=None, resource=_arn_of(g)):
                groups.append(_group(g))
        for r in page.get("RoleDetailList", []):
            with log.guard(service="iam", call=details, region=None, resource=_arn_of(r)):
                role = _role(r)
                role_profiles = [_profile(p) for p in r.get("InstanceProfileList", [])]
                roles.append(role)
                profiles.update((ip.arn, ip) for ip in role_profiles)
        for p in page.get("Policies", []):
            with log.guard(service="iam", call=details, region=None, resource=_arn_of(p)):
                mp = _managed_policy(p)
                (aws if AWS_POLICY_MARK in mp.arn else local).append(mp)

    # The authorization details' RoleDetail has no Description or MaxSessionDuration; ListRoles does:
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_RoleDetail.html
    extra: dict[str, dict[str, Any]] = {}
    for page in pages(iam, "ListRoles", log, region=None, PaginationConfig={"PageSize": 1000}):
        for r in page.get("Roles", []):
            if isinstance(r, dict) and isinstance(r.get("Arn"), str):
                extra[r["Arn"]] = r
    for i, role in enumerate(roles):
        more = extra.get(role.arn)
        if more is not None:
            with log.guard(service="iam", call="ListRoles", region=None, resource=role.arn):
                # Validated, so a malformed value is this role's recorded failure, not a broken snapshot later.
                roles[i] = Role.model_validate(
                    role.model_dump()
                    | {
                        "description": more.get("Description") or None,
                        "max_session_duration": more.get("MaxSessionDuration"),
                    }
                )

    for page in pages(iam, "ListInstanceProfiles", log, region=None):
        for p in page.get("InstanceProfiles", []):
            with log.guard(service="iam", call="ListInstanceProfiles", region=None, resource=_arn_of(p)):
                ip = _profile(p)
                profiles[ip.arn] = ip

    report = _credential_report(iam, log, sleep)
    by_user = {row.get("user"): row for row in report}
    for i, u in enumerate(users):
        row = by_user.get(u.name)
        with log.guard(service="iam", call="ListAccessKeys", region=None, resource=u.arn):
            update: dict[str, Any] = {
                "access_keys": _access_keys(iam, log, u.name),
                "mfa_devices": _mfa_devices(iam, log, u.name),
            }
            if row is not None and row.get("password_enabled") in ("true", "false"):
                update["has_console_password"] = row["password_enabled"] == "true"
            users[i] = u.model_copy(update=update)

    alias = None
    res = call(iam, "ListAccountAliases", log, region=None)
    if isinstance(res, dict) and res.get("AccountAliases"):
        alias = res["AccountAliases"][0]

    acct = Account(
        account_id=account_id,
        name=name,
        alias=alias,
        users=sorted(users, key=lambda x: x.arn),
        groups=sorted(groups, key=lambda x: x.arn),
        roles=sorted(roles, key=lambda x: x.arn),
        policies=sorted(local, key=lambda x: x.arn),
        instance_profiles=sorted(profiles.values(), key=lambda x: x.arn),
        saml_providers=_saml(iam, log),
        oidc_providers=_oidc(iam, log),
        credential_report=report,
    )
    return acct, _referenced_aws_policies(acct, aws)


def _referenced_aws_policies(acct: Account, aws: list[ManagedPolicy]) -> list[ManagedPolicy]:
    """AWS managed policies in use in this account.

    Real AWS lists only attached AWS managed policies in GetAccountAuthorizationDetails (moto lists
    all ~1,500); keep those attached or used as a boundary, by count or by reference.
    """
    used: set[str] = set()
    for u in acct.users:
        used.update(u.attached_managed_policies)
        used.update([u.permissions_boundary] if u.permissions_boundary else [])
    for g in acct.groups:
        used.update(g.attached_managed_policies)
    for r in acct.roles:
        used.update(r.attached_managed_policies)
        used.update([r.permissions_boundary] if r.permissions_boundary else [])
    keep = [
        p
        for p in aws
        if p.arn in used or (p.attachment_count or 0) > 0 or (p.permissions_boundary_usage_count or 0) > 0
    ]
    # Attachment counts are per account; the snapshot stores each AWS policy once, for all accounts.
    return [
        p.model_copy(update={"attachment_count": None, "permissions_boundary_usage_count": None})
        for p in keep
    ]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _arn_of(item: Any) -> str | None:
    """The ARN an answer's item names, for the record of its failure (None when even that is missing)."""
    arn = item.get("Arn") if isinstance(item, dict) else None
    return arn if isinstance(arn, str) else None


def _inline(items: Iterable[dict[str, Any]]) -> list[InlinePolicy]:
    out = []
    for p in items:
        doc = document(p.get("PolicyDocument"))
        out.append(InlinePolicy(name=p["PolicyName"], document=doc or {}))
    return sorted(out, key=lambda x: x.name)


def _attached(items: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(p["PolicyArn"] for p in items)


def _boundary(item: dict[str, Any]) -> str | None:
    pb = item.get("PermissionsBoundary")
    return str(pb["PermissionsBoundaryArn"]) if pb else None


def _user(u: dict[str, Any]) -> User:
    return User(
        arn=u["Arn"],
        name=u["UserName"],
        user_id=u["UserId"],
        path=u.get("Path", "/"),
        create_date=iso(u.get("CreateDate")),
        groups=sorted(u.get("GroupList", [])),
        attached_managed_policies=_attached(u.get("AttachedManagedPolicies", [])),
        inline_policies=_inline(u.get("UserPolicyList", [])),
        permissions_boundary=_boundary(u),
        tags=tags_of(u.get("Tags")),
    )


def _group(g: dict[str, Any]) -> Group:
    return Group(
        arn=g["Arn"],
        name=g["GroupName"],
        group_id=g["GroupId"],
        path=g.get("Path", "/"),
        create_date=iso(g.get("CreateDate")),
        attached_managed_policies=_attached(g.get("AttachedManagedPolicies", [])),
        inline_policies=_inline(g.get("GroupPolicyList", [])),
    )


def _role(r: dict[str, Any]) -> Role:
    last = r.get("RoleLastUsed") or {}
    return Role(
        arn=r["Arn"],
        name=r["RoleName"],
        role_id=r["RoleId"],
        path=r.get("Path", "/"),
        create_date=iso(r.get("CreateDate")),
        description=r.get("Description") or None,
        max_session_duration=r.get("MaxSessionDuration"),
        trust_policy=document(r.get("AssumeRolePolicyDocument")) or {},
        attached_managed_policies=_attached(r.get("AttachedManagedPolicies", [])),
        inline_policies=_inline(r.get("RolePolicyList", [])),
        permissions_boundary=_boundary(r),
        instance_profiles=sorted(p["Arn"] for p in r.get("InstanceProfileList", [])),
        tags=tags_of(r.get("Tags")),
        last_used=(
            RoleLastUsed(last_used_date=iso(last.get("LastUsedDate")), region=last.get("Region"))
            if last.get("LastUsedDate") or last.get("Region")
            else None
        ),
    )


def _profile(p: dict[str, Any]) -> InstanceProfile:
    return InstanceProfile(
        arn=p["Arn"],
        name=p["InstanceProfileName"],
        instance_profile_id=p.get("InstanceProfileId"),
        path=p.get("Path", "/"),
        roles=sorted(r["Arn"] for r in p.get("Roles", [])),
        create_date=iso(p.get("CreateDate")),
        tags=tags_of(p.get("Tags")),
    )


def _managed_policy(p: dict[str, Any]) -> ManagedPolicy:
    arn = p["Arn"]
    versions = [
        PolicyVersion(
            version_id=v["VersionId"],
            is_default=bool(v.get("IsDefaultVersion")),
            document=document(v.get("Document")) or {},
            create_date=iso(v.get("CreateDate")),
        )
        for v in p.get("PolicyVersionList", [])
    ]
    return ManagedPolicy(
        arn=arn,
        # moto omits PolicyName; the name is the last part of the ARN in real AWS too.
        name=p.get("PolicyName") or arn.rsplit("/", 1)[-1],
        policy_id=p.get("PolicyId"),
        path=p.get("Path", "/"),
        default_version_id=p.get("DefaultVersionId", "v1"),
        versions=sorted(versions, key=lambda v: _version_key(v.version_id)),
        attachment_count=p.get("AttachmentCount"),
        permissions_boundary_usage_count=p.get("PermissionsBoundaryUsageCount"),
        is_attachable=p.get("IsAttachable", True),
        description=p.get("Description") or None,
        create_date=iso(p.get("CreateDate")),
        update_date=iso(p.get("UpdateDate")),
    )


def _version_key(version_id: str) -> tuple[int, str]:
    digits = version_id.lstrip("v")
    return (int(digits), version_id) if digits.isdigit() else (1 << 30, version_id)


def _credential_report(
    iam: BaseClient, log: ErrorLog, sleep: Callable[[float], None]
) -> list[dict[str, str]]:
    # The report is generated asynchronously; GetCredentialReport fails with ReportInProgress (or
    # ReportNotPresent) until it is ready: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html
    delay = 0.5
    for _ in range(12):
        res = call(iam, "GenerateCredentialReport", log, region=None)
        if res is None:
            return []
        got = call(
            iam,
            "GetCredentialReport",
            log,
            region=None,
            missing=("ReportInProgress", "ReportNotPresent", "ReportExpired"),
        )
        if got is None:
            return []
        if isinstance(got, dict):
            content = got.get("Content", b"")
            text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
            return [dict(row) for row in csv.DictReader(io.StringIO(text))]
        sleep(delay)
        delay = min(delay * 2, 8.0)
    log.add(
        service="iam",
        call="GetCredentialReport",
        error_code="ReportInProgress",
        message="report not ready in time",
    )
    return []


def _access_keys(iam: BaseClient, log: ErrorLog, user: str) -> list[AccessKey]:
    out = []
    for page in pages(iam, "ListAccessKeys", log, region=None, resource=user, UserName=user):
        for k in page.get("AccessKeyMetadata", []):
            key_id = k["AccessKeyId"]
            used = call(iam, "GetAccessKeyLastUsed", log, region=None, resource=key_id, AccessKeyId=key_id)
            last = used.get("AccessKeyLastUsed", {}) if isinstance(used, dict) else {}
            out.append(
                AccessKey(
                    access_key_id=key_id,
                    status=k["Status"],
                    create_date=iso(k.get("CreateDate")),
                    last_used_date=iso(last.get("LastUsedDate")),
                    last_used_service=_na(last.get("ServiceName")),
                    last_used_region=_na(last.get("Region")),
                )
            )
    return sorted(out, key=lambda k: k.access_key_id)


def _na(value: Any) -> str | None:
    # GetAccessKeyLastUsed says "N/A" for a key never used.
    return None if value in (None, "", "N/A") else str(value)


def _mfa_devices(iam: BaseClient, log: ErrorLog, user: str) -> list[str]:
    out: list[str] = []
    for page in pages(iam, "ListMFADevices", log, region=None, resource=user, UserName=user):
        out.extend(d["SerialNumber"] for d in page.get("MFADevices", []))
    return sorted(out)


def _saml(iam: BaseClient, log: ErrorLog) -> list[SamlProvider]:
    res = call(iam, "ListSAMLProviders", log, region=None)
    out = []
    for p in res.get("SAMLProviderList", []) if isinstance(res, dict) else []:
        arn = p["Arn"]
        # GetSAMLProvider is read for the tags; the metadata document it returns is not kept.
        got = call(iam, "GetSAMLProvider", log, region=None, resource=arn, SAMLProviderArn=arn)
        tags = tags_of(got.get("Tags")) if isinstance(got, dict) else {}
        out.append(
            SamlProvider(
                arn=arn, valid_until=iso(p.get("ValidUntil")), create_date=iso(p.get("CreateDate")), tags=tags
            )
        )
    return sorted(out, key=lambda x: x.arn)


def _oidc(iam: BaseClient, log: ErrorLog) -> list[OidcProvider]:
    res = call(iam, "ListOpenIDConnectProviders", log, region=None)
    out = []
    for p in res.get("OpenIDConnectProviderList", []) if isinstance(res, dict) else []:
        arn = p["Arn"]
        got = call(
            iam, "GetOpenIDConnectProvider", log, region=None, resource=arn, OpenIDConnectProviderArn=arn
        )
        if not isinstance(got, dict):
            continue
        out.append(
            OidcProvider(
                arn=arn,
                url=got.get("Url", ""),
                client_ids=sorted(got.get("ClientIDList", [])),
                thumbprints=sorted(got.get("ThumbprintList", [])),
                tags=tags_of(got.get("Tags")),
            )
        )
    return sorted(out, key=lambda x: x.arn)


# ---------------------------------------------------------------- S3


def _s3(clients: Clients, log: ErrorLog, account_id: str) -> list[Resource]:
    s3 = clients.get("s3")
    buckets: list[dict[str, Any]] = []
    for page in pages(s3, "ListBuckets", log, region=GLOBAL_REGION):
        buckets.extend(page.get("Buckets", []))
    out = []
    for b in buckets:
        name = b.get("Name") if isinstance(b, dict) else None
        arn = f"arn:{clients.partition}:s3:::{name}" if isinstance(name, str) else None
        # One bucket that cannot be read (beyond its recorded calls) costs only itself.
        with log.guard(service="s3", call="ListBuckets", region=GLOBAL_REGION, resource=arn):
            out.append(_bucket(clients, log, s3, b["Name"]))
    return out


def _bucket(clients: Clients, log: ErrorLog, s3: BaseClient, name: str) -> Resource:
    arn = f"arn:{clients.partition}:s3:::{name}"
    loc = call(s3, "GetBucketLocation", log, region=GLOBAL_REGION, resource=arn, Bucket=name)
    # An empty LocationConstraint means us-east-1 (and "EU" is the legacy name of eu-west-1):
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html
    region = (loc.get("LocationConstraint") if isinstance(loc, dict) else None) or GLOBAL_REGION
    if region == "EU":
        region = "eu-west-1"
    rc = clients.get("s3", region)
    pol = call(
        rc,
        "GetBucketPolicy",
        log,
        region=region,
        resource=arn,
        missing=("NoSuchBucketPolicy",),
        Bucket=name,
    )
    attrs: dict[str, Any] = {}
    status = call(
        rc,
        "GetBucketPolicyStatus",
        log,
        region=region,
        resource=arn,
        missing=("NoSuchBucketPolicy",),
        Bucket=name,
    )
    if isinstance(status, dict):
        attrs["policy_status"] = status.get("PolicyStatus", {})
    bpa = call(
        rc,
        "GetPublicAccessBlock",
        log,
        region=region,
        resource=arn,
        missing=("NoSuchPublicAccessBlockConfiguration",),
        Bucket=name,
    )
    if isinstance(bpa, dict):
        attrs["public_access_block"] = bpa.get("PublicAccessBlockConfiguration", {})
    tagging = call(
        rc, "GetBucketTagging", log, region=region, resource=arn, missing=("NoSuchTagSet",), Bucket=name
    )
    return Resource(
        arn=arn,
        type="s3:bucket",
        region=region,
        name=name,
        policy=document(pol.get("Policy")) if isinstance(pol, dict) else None,
        policy_unknown=pol is None,  # the call failed (recorded): unknown, not absent
        tags=tags_of(tagging.get("TagSet")) if isinstance(tagging, dict) else {},
        attributes=attrs,
    )


def _account_bpa(clients: Clients, log: ErrorLog, account_id: str) -> dict[str, bool] | None:
    got = call(
        clients.get("s3control"),
        "GetPublicAccessBlock",
        log,
        region=GLOBAL_REGION,
        missing=("NoSuchPublicAccessBlockConfiguration",),
        AccountId=account_id,
    )
    if isinstance(got, dict):
        return {k: bool(v) for k, v in got.get("PublicAccessBlockConfiguration", {}).items()}
    return None


# ---------------------------------------------------------------- regional resources and compute


def _regional(clients: Clients, log: ErrorLog, region: str) -> tuple[list[Resource], list[Compute]]:
    """One region's resources and compute. Each service's part is guarded on its own: beyond its calls and
    items (recorded where they fail), a part that fails as a whole is recorded and the other parts go on."""
    resources: list[Resource] = []
    compute: list[Compute] = []
    for service, fn in (
        ("kms", _kms), ("sqs", _sqs), ("sns", _sns), ("secretsmanager", _secrets), ("ecr", _ecr),
    ):
        with log.guard(service=service, call="*", region=region):
            resources.extend(fn(clients, log, region))
    with log.guard(service="lambda", call="*", region=region):
        lam_res, lam_comp = _lambda(clients, log, region)
        resources.extend(lam_res)
        compute.extend(lam_comp)
    for service, cfn in (
        ("ec2", _ec2),
        ("ec2", _launch_templates),
        ("cloudformation", _cloudformation),
        ("cloudformation", _stacksets),
        ("codebuild", _codebuild),
        ("glue", _glue),
        ("sagemaker", _sagemaker),
        ("ecs", _ecs),
        ("ssm", _ssm),
        ("apprunner", _apprunner),
        ("bedrock-agentcore-control", _agentcore),
    ):
        with log.guard(service=service, call="*", region=region):
            compute.extend(cfn(clients, log, region))
    return resources, compute


def _kms(clients: Clients, log: ErrorLog, region: str) -> list[Resource]:
    kms = clients.get("kms", region)
    out = []
    for page in pages(kms, "ListKeys", log, region=region):
        for k in page.get("Keys", []):
            # One item that cannot be read (beyond its recorded calls) costs only itself.
            with log.guard(service="kms", call="ListKeys", region=region, resource=_str_or_none(k.get("KeyArn"))):
                arn = k["KeyArn"]
                key_id = k["KeyId"]
                desc = call(kms, "DescribeKey", log, region=region, resource=arn, KeyId=key_id)
                meta = desc.get("KeyMetadata", {}) if isinstance(desc, dict) else {}
                # "default" is the only key policy name: https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
                pol = call(
                    kms, "GetKeyPolicy", log, region=region, resource=arn, KeyId=key_id, PolicyName="default"
                )
                grants: list[dict[str, Any]] = []
                for gp in pages(kms, "ListGrants", log, region=region, resource=arn, KeyId=key_id):
                    grants.extend(_jsonable(g) for g in gp.get("Grants", []))
                attrs: dict[str, Any] = {"grants": grants}
                if meta:
                    attrs["key_manager"] = meta.get("KeyManager")
                    attrs["key_state"] = meta.get("KeyState")
                    attrs["key_usage"] = meta.get("KeyUsage")
                tags: dict[str, str] = {}
                # ListResourceTags is denied for AWS managed keys; they carry no tags anyway.
                if meta.get("KeyManager") != "AWS":
                    for tp in pages(kms, "ListResourceTags", log, region=region, resource=arn, KeyId=key_id):
                        tags.update(tags_of(tp.get("Tags"), "TagKey", "TagValue"))
                out.append(
                    Resource(
                        arn=arn,
                        type="kms:key",
                        region=region,
                        name=key_id,
                        policy=document(pol.get("Policy")) if isinstance(pol, dict) else None,
                        policy_unknown=pol is None,  # the call failed (recorded): unknown, not absent
                        tags=tags,
                        attributes=attrs,
                    )
                )
    return out


def _sqs(clients: Clients, log: ErrorLog, region: str) -> list[Resource]:
    sqs = clients.get("sqs", region)
    out = []
    for page in pages(sqs, "ListQueues", log, region=region):
        for url in page.get("QueueUrls", []):
            # One item that cannot be read (beyond its recorded calls) costs only itself.
            with log.guard(service="sqs", call="ListQueues", region=region, resource=_str_or_none(url)):
                got = call(
                    sqs,
                    "GetQueueAttributes",
                    log,
                    region=region,
                    resource=url,
                    QueueUrl=url,
                    AttributeNames=["QueueArn", "Policy"],
                )
                if not isinstance(got, dict):
                    # Denied attributes (recorded) leave the queue's policy unknown, not the queue absent.
                    out.append(_unread_queue(clients.partition, region, url))
                    continue
                attrs = got.get("Attributes", {})
                tags = call(sqs, "ListQueueTags", log, region=region, resource=url, QueueUrl=url)
                out.append(
                    Resource(
                        arn=attrs.get("QueueArn") or url,
                        type="sqs:queue",
                        region=region,
                        name=url.rsplit("/", 1)[-1],
                        policy=document(attrs.get("Policy")),
                        tags=tags_of(tags.get("Tags")) if isinstance(tags, dict) else {},
                        attributes={"queue_url": url},
                    )
                )
    return out


def _unread_queue(partition: str, region: str, url: str) -> Resource:
    """A queue whose GetQueueAttributes failed: its ARN from the URL (``.../<account>/<name>``)."""
    account, name = url.rstrip("/").split("/")[-2:]
    return Resource(arn=f"arn:{partition}:sqs:{region}:{account}:{name}", type="sqs:queue", region=region,
                    name=name, policy_unknown=True, attributes={"queue_url": url})


def _sns(clients: Clients, log: ErrorLog, region: str) -> list[Resource]:
    sns = clients.get("sns", region)
    out = []
    for page in pages(sns, "ListTopics", log, region=region):
        for t in page.get("Topics", []):
            # One item that cannot be read (beyond its recorded calls) costs only itself.
            with log.guard(service="sns", call="ListTopics", region=region, resource=_str_or_none(t.get("TopicArn"))):
                arn = t["TopicArn"]
                got = call(sns, "GetTopicAttributes", log, region=region, resource=arn, TopicArn=arn)
                attrs = got.get("Attributes", {}) if isinstance(got, dict) else {}
                tags = call(sns, "ListTagsForResource", log, region=region, resource=arn, ResourceArn=arn)
                out.append(
                    Resource(
                        arn=arn,
                        type="sns:topic",
                        region=region,
                        name=arn.rsplit(":", 1)[-1],
                        policy=document(attrs.get("Policy")),
                        policy_unknown=got is None,  # the call failed (recorded): unknown, not absent
                        tags=tags_of(tags.get("Tags")) if isinstance(tags, dict) else {},
                    )
                )
    return out


def _secrets(clients: Clients, log: ErrorLog, region: str) -> list[Resource]:
    sm = clients.get("secretsmanager", region)
    out = []
    for page in pages(sm, "ListSecrets", log, region=region):
        for s in page.get("SecretList", []):
            # One item that cannot be read (beyond its recorded calls) costs only itself.
            with log.guard(service="secretsmanager", call="ListSecrets", region=region, resource=_str_or_none(s.get("ARN"))):
                arn = s["ARN"]
                got = call(sm, "GetResourcePolicy", log, region=region, resource=arn, SecretId=arn)
                out.append(
                    Resource(
                        arn=arn,
                        type="secretsmanager:secret",
                        region=region,
                        name=s.get("Name"),
                        policy=document(got.get("ResourcePolicy")) if isinstance(got, dict) else None,
                        policy_unknown=got is None,  # the call failed (recorded): unknown, not absent
                        tags=tags_of(s.get("Tags")),
                        attributes={"kms_key_id": s["KmsKeyId"]} if s.get("KmsKeyId") else {},
                    )
                )
    return out


def _ecr(clients: Clients, log: ErrorLog, region: str) -> list[Resource]:
    ecr = clients.get("ecr", region)
    out = []
    for page in pages(ecr, "DescribeRepositories", log, region=region):
        for r in page.get("repositories", []):
            # One item that cannot be read (beyond its recorded calls) costs only itself.
            with log.guard(service="ecr", call="DescribeRepositories", region=region, resource=_str_or_none(r.get("repositoryArn"))):
                arn = r["repositoryArn"]
                name = r["repositoryName"]
                pol = call(
                    ecr,
                    "GetRepositoryPolicy",
                    log,
                    region=region,
                    resource=arn,
                    missing=("RepositoryPolicyNotFoundException",),
                    repositoryName=name,
                )
                tags = call(ecr, "ListTagsForResource", log, region=region, resource=arn, resourceArn=arn)
                out.append(
                    Resource(
                        arn=arn,
                        type="ecr:repository",
                        region=region,
                        name=name,
                        policy=document(pol.get("policyText")) if isinstance(pol, dict) else None,
                        policy_unknown=pol is None,  # the call failed (recorded): unknown, not absent
                        tags=tags_of(tags.get("tags")) if isinstance(tags, dict) else {},
                    )
                )
    return out


def _lambda(clients: Clients, log: ErrorLog, region: str) -> tuple[list[Resource], list[Compute]]:
    lam = clients.get("lambda", region)
    resources: list[Resource] = []
    compute: list[Compute] = []
    for page in pages(lam, "ListFunctions", log, region=region):
        for f in page.get("Functions", []):
            # One item that cannot be read (beyond its recorded calls) costs only itself.
            with log.guard(service="lambda", call="ListFunctions", region=region, resource=_str_or_none(f.get("FunctionArn"))):
                arn = f["FunctionArn"]
                name = f["FunctionName"]
                pol = call(
                    lam,
                    "GetPolicy",
                    log,
                    region=region,
                    resource=arn,
                    missing=("ResourceNotFoundException",),
                    FunctionName=name,
                )
                urls: list[dict[str, Any]] = []
                for up in pages(
                    lam, "ListFunctionUrlConfigs", log, region=region, resource=arn, FunctionName=name
                ):
                    urls.extend(up.get("FunctionUrlConfigs", []))
                tags_res = call(lam, "ListTags", log, region=region, resource=arn, Resource=arn)
                tags = tags_of(tags_res.get("Tags")) if isinstance(tags_res, dict) else {}
                attrs: dict[str, Any] = {}
                if urls:
                    # A function has at most one URL per alias/qualifier; the unqualified one decides public access.
                    attrs["function_url_auth_type"] = urls[0].get("AuthType")
                    attrs["function_urls"] = [
                        {
                            "url": u.get("FunctionUrl"),
                            "auth_type": u.get("AuthType"),
                            "function_arn": u.get("FunctionArn"),
                        }
                        for u in urls
                    ]
                resources.append(
                    Resource(
                        arn=arn,
                        type="lambda:function",
                        region=region,
                        name=name,
                        policy=document(pol.get("Policy")) if isinstance(pol, dict) else None,
                        policy_unknown=pol is None,  # the call failed (recorded): unknown, not absent
                        tags=tags,
                        attributes=attrs,
                    )
                )
                compute.append(
                    Compute(
                        arn=arn,
                        kind="lambda_function",
                        region=region,
                        name=name,
                        role_arn=f.get("Role"),
                        tags=tags,
                        attributes={"runtime": f.get("Runtime")} if f.get("Runtime") else {},
                    )
                )
    return resources, compute


def _ec2(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    ec2 = clients.get("ec2", region)
    out = []
    for page in pages(ec2, "DescribeInstances", log, region=region):
        for res in page.get("Reservations", []):
            owner = res.get("OwnerId", "")
            for i in res.get("Instances", []):
                iid = i["InstanceId"]
                state = (i.get("State") or {}).get("Name")
                if state == "terminated":
                    continue
                profile = (i.get("IamInstanceProfile") or {}).get("Arn")
                out.append(
                    Compute(
                        arn=f"arn:{clients.partition}:ec2:{region}:{owner}:instance/{iid}",
                        kind="ec2_instance",
                        region=region,
                        name=iid,
                        # The role is reached through the instance profile (Account.instance_profiles).
                        instance_profile_arn=profile,
                        tags=tags_of(i.get("Tags")),
                        attributes={"state": state},
                    )
                )
    return out


def _launch_templates(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    ec2 = clients.get("ec2", region)
    templates: dict[str, dict[str, Any]] = {}
    for page in pages(ec2, "DescribeLaunchTemplates", log, region=region):
        for t in page.get("LaunchTemplates", []):
            templates[t["LaunchTemplateId"]] = t
    if not templates:
        return []
    # Versions $Default and $Latest without a template id or name describe those two versions of every
    # template in one paged call: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html
    profiles: dict[str, dict[str, str | None]] = {tid: {} for tid in templates}
    names: dict[str, dict[str, str]] = {tid: {} for tid in templates}
    for page in pages(
        ec2, "DescribeLaunchTemplateVersions", log, region=region, Versions=["$Default", "$Latest"]
    ):
        for v in page.get("LaunchTemplateVersions", []):
            tid = v.get("LaunchTemplateId")
            if tid not in profiles or v.get("VersionNumber") is None:
                continue
            number = str(v["VersionNumber"])
            # The profile is given by Arn or by Name (either one):
            # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateIamInstanceProfileSpecification.html
            ref = (v.get("LaunchTemplateData") or {}).get("IamInstanceProfile") or {}
            profiles[tid][number] = ref.get("Arn") or None
            if not ref.get("Arn") and ref.get("Name"):
                names[tid][number] = ref["Name"]
    groups = _autoscaling_groups(clients, log, region, templates)
    out = []
    for tid, t in templates.items():
        default = t.get("DefaultVersionNumber")
        attrs: dict[str, Any] = {
            "default_version": default,
            "latest_version": t.get("LatestVersionNumber"),
            "version_profiles": profiles[tid],
            "autoscaling_groups": sorted(groups.get(tid, []), key=lambda g: (g["name"], g["version"])),
        }
        if names[tid]:
            attrs[PROFILE_NAMES] = names[tid]
        out.append(
            Compute(
                arn=f"arn:{clients.partition}:ec2:{region}:{clients.account_id}:launch-template/{tid}",
                kind="ec2_launch_template",
                region=region,
                name=t.get("LaunchTemplateName"),
                instance_profile_arn=profiles[tid].get(str(default)),
                tags=tags_of(t.get("Tags")),
                attributes=attrs,
            )
        )
    return out


def _autoscaling_groups(
    clients: Clients, log: ErrorLog, region: str, templates: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, str]]]:
    """Launch template id -> the Auto Scaling groups that launch instances from it."""
    by_name = {t.get("LaunchTemplateName"): tid for tid, t in templates.items()}
    out: dict[str, list[dict[str, str]]] = {}
    asg = clients.get("autoscaling", region)
    for page in pages(asg, "DescribeAutoScalingGroups", log, region=region):
        for g in page.get("AutoScalingGroups", []):
            # A group names its template directly or in its mixed instances policy, whose overrides may
            # name other templates per instance type:
            # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplate.html
            mixed = (g.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
            specs = [g.get("LaunchTemplate"), mixed.get("LaunchTemplateSpecification")]
            specs.extend(o.get("LaunchTemplateSpecification") for o in mixed.get("Overrides") or [])
            for spec in specs:
                if not spec:
                    continue
                tid = spec.get("LaunchTemplateId") or by_name.get(spec.get("LaunchTemplateName"))
                if tid not in templates:
                    continue
                # Without a Version the group uses the template's default version:
                # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateSpecification.html
                entry = {
                    "name": g["AutoScalingGroupName"],
                    "arn": g.get("AutoScalingGroupARN", ""),
                    "version": spec.get("Version") or "$Default",
                }
                if entry not in out.setdefault(tid, []):
                    out[tid].append(entry)
    return out


def _cloudformation(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    cfn = clients.get("cloudformation", region)
    out = []
    for page in pages(cfn, "DescribeStacks", log, region=region):
        for s in page.get("Stacks", []):
            out.append(
                Compute(
                    arn=s["StackId"],
                    kind="cloudformation_stack",
                    region=region,
                    name=s.get("StackName"),
                    role_arn=s.get("RoleARN"),
                    tags=tags_of(s.get("Tags")),
                    attributes={"status": s.get("StackStatus")},
                )
            )
    return out


def _stacksets(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    cfn = clients.get("cloudformation", region)
    names: list[str] = []
    for page in pages(cfn, "ListStackSets", log, region=region, Status="ACTIVE"):
        # The Status filter is AWS's; checked again because a stand-in may ignore it.
        names.extend(s["StackSetName"] for s in page.get("Summaries", []) if s.get("Status") == "ACTIVE")
    out = []
    for name in names:
        got = call(cfn, "DescribeStackSet", log, region=region, resource=name, StackSetName=name)
        ss = got.get("StackSet") if isinstance(got, dict) else None
        if not ss:
            continue
        arn = ss.get("StackSetARN") or (
            f"arn:{clients.partition}:cloudformation:{region}:{clients.account_id}:stackset/{ss['StackSetId']}"
        )
        accounts: set[str] = set()
        regions: set[str] = set()
        for page in pages(cfn, "ListStackInstances", log, region=region, resource=arn, StackSetName=name):
            for i in page.get("Summaries", []):
                if i.get("Account"):
                    accounts.add(i["Account"])
                if i.get("Region"):
                    regions.add(i["Region"])
        # SELF_MANAGED is the default. A service-managed stack set deploys through roles StackSets creates
        # in each account, not through an administration role, so only a self-managed one runs as one:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-concepts.html
        model = ss.get("PermissionModel") or "SELF_MANAGED"
        admin = ss.get("AdministrationRoleARN")
        attrs: dict[str, Any] = {
            "permission_model": model,
            "execution_role_name": ss.get("ExecutionRoleName"),
            "status": ss.get("Status"),
            "instance_accounts": sorted(accounts),
            "instance_regions": sorted(regions),
        }
        if admin:
            attrs["administration_role_arn"] = admin
        out.append(
            Compute(
                arn=arn,
                kind="cloudformation_stackset",
                region=region,
                name=ss.get("StackSetName") or name,
                role_arn=admin if model == "SELF_MANAGED" else None,
                tags=tags_of(ss.get("Tags")),
                attributes=attrs,
            )
        )
    return out


def _codebuild(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    cb = clients.get("codebuild", region)
    names: list[str] = []
    for page in pages(cb, "ListProjects", log, region=region):
        names.extend(page.get("projects", []))
    out = []
    for i in range(0, len(names), 100):  # BatchGetProjects takes up to 100 names
        got = call(cb, "BatchGetProjects", log, region=region, names=names[i : i + 100])
        for p in got.get("projects", []) if isinstance(got, dict) else []:
            out.append(
                Compute(
                    arn=p["arn"],
                    kind="codebuild_project",
                    region=region,
                    name=p.get("name"),
                    role_arn=p.get("serviceRole"),
                    tags=tags_of(p.get("tags"), "key", "value"),
                )
            )
    return out


def _glue(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    glue = clients.get("glue", region)
    out = []
    account = clients.account_id
    for page in pages(glue, "GetJobs", log, region=region):
        for j in page.get("Jobs", []):
            role_arn, attrs = _role_ref(j.get("Role"))
            out.append(
                Compute(
                    arn=f"arn:{clients.partition}:glue:{region}:{account}:job/{j['Name']}",
                    kind="glue_job",
                    region=region,
                    name=j["Name"],
                    role_arn=role_arn,
                    attributes=attrs,
                )
            )
    for page in pages(glue, "GetDevEndpoints", log, region=region):
        for d in page.get("DevEndpoints", []):
            role_arn, attrs = _role_ref(d.get("RoleArn"))
            out.append(
                Compute(
                    arn=f"arn:{clients.partition}:glue:{region}:{account}:devEndpoint/{d['EndpointName']}",
                    kind="glue_dev_endpoint",
                    region=region,
                    name=d["EndpointName"],
                    role_arn=role_arn,
                    attributes=attrs,
                )
            )
    return out


def _role_ref(value: str | None) -> tuple[str | None, dict[str, Any]]:
    """(role ARN, attributes): Glue and SSM accept a role name or an ARN; a name is resolved later.

    https://docs.aws.amazon.com/glue/latest/webapi/aws-glue-api-jobs-job.html
    """
    if not value:
        return None, {}
    return (value, {}) if value.startswith("arn:") else (None, {"role_name": value})


def _sagemaker(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    sm = clients.get("sagemaker", region)
    out = []
    for page in pages(sm, "ListNotebookInstances", log, region=region):
        for n in page.get("NotebookInstances", []):
            name = n["NotebookInstanceName"]
            got = call(
                sm, "DescribeNotebookInstance", log, region=region, resource=name, NotebookInstanceName=name
            )
            if not isinstance(got, dict):
                continue
            out.append(
                Compute(
                    arn=got.get("NotebookInstanceArn") or n["NotebookInstanceArn"],
                    kind="sagemaker_notebook",
                    region=region,
                    name=name,
                    role_arn=got.get("RoleArn"),
                    attributes={
                        "status": got.get("NotebookInstanceStatus"),
                        "root_access": got.get("RootAccess"),
                        "direct_internet_access": got.get("DirectInternetAccess"),
                    },
                )
            )
    return out


def _ecs(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    ecs = clients.get("ecs", region)
    out = []
    task_roles: dict[str, str | None] = {}
    for page in pages(ecs, "ListTaskDefinitions", log, region=region, status="ACTIVE"):
        for arn in page.get("taskDefinitionArns", []):
            got = call(ecs, "DescribeTaskDefinition", log, region=region, resource=arn, taskDefinition=arn)
            td = got.get("taskDefinition", {}) if isinstance(got, dict) else {}
            if not td:
                continue
            task_roles[arn] = td.get("taskRoleArn")
            attrs = {"execution_role_arn": td["executionRoleArn"]} if td.get("executionRoleArn") else {}
            out.append(
                Compute(
                    arn=arn,
                    kind="ecs_task_definition",
                    region=region,
                    name=f"{td.get('family')}:{td.get('revision')}",
                    # The task role is what the containers' code runs as; the execution role is ECS's own.
                    role_arn=td.get("taskRoleArn"),
                    attributes=attrs,
                )
            )
    clusters: list[str] = []
    for page in pages(ecs, "ListClusters", log, region=region):
        clusters.extend(page.get("clusterArns", []))
    for cluster in clusters:
        arns: list[str] = []
        for page in pages(ecs, "ListServices", log, region=region, resource=cluster, cluster=cluster):
            arns.extend(page.get("serviceArns", []))
        for i in range(0, len(arns), 10):  # DescribeServices takes up to 10 services
            got = call(
                ecs,
                "DescribeServices",
                log,
                region=region,
                resource=cluster,
                cluster=cluster,
                services=arns[i : i + 10],
            )
            for s in got.get("services", []) if isinstance(got, dict) else []:
                taskdef = s.get("taskDefinition")
                if taskdef and taskdef not in task_roles:
                    more = call(ecs, "DescribeTaskDefinition", log, region=region, resource=taskdef,
                                taskDefinition=taskdef)
                    td = more.get("taskDefinition", {}) if isinstance(more, dict) else {}
                    task_roles[taskdef] = td.get("taskRoleArn") if td else None
                out.append(
                    Compute(
                        arn=s["serviceArn"],
                        kind="ecs_service",
                        region=region,
                        name=s.get("serviceName"),
                        # The service's tasks run as its task definition's task role; the service's own
                        # roleArn is the role ECS uses for the load balancer:
                        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
                        role_arn=task_roles.get(taskdef) if taskdef else None,
                        attributes={
                            "cluster_arn": cluster,
                            "task_definition": taskdef,
                            "service_role_arn": s.get("roleArn"),
                            "enable_execute_command": bool(s.get("enableExecuteCommand")),
                        },
                    )
                )
    return out


def _ssm(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    ssm = clients.get("ssm", region)
    out = []
    account = clients.account_id
    for page in pages(ssm, "DescribeInstanceInformation", log, region=region):
        for m in page.get("InstanceInformationList", []):
            iid = m["InstanceId"]
            kind = "managed-instance" if iid.startswith("mi-") else "instance"
            role_arn, attrs = _role_ref(m.get("IamRole"))
            out.append(
                Compute(
                    arn=f"arn:{clients.partition}:ssm:{region}:{account}:{kind}/{iid}"
                    if kind == "managed-instance"
                    else f"arn:{clients.partition}:ec2:{region}:{account}:instance/{iid}",
                    kind="ssm_managed_instance",
                    region=region,
                    name=m.get("ComputerName") or iid,
                    # Hybrid (mi-) instances name their service role; EC2 ones run as their instance profile.
                    role_arn=role_arn,
                    attributes={
                        **attrs,
                        "ping_status": m.get("PingStatus"),
                        "resource_type": m.get("ResourceType"),
                    },
                )
            )
    return out


def _apprunner(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    # App Runner is offered in some regions only; elsewhere the call fails (no endpoint) and is recorded
    # like any other regional failure: https://docs.aws.amazon.com/general/latest/gr/apprunner.html
    ar = clients.get("apprunner", region)
    arns: list[str] = []
    for page in token_pages(ar, "ListServices", log, region=region):
        arns.extend(s["ServiceArn"] for s in page.get("ServiceSummaryList", []))
    out = []
    for arn in arns:
        got = call(ar, "DescribeService", log, region=region, resource=arn, ServiceArn=arn)
        svc = got.get("Service") if isinstance(got, dict) else None
        if not svc or svc.get("Status") == "DELETED":  # a deleted service runs nothing
            continue
        auth = (svc.get("SourceConfiguration") or {}).get("AuthenticationConfiguration") or {}
        out.append(
            Compute(
                arn=svc.get("ServiceArn") or arn,
                kind="apprunner_service",
                region=region,
                name=svc.get("ServiceName"),
                # The instance role is what the service's code runs as; the access role only lets App
                # Runner pull the image from ECR:
                # https://docs.aws.amazon.com/apprunner/latest/dg/security_iam_service-with-iam.html
                role_arn=(svc.get("InstanceConfiguration") or {}).get("InstanceRoleArn"),
                attributes={"status": svc.get("Status"), "access_role_arn": auth.get("AccessRoleArn")},
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class _AgentCoreKind:
    kind: ComputeKind
    list_op: str
    list_params: tuple[tuple[str, str], ...]
    summaries: str
    get_op: str
    id_key: str
    arn_key: str
    name_key: str
    role_key: str = "executionRoleArn"


# Only custom code interpreters and browsers have a role; the AWS-owned defaults (type SYSTEM) do not:
# https://docs.aws.amazon.com/bedrock-agentcore-control/latest/APIReference/API_ListCodeInterpreters.html
_AGENTCORE = (
    _AgentCoreKind("bedrock_agentcore_code_interpreter", "ListCodeInterpreters", (("type", "CUSTOM"),),
                   "codeInterpreterSummaries", "GetCodeInterpreter", "codeInterpreterId", "codeInterpreterArn", "name"),
    _AgentCoreKind("bedrock_agentcore_runtime", "ListAgentRuntimes", (), "agentRuntimes", "GetAgentRuntime",
                   "agentRuntimeId", "agentRuntimeArn", "agentRuntimeName", role_key="roleArn"),
    _AgentCoreKind("bedrock_agentcore_browser", "ListBrowsers", (("type", "CUSTOM"),), "browserSummaries",
                   "GetBrowser", "browserId", "browserArn", "name"),
)


def _agentcore(clients: Clients, log: ErrorLog, region: str) -> list[Compute]:
    ac = clients.get("bedrock-agentcore-control", region)
    out: list[Compute] = []
    for k in _AGENTCORE:
        # No endpoint in this region (AgentCore is offered in some regions only): one recorded failure is enough.
        if log.unreachable("bedrock-agentcore-control", region):
            break
        for page in pages(ac, k.list_op, log, region=region, **dict(k.list_params)):
            for summary in page.get(k.summaries, []):
                got = call(ac, k.get_op, log, region=region, resource=summary.get(k.arn_key),
                           **{k.id_key: summary[k.id_key]})
                if not isinstance(got, dict):
                    continue
                attributes: dict[str, Any] = {"status": got.get("status")}
                if k.kind == "bedrock_agentcore_runtime":
                    # Asked without a version; the version AWS answers for (and whose role is kept) is recorded.
                    attributes["version"] = got.get("agentRuntimeVersion")
                out.append(Compute(arn=got[k.arn_key], kind=k.kind, region=region, name=got.get(k.name_key),
                                   role_arn=got.get(k.role_key), attributes=attributes))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return iso(value)
