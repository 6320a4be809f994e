"""The organization (root, OUs, accounts, SCPs/RCPs with targets, delegated admins) and IAM Identity Center."""

from __future__ import annotations

from typing import Any

from iamgraph.collect.aws_api import (
    Clients,
    CollectorError,
    ErrorLog,
    call,
    document,
    error_code_of,
    iso,
    pages,
    tags_of,
)
from iamgraph.snapshot.model import (
    AccountAssignment,
    CustomerManagedPolicyReference,
    DelegatedAdministrator,
    GroupMembership,
    IdentityCenter,
    IdentityStoreGroup,
    IdentityStoreUser,
    OrgAccount,
    Organization,
    OrgPolicy,
    OrgUnit,
    PermissionsBoundaryRef,
    PermissionSet,
)

ORG_POLICY_TYPES = ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY")


def collect_organization(clients: Clients, log: ErrorLog) -> Organization:
    """Read the organization. Without DescribeOrganization and the account list there is nothing to do."""
    org_client = clients.get("organizations")
    try:
        desc = org_client.describe_organization()["Organization"]
        roots = org_client.list_roots()["Roots"]
    except Exception as exc:
        code, message = error_code_of(exc)
        raise CollectorError(
            f"cannot read the organization ({code}: {message}); run from the management account or a "
            "delegated administrator, or leave out --organization to collect one account"
        ) from None
    root = roots[0]
    ous: list[OrgUnit] = []
    accounts: list[OrgAccount] = []
    todo = [root["Id"]]
    while todo:
        parent = todo.pop()
        for page in pages(
            org_client, "ListOrganizationalUnitsForParent", log, region=None, resource=parent, ParentId=parent
        ):
            for ou in page.get("OrganizationalUnits", []):
                ous.append(OrgUnit(id=ou["Id"], arn=ou.get("Arn"), name=ou.get("Name", ""), parent_id=parent))
                todo.append(ou["Id"])
        for page in pages(
            org_client, "ListAccountsForParent", log, region=None, resource=parent, ParentId=parent
        ):
            for a in page.get("Accounts", []):
                accounts.append(
                    OrgAccount(
                        id=a["Id"],
                        arn=a.get("Arn"),
                        name=a.get("Name"),
                        email=a.get("Email"),
                        status=a.get("Status"),
                        parent_id=parent,
                        joined_method=a.get("JoinedMethod"),
                        joined_timestamp=iso(a.get("JoinedTimestamp")),
                    )
                )
    enabled = [t["Type"] for t in root.get("PolicyTypes", []) if t.get("Status") == "ENABLED"]
    policies: list[OrgPolicy] = []
    for ptype in ORG_POLICY_TYPES:
        for page in pages(org_client, "ListPolicies", log, region=None, resource=ptype, Filter=ptype):
            for summary in page.get("Policies", []):
                pid = summary.get("Id") if isinstance(summary, dict) else None
                # One policy that cannot be read costs only itself (recorded under its id).
                with log.guard(service="organizations", call="DescribePolicy", region=None,
                               resource=pid if isinstance(pid, str) else None):
                    pol = _org_policy(org_client, log, summary, ptype)
                    if pol is not None:
                        policies.append(pol)
    delegated: list[DelegatedAdministrator] = []
    for page in pages(org_client, "ListDelegatedAdministrators", log, region=None):
        for d in page.get("DelegatedAdministrators", []):
            for sp in pages(
                org_client,
                "ListDelegatedServicesForAccount",
                log,
                region=None,
                resource=d["Id"],
                AccountId=d["Id"],
            ):
                for svc in sp.get("DelegatedServices", []):
                    delegated.append(
                        DelegatedAdministrator(account_id=d["Id"], service_principal=svc["ServicePrincipal"])
                    )
    return Organization(
        id=desc["Id"],
        arn=desc.get("Arn"),
        management_account_id=desc["MasterAccountId"],
        root_id=root["Id"],
        root_arn=root.get("Arn"),
        feature_set=desc.get("FeatureSet"),
        enabled_policy_types=sorted(enabled),
        organizational_units=sorted(ous, key=lambda o: o.id),
        accounts=sorted(accounts, key=lambda a: a.id),
        policies=sorted(policies, key=lambda p: p.id),
        delegated_administrators=sorted(delegated, key=lambda d: (d.account_id, d.service_principal)),
    )


def _org_policy(org_client: Any, log: ErrorLog, summary: dict[str, Any], ptype: str) -> OrgPolicy | None:
    pid = summary["Id"]
    got = call(org_client, "DescribePolicy", log, region=None, resource=pid, PolicyId=pid)
    if not isinstance(got, dict):
        return None
    body = got["Policy"]
    targets: list[str] = []
    for page in pages(org_client, "ListTargetsForPolicy", log, region=None, resource=pid, PolicyId=pid):
        targets.extend(t["TargetId"] for t in page.get("Targets", []))
    return OrgPolicy(
        id=pid,
        arn=summary.get("Arn"),
        name=summary.get("Name", pid),
        type=ptype,  # type: ignore[arg-type]
        aws_managed=bool(summary.get("AwsManaged")),
        description=summary.get("Description") or None,
        document=document(body.get("Content")) or {},
        targets=sorted(targets),
    )


# ---------------------------------------------------------------- Identity Center


def find_identity_center(
    clients: Clients, log: ErrorLog, regions: list[str]
) -> tuple[str, dict[str, Any]] | None:
    """The organization's Identity Center instance: (home region, instance), trying each region in turn."""
    for region in regions:
        res = call(clients.get("sso-admin", region), "ListInstances", log, region=region)
        if isinstance(res, dict) and res.get("Instances"):
            return region, res["Instances"][0]
    return None


def collect_identity_center(
    clients: Clients, log: ErrorLog, *, region: str, instance: dict[str, Any], account_ids: list[str]
) -> IdentityCenter:
    sso = clients.get("sso-admin", region)
    ids = clients.get("identitystore", region)
    inst = instance["InstanceArn"]
    store = instance["IdentityStoreId"]
    ps_arns: list[str] = []
    for page in pages(sso, "ListPermissionSets", log, region=region, InstanceArn=inst):
        ps_arns.extend(page.get("PermissionSets", []))
    permission_sets: list[PermissionSet] = []
    for arn in ps_arns:
        with log.guard(service="sso-admin", call="DescribePermissionSet", region=region, resource=arn):
            permission_sets.append(_permission_set(sso, log, region, inst, arn))

    assignments: list[AccountAssignment] = []
    for ps in ps_arns:
        provisioned: list[str] = []
        before = len(log.errors)
        for page in pages(
            sso,
            "ListAccountsForProvisionedPermissionSet",
            log,
            region=region,
            resource=ps,
            InstanceArn=inst,
            PermissionSetArn=ps,
        ):
            provisioned.extend(page.get("AccountIds", []))
        # CreateAccountAssignment provisions the permission set to the account, so the provisioned
        # accounts are the only ones that can hold assignments:
        # https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_CreateAccountAssignment.html
        # If that list could not be read, every collected account is asked instead (slower, complete).
        targets = set(provisioned) if len(log.errors) == before else set(account_ids)
        for acct in sorted(targets):
            for page in pages(
                sso,
                "ListAccountAssignments",
                log,
                region=region,
                resource=f"{ps} {acct}",
                InstanceArn=inst,
                AccountId=acct,
                PermissionSetArn=ps,
            ):
                for a in page.get("AccountAssignments", []):
                    assignments.append(
                        AccountAssignment(
                            account_id=a["AccountId"],
                            permission_set_arn=a["PermissionSetArn"],
                            principal_type=a["PrincipalType"],
                            principal_id=a["PrincipalId"],
                        )
                    )
    users: list[IdentityStoreUser] = []
    for page in pages(ids, "ListUsers", log, region=region, IdentityStoreId=store):
        for u in page.get("Users", []):
            users.append(
                IdentityStoreUser(
                    user_id=u["UserId"], user_name=u["UserName"], display_name=u.get("DisplayName")
                )
            )
    groups: list[IdentityStoreGroup] = []
    memberships: list[GroupMembership] = []
    for page in pages(ids, "ListGroups", log, region=region, IdentityStoreId=store):
        for g in page.get("Groups", []):
            groups.append(
                IdentityStoreGroup(
                    group_id=g["GroupId"],
                    display_name=g.get("DisplayName", ""),
                    description=g.get("Description"),
                )
            )
    for g in groups:
        for page in pages(
            ids,
            "ListGroupMemberships",
            log,
            region=region,
            resource=g.group_id,
            IdentityStoreId=store,
            GroupId=g.group_id,
        ):
            for m in page.get("GroupMemberships", []):
                uid = (m.get("MemberId") or {}).get("UserId")
                if uid:
                    memberships.append(GroupMembership(group_id=g.group_id, user_id=uid))
    return IdentityCenter(
        instance_arn=inst,
        identity_store_id=store,
        home_region=region,
        permission_sets=sorted(permission_sets, key=lambda p: p.arn),
        assignments=sorted(
            set_unique(assignments),
            key=lambda a: (a.account_id, a.permission_set_arn, a.principal_type, a.principal_id),
        ),
        users=sorted(users, key=lambda u: u.user_id),
        groups=sorted(groups, key=lambda g: g.group_id),
        memberships=sorted(memberships, key=lambda m: (m.group_id, m.user_id)),
    )


def set_unique(items: list[AccountAssignment]) -> list[AccountAssignment]:
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for a in items:
        key = (a.account_id, a.permission_set_arn, a.principal_type, a.principal_id)
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _permission_set(sso: Any, log: ErrorLog, region: str, inst: str, arn: str) -> PermissionSet:
    got = call(
        sso, "DescribePermissionSet", log, region=region, resource=arn, InstanceArn=inst, PermissionSetArn=arn
    )
    desc = got.get("PermissionSet", {}) if isinstance(got, dict) else {}
    inline = call(
        sso,
        "GetInlinePolicyForPermissionSet",
        log,
        region=region,
        resource=arn,
        InstanceArn=inst,
        PermissionSetArn=arn,
    )
    managed: list[str] = []
    for page in pages(
        sso,
        "ListManagedPoliciesInPermissionSet",
        log,
        region=region,
        resource=arn,
        InstanceArn=inst,
        PermissionSetArn=arn,
    ):
        managed.extend(p["Arn"] for p in page.get("AttachedManagedPolicies", []))
    customer: list[CustomerManagedPolicyReference] = []
    for page in pages(
        sso,
        "ListCustomerManagedPolicyReferencesInPermissionSet",
        log,
        region=region,
        resource=arn,
        InstanceArn=inst,
        PermissionSetArn=arn,
    ):
        customer.extend(
            CustomerManagedPolicyReference(name=r["Name"], path=r.get("Path") or "/")
            for r in page.get("CustomerManagedPolicyReferences", [])
        )
    # ResourceNotFoundException here means "no boundary":
    # https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_GetPermissionsBoundaryForPermissionSet.html
    pb = call(
        sso,
        "GetPermissionsBoundaryForPermissionSet",
        log,
        region=region,
        resource=arn,
        missing=("ResourceNotFoundException",),
        InstanceArn=inst,
        PermissionSetArn=arn,
    )
    boundary = None
    if isinstance(pb, dict) and pb.get("PermissionsBoundary"):
        b = pb["PermissionsBoundary"]
        cm = b.get("CustomerManagedPolicyReference")
        boundary = PermissionsBoundaryRef(
            managed_policy_arn=b.get("ManagedPolicyArn"),
            customer_managed_policy=CustomerManagedPolicyReference(
                name=cm["Name"], path=cm.get("Path") or "/"
            )
            if cm
            else None,
        )
    tags: dict[str, str] = {}
    for page in pages(
        sso, "ListTagsForResource", log, region=region, resource=arn, InstanceArn=inst, ResourceArn=arn
    ):
        tags.update(tags_of(page.get("Tags")))
    return PermissionSet(
        arn=arn,
        name=desc.get("Name", arn.rsplit("/", 1)[-1]),
        description=desc.get("Description") or None,
        session_duration=desc.get("SessionDuration"),
        inline_policy=document(inline.get("InlinePolicy")) if isinstance(inline, dict) else None,
        aws_managed_policies=sorted(managed),
        customer_managed_policies=sorted(customer, key=lambda c: (c.path, c.name)),
        permissions_boundary=boundary,
        tags=tags,
    )
