"""IAM Identity Center: users and groups -> permission sets -> the role each set becomes in an account.

A permission set assigned to an account is provisioned there as an IAM role named
``AWSReservedSSO_<permission set name>_<random suffix>`` under the path
``/aws-reserved/sso.amazonaws.com/`` with the set's policies; signing in through the access portal
gives a session of that role.
https://docs.aws.amazon.com/singlesignon/latest/userguide/permissionsetsconcept.html
When the snapshot lacks that role (e.g. only the management account's Identity Center data was
read), ``materialise`` adds an in-memory stand-in built from the permission set, so the engine
evaluates the set's own policies (inline, AWS managed, customer managed references resolved in
that account, boundary). A customer managed reference missing in the account makes AWS fail the
provisioning, so no role (and no edge) is made for it; the miss is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator

from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule
from iamgraph.graph.types import Edge, EdgeKind, Reason
from iamgraph.snapshot.model import (
    Account,
    CustomerManagedPolicyReference,
    InlinePolicy,
    PermissionSet,
    Role,
    Snapshot,
)

SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
MATERIALISED_TAG = "iamgraph:materialised"


def role_prefix(permission_set: PermissionSet) -> str:
    return f"AWSReservedSSO_{permission_set.name}_"


def sso_user_node(store: str, user_id: str) -> str:
    return f"identitycenter:{store}:user/{user_id}"


def sso_group_node(store: str, group_id: str) -> str:
    return f"identitycenter:{store}:group/{group_id}"


def _customer_arn(account: Account, ref: CustomerManagedPolicyReference) -> str | None:
    path = ref.path if ref.path.endswith("/") else ref.path + "/"
    for p in account.policies:
        if p.name == ref.name and p.path == path:
            return p.arn
    return None


def materialise(snapshot: Snapshot) -> tuple[Snapshot, list[str]]:
    """The snapshot plus a stand-in role for every assigned permission set without one; and notes."""
    ic = snapshot.identity_center
    if ic is None:
        return snapshot, []
    sets = {ps.arn: ps for ps in ic.permission_sets}
    notes: list[str] = []
    additions: dict[str, list[Role]] = {}
    accounts = {a.account_id: a for a in snapshot.accounts}
    for asg in ic.assignments:
        ps = sets.get(asg.permission_set_arn)
        account = accounts.get(asg.account_id)
        if ps is None or account is None:
            continue
        prefix = role_prefix(ps)
        if any(r.name.startswith(prefix) for r in account.roles) or any(
            r.name.startswith(prefix) for r in additions.get(account.account_id, ())
        ):
            continue
        attached = list(ps.aws_managed_policies)
        missing = False
        for ref in ps.customer_managed_policies:
            arn = _customer_arn(account, ref)
            if arn is None:
                notes.append(f"permission set {ps.name}: customer managed policy {ref.path}{ref.name} "
                             f"is not in account {account.account_id}; AWS cannot provision it there")
                missing = True
            else:
                attached.append(arn)
        boundary = None
        if ps.permissions_boundary is not None:
            if ps.permissions_boundary.managed_policy_arn:
                boundary = ps.permissions_boundary.managed_policy_arn
            elif ps.permissions_boundary.customer_managed_policy is not None:
                boundary = _customer_arn(account, ps.permissions_boundary.customer_managed_policy)
                if boundary is None:
                    missing = True
                    notes.append(f"permission set {ps.name}: boundary policy is not in account {account.account_id}")
        if missing:
            continue
        name = f"{prefix}iamgraph"
        saml = f"arn:aws:iam::{account.account_id}:saml-provider/AWSSSO_iamgraph_DO_NOT_DELETE"
        additions.setdefault(account.account_id, []).append(
            Role(
                arn=f"arn:aws:iam::{account.account_id}:role{SSO_PATH}{name}",
                name=name,
                role_id=f"iamgraph-{ps.name}",
                path=SSO_PATH,
                trust_policy={
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Federated": saml},
                                   "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"]}],
                },
                attached_managed_policies=attached,
                inline_policies=(
                    [InlinePolicy(name="AwsSSOInlinePolicy", document=ps.inline_policy)] if ps.inline_policy else []
                ),
                permissions_boundary=boundary,
                tags={MATERIALISED_TAG: "true"},
            )
        )
    if not additions:
        return snapshot, notes
    new_accounts = [
        a.model_copy(update={"roles": [*a.roles, *additions[a.account_id]]}) if a.account_id in additions else a
        for a in snapshot.accounts
    ]
    return snapshot.model_copy(update={"accounts": new_accounts}), notes


class IdentityCenterRule(EdgeRule):
    """Users -> groups, and users/groups -> the role each assigned permission set becomes."""

    name = "identity-center"
    kinds = (EdgeKind.SSO_MEMBER_OF, EdgeKind.SSO_SIGN_IN)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        ic = ctx.index.snapshot.identity_center
        if ic is None:
            return
        store = ic.identity_store_id
        for m in ic.memberships:
            yield Edge(kind=EdgeKind.SSO_MEMBER_OF, source=sso_user_node(store, m.user_id),
                       target=sso_group_node(store, m.group_id), reason=Reason(via=()))
        sets = {ps.arn: ps for ps in ic.permission_sets}
        for asg in ic.assignments:
            ps = sets.get(asg.permission_set_arn)
            account = ctx.index.accounts.get(asg.account_id)
            if ps is None or account is None:
                continue
            prefix = role_prefix(ps)
            source = (sso_user_node(store, asg.principal_id) if asg.principal_type == "USER"
                      else sso_group_node(store, asg.principal_id))
            for role in account.roles:
                if role.name.startswith(prefix):
                    yield Edge(kind=EdgeKind.SSO_SIGN_IN, source=source, target=role.arn,
                               reason=Reason(via=("sso:GetRoleCredentials",), target=ps.arn,
                                             note=f"permission set {ps.name} in {asg.account_id}"))
