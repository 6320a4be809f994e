"""Read an IAM Identity Center export: the ``aws sso-admin`` and ``aws identitystore`` outputs the
live collector reads, saved as files (layout in docs/snapshot-format.md, "An IAM Identity Center
export"). The result is the same ``IdentityCenter`` the collector builds (``aws_org.py``).

Every permission set listed must come with its description, inline policy, managed policies,
customer managed policy references and provisioned accounts, every provisioned account with its
assignments, and every group with its memberships: without them the access the set gives, or who
holds it, would be unknown, so the import stops instead. A file nothing uses is an error too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from iamgraph.collect.files_json import Reader, read_json, reject_unconsumed
from iamgraph.errors import InputError
from iamgraph.snapshot.model import (
    AccountAssignment,
    CustomerManagedPolicyReference,
    GroupMembership,
    IdentityCenter,
    IdentityStoreGroup,
    IdentityStoreUser,
    PermissionsBoundaryRef,
    PermissionSet,
)

IC_MARKER = "list-instances.json"
"""A folder holding this file is an Identity Center export."""

# Members of botocore's sso-admin and identitystore shapes (checked by a test).
INSTANCE_KEYS = (
    "InstanceArn", "IdentityStoreId", "IdentityStoreArn", "OwnerAccountId", "Name", "CreatedDate", "Status",
    "StatusReason", "PrimaryRegion", "Regions",
)  # fmt: skip
PERMISSION_SET_KEYS = ("Name", "PermissionSetArn", "Description", "CreatedDate", "SessionDuration", "RelayState")
ASSIGNMENT_KEYS = ("AccountId", "PermissionSetArn", "PrincipalType", "PrincipalId")
USER_KEYS = (
    "IdentityStoreId", "UserId", "UserArn", "Revision", "UserName", "ExternalIds", "Name", "DisplayName",
    "NickName", "ProfileUrl", "Emails", "Addresses", "PhoneNumbers", "UserType", "Title", "PreferredLanguage",
    "Locale", "Timezone", "UserStatus", "Photos", "Website", "Birthdate", "Roles", "CreatedAt", "CreatedBy",
    "UpdatedAt", "UpdatedBy", "Extensions",
)  # fmt: skip
GROUP_KEYS = (
    "IdentityStoreId", "GroupId", "GroupArn", "Revision", "DisplayName", "ExternalIds", "Description",
    "CreatedAt", "UpdatedAt", "CreatedBy", "UpdatedBy",
)  # fmt: skip
MEMBERSHIP_KEYS = (
    "IdentityStoreId", "MembershipId", "MembershipArn", "GroupId", "MemberId", "CreatedAt", "UpdatedAt",
    "CreatedBy", "UpdatedBy",
)  # fmt: skip


class IdentityCenterReader:
    """Reads one Identity Center export folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.consumed: set[Path] = set()

    def _path(self, rel: str) -> Path:
        return self.root / rel

    def has(self, rel: str) -> bool:
        return self._path(rel).is_file()

    def load(self, rel: str, keys: Iterable[str]) -> tuple[Reader, dict[str, Any]]:
        path = self._path(rel)
        if not path.is_file():
            raise InputError(
                "missing file of the IAM Identity Center export (layout in docs/snapshot-format.md)",
                source=str(path),
            )
        self.consumed.add(path)
        r = Reader(str(path))
        data = r.obj(read_json(path), "", (*keys, "NextToken", "ResponseMetadata"))
        if data.get("NextToken"):
            raise r.fail("this is one page of several (NextToken); export without --max-items", "NextToken")
        return r, data

    def read(self) -> IdentityCenter:
        r, data = self.load(IC_MARKER, ("Instances",))
        instances = r.lst(data.get("Instances"), "Instances")
        if len(instances) != 1:
            raise r.fail(
                f"expected the one instance whose permission sets the folder holds; found {len(instances)} "
                "(keep the organization's instance only)",
                "Instances",
            )
        inst = r.obj(instances[0], "Instances[0]", INSTANCE_KEYS)
        instance_arn = r.string(inst, "InstanceArn", "Instances[0]")
        store = r.string(inst, "IdentityStoreId", "Instances[0]")
        home = r.opt_string(inst, "PrimaryRegion", "Instances[0]")

        r, data = self.load("list-permission-sets.json", ("PermissionSets",))
        ps_arns = []
        for i, raw in enumerate(r.lst(data.get("PermissionSets"), "PermissionSets")):
            if not isinstance(raw, str) or "/ps-" not in raw:
                raise r.fail("expected a permission set ARN (…:permissionSet/ssoins-…/ps-…)", f"PermissionSets[{i}]")
            ps_arns.append(raw)
        permission_sets = [self.permission_set(arn) for arn in ps_arns]
        assignments: list[AccountAssignment] = []
        for arn in ps_arns:
            assignments.extend(self.assignments(arn))
        users, groups, memberships = self.identity_store()
        self.check_all_consumed()
        return IdentityCenter(
            instance_arn=instance_arn,
            identity_store_id=store,
            home_region=home,
            permission_sets=sorted(permission_sets, key=lambda p: p.arn),
            assignments=sorted(
                {(a.account_id, a.permission_set_arn, a.principal_type, a.principal_id): a for a in assignments}.values(),
                key=lambda a: (a.account_id, a.permission_set_arn, a.principal_type, a.principal_id),
            ),
            users=sorted(users, key=lambda u: u.user_id),
            groups=sorted(groups, key=lambda g: g.group_id),
            memberships=sorted({(m.group_id, m.user_id): m for m in memberships}.values(),
                               key=lambda m: (m.group_id, m.user_id)),
        )

    def permission_set(self, arn: str) -> PermissionSet:
        ps_id = arn.rsplit("/", 1)[-1]
        dr, data = self.load(f"describe-permission-set/{ps_id}.json", ("PermissionSet",))
        desc = dr.obj(data.get("PermissionSet"), "PermissionSet", PERMISSION_SET_KEYS)
        if dr.string(desc, "PermissionSetArn", "PermissionSet") != arn:
            raise dr.fail(f"describes {desc.get('PermissionSetArn')!r}, not {arn}", "PermissionSet.PermissionSetArn")
        name = dr.string(desc, "Name", "PermissionSet")
        description = dr.opt_string(desc, "Description", "PermissionSet")
        session = dr.opt_string(desc, "SessionDuration", "PermissionSet")

        r, data = self.load(f"get-inline-policy-for-permission-set/{ps_id}.json", ("InlinePolicy",))
        inline_raw = data.get("InlinePolicy")
        # The API answers an empty string for a permission set without an inline policy.
        inline = r.policy(inline_raw, "InlinePolicy", require_resource=True, principal=False) if inline_raw else None

        r, data = self.load(f"list-managed-policies-in-permission-set/{ps_id}.json", ("AttachedManagedPolicies",))
        managed = []
        for i, raw in enumerate(r.lst(data.get("AttachedManagedPolicies"), "AttachedManagedPolicies")):
            loc = f"AttachedManagedPolicies[{i}]"
            managed.append(r.string(r.obj(raw, loc, ("Name", "Arn")), "Arn", loc))

        r, data = self.load(f"list-customer-managed-policy-references-in-permission-set/{ps_id}.json",
                            ("CustomerManagedPolicyReferences",))
        customer = []
        for i, raw in enumerate(r.lst(data.get("CustomerManagedPolicyReferences"), "CustomerManagedPolicyReferences")):
            loc = f"CustomerManagedPolicyReferences[{i}]"
            customer.append(self._reference(r, raw, loc))

        boundary = None
        rel = f"get-permissions-boundary-for-permission-set/{ps_id}.json"
        # No file: the CLI answers ResourceNotFoundException for a set without a boundary
        # (https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_GetPermissionsBoundaryForPermissionSet.html).
        if self.has(rel):
            r, data = self.load(rel, ("PermissionsBoundary",))
            b = r.obj(data.get("PermissionsBoundary"), "PermissionsBoundary",
                      ("CustomerManagedPolicyReference", "ManagedPolicyArn"))
            cm = b.get("CustomerManagedPolicyReference")
            boundary = PermissionsBoundaryRef(
                managed_policy_arn=r.opt_string(b, "ManagedPolicyArn", "PermissionsBoundary"),
                customer_managed_policy=self._reference(r, cm, "PermissionsBoundary.CustomerManagedPolicyReference")
                if cm is not None else None,
            )
            if boundary.managed_policy_arn is None and boundary.customer_managed_policy is None:
                raise r.fail("a boundary names a managed policy ARN or a customer managed policy", "PermissionsBoundary")

        tags: dict[str, str] = {}
        rel = f"list-tags-for-resource/{ps_id}.json"
        if self.has(rel):
            r, data = self.load(rel, ("Tags",))
            tags = r.tags(data, "Tags", "")
        return PermissionSet(
            arn=arn,
            name=name,
            description=description or None,
            session_duration=session,
            inline_policy=inline,
            aws_managed_policies=sorted(managed),
            customer_managed_policies=sorted(customer, key=lambda c: (c.path, c.name)),
            permissions_boundary=boundary,
            tags=tags,
        )

    @staticmethod
    def _reference(r: Reader, raw: Any, loc: str) -> CustomerManagedPolicyReference:
        ref = r.obj(raw, loc, ("Name", "Path"))
        return CustomerManagedPolicyReference(name=r.string(ref, "Name", loc), path=r.opt_string(ref, "Path", loc) or "/")

    def assignments(self, arn: str) -> list[AccountAssignment]:
        ps_id = arn.rsplit("/", 1)[-1]
        r, data = self.load(f"list-accounts-for-provisioned-permission-set/{ps_id}.json", ("AccountIds",))
        out: list[AccountAssignment] = []
        for i, acct in enumerate(r.lst(data.get("AccountIds"), "AccountIds")):
            if not isinstance(acct, str):
                raise r.fail("expected an account id", f"AccountIds[{i}]")
            ar, adata = self.load(f"list-account-assignments/{ps_id}/{acct}.json", ("AccountAssignments",))
            for j, raw in enumerate(ar.lst(adata.get("AccountAssignments"), "AccountAssignments")):
                loc = f"AccountAssignments[{j}]"
                a = ar.obj(raw, loc, ASSIGNMENT_KEYS)
                if ar.string(a, "PermissionSetArn", loc) != arn or ar.string(a, "AccountId", loc) != acct:
                    raise ar.fail(f"an assignment of another permission set or account (the file is for {ps_id} "
                                  f"in {acct})", loc)
                ptype = ar.string(a, "PrincipalType", loc)
                if ptype not in ("USER", "GROUP"):
                    raise ar.fail(f"PrincipalType {ptype!r} is not USER or GROUP", f"{loc}.PrincipalType")
                out.append(AccountAssignment(account_id=acct, permission_set_arn=arn,
                                             principal_type=ptype,  # type: ignore[arg-type]  # checked above
                                             principal_id=ar.string(a, "PrincipalId", loc)))
        return out

    def identity_store(self) -> tuple[list[IdentityStoreUser], list[IdentityStoreGroup], list[GroupMembership]]:
        r, data = self.load("identitystore/list-users.json", ("Users",))
        users = []
        for i, raw in enumerate(r.lst(data.get("Users"), "Users")):
            loc = f"Users[{i}]"
            u = r.obj(raw, loc, USER_KEYS)
            users.append(IdentityStoreUser(user_id=r.string(u, "UserId", loc), user_name=r.string(u, "UserName", loc),
                                           display_name=r.opt_string(u, "DisplayName", loc)))
        r, data = self.load("identitystore/list-groups.json", ("Groups",))
        groups = []
        for i, raw in enumerate(r.lst(data.get("Groups"), "Groups")):
            loc = f"Groups[{i}]"
            graw = r.obj(raw, loc, GROUP_KEYS)
            groups.append(IdentityStoreGroup(group_id=r.string(graw, "GroupId", loc),
                                             display_name=r.opt_string(graw, "DisplayName", loc) or "",
                                             description=r.opt_string(graw, "Description", loc)))
        memberships = []
        for g in groups:
            mr, mdata = self.load(f"identitystore/list-group-memberships/{g.group_id}.json", ("GroupMemberships",))
            for j, raw in enumerate(mr.lst(mdata.get("GroupMemberships"), "GroupMemberships")):
                loc = f"GroupMemberships[{j}]"
                m = mr.obj(raw, loc, MEMBERSHIP_KEYS)
                if mr.string(m, "GroupId", loc) != g.group_id:
                    raise mr.fail(f"a membership of another group (the file is for {g.group_id})", f"{loc}.GroupId")
                member = mr.obj(m.get("MemberId"), f"{loc}.MemberId", ("UserId",))
                memberships.append(GroupMembership(group_id=g.group_id, user_id=mr.string(member, "UserId",
                                                                                           f"{loc}.MemberId")))
        return users, groups, memberships

    def check_all_consumed(self) -> None:
        reject_unconsumed(
            self.root, self.consumed, "IAM Identity Center export", "unknown name, or a permission set, account or group nothing lists"
        )
