"""IAM techniques: new credentials for another user, rewriting a trust policy, changing permissions.

IAM has no resource-based policies (a role's trust policy governs only sts actions), so every
``iam:`` action here works within the caller's own account only; targets are searched there.
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies-cross-account-resource-access.html
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from iamgraph.eval.types import Decision
from iamgraph.graph.candidates import instantiate, resource_matches
from iamgraph.graph.context import BuildContext, has_deny
from iamgraph.graph.rules.admin import ADMIN_POLICY_ARN, attach_admin, first_grant
from iamgraph.graph.rules.base import EdgeRule, make_edge
from iamgraph.graph.types import Edge, EdgeKind, Reason


def same_account_targets(
    ctx: BuildContext, action: str, targets: Iterable[str]
) -> Iterator[tuple[str, str]]:
    """(principal, target) pairs where the principal's Allow statements could cover ``action`` on target."""
    by_account = _by_account(ctx, targets)
    for principal, patterns in ctx.principals_in_scope(action).items():
        acct = ctx.account(principal)
        admin = ctx.admin_of(principal, acct)
        if admin and not ctx.protected(acct):
            continue  # the account's admin node covers it (AdminControlRule)
        for target in by_account.get(acct, ()):
            if admin and ctx.admin_of(principal, acct, target):
                continue
            if any(resource_matches(p, target) for p in patterns):
                yield principal, target


def _by_account(ctx: BuildContext, targets: Iterable[str]) -> dict[str, list[str]]:
    """Targets by account, in their order. The index's users, roles and groups are grouped once per build: several
    rules ask about each, and a build over a change's scope would otherwise read every account's for each."""
    name = next((n for n in ("users", "roles", "groups") if targets is getattr(ctx.index, n)), None)
    table: dict[str, dict[str, list[str]]] = ctx.cache.setdefault("targets_by_account", {})
    hit = table.get(name) if name is not None else None
    if hit is None:
        hit = {}
        for t in targets:
            hit.setdefault(ctx.account(t), []).append(t)
        if name is not None:
            table[name] = hit
    return hit


class CreateAccessKeyRule(EdgeRule):
    name = "create-access-key"
    kinds = (EdgeKind.CREATE_ACCESS_KEY,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        action = "iam:CreateAccessKey"
        for p, user_arn in same_account_targets(ctx, action, ctx.index.users):
            if p == user_arn:
                continue
            d = ctx.possible(self.name, p, action, user_arn)
            if d is None:
                continue
            user = ctx.index.users[user_arn]
            if len(user.access_keys) >= 2:
                # A user holds at most two access keys; a third needs one deleted first.
                # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
                d2 = ctx.possible(self.name, p, "iam:DeleteAccessKey", user_arn)
                if d2 is None:
                    continue
                yield make_edge(EdgeKind.CREATE_ACCESS_KEY, p, user_arn,
                                Reason(via=("iam:DeleteAccessKey", action),
                                       note="the user already has two access keys"), d, d2)
            else:
                yield make_edge(EdgeKind.CREATE_ACCESS_KEY, p, user_arn, Reason(via=(action,)), d)


class LoginProfileRule(EdgeRule):
    """Setting another user's console password (create when it has none, update when it has one)."""

    name = "login-profile"
    kinds = (EdgeKind.LOGIN_PROFILE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for action in ("iam:CreateLoginProfile", "iam:UpdateLoginProfile"):
            for p, user_arn in same_account_targets(ctx, action, ctx.index.users):
                if p == user_arn:
                    continue
                user = ctx.index.users[user_arn]
                has_password = user.has_console_password
                if action == "iam:CreateLoginProfile" and has_password is True:
                    continue
                if action == "iam:UpdateLoginProfile" and has_password is False:
                    continue
                d = ctx.possible(self.name, p, action, user_arn)
                if d is None:
                    continue
                assumptions: list[str] = []
                if has_password is None:
                    assumptions.append("whether the user has a console password is unknown")
                if user.mfa_devices:
                    assumptions.append("console sign-in also needs the user's MFA device")
                yield make_edge(EdgeKind.LOGIN_PROFILE, p, user_arn, Reason(via=(action,)), d,
                                assumptions=tuple(assumptions))


class UpdateTrustRule(EdgeRule):
    """iam:UpdateAssumeRolePolicy: rewrite a role's trust to name yourself, then assume it."""

    name = "update-assume-role-policy"
    kinds = (EdgeKind.UPDATE_TRUST_THEN_ASSUME,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        action = "iam:UpdateAssumeRolePolicy"
        for p, role_arn in same_account_targets(ctx, action, ctx.index.roles):
            if p == role_arn:
                continue
            d = ctx.possible(self.name, p, action, role_arn)
            if d is None:
                continue
            # The new trust names the caller, and same-account callers named by a trust policy need
            # no identity Allow for sts:AssumeRole; SCPs and boundaries still apply to it.
            d2 = ctx.trusted_caller(self.name, p, role_arn, f"{role_arn}:rewritten-trust")
            if d2 is None or not d2.possible:
                continue
            yield make_edge(EdgeKind.UPDATE_TRUST_THEN_ASSUME, p, role_arn,
                            Reason(via=(action, "sts:AssumeRole")), d, d2)


def _members(ctx: BuildContext, group_arn: str) -> list[str]:
    members: dict[str, list[str]] | None = ctx.cache.get("group_members")
    if members is None:
        members = {}
        for u in ctx.index.users.values():
            for g in ctx.index.groups_of(u):
                members.setdefault(g.arn, []).append(u.arn)
        ctx.cache["group_members"] = members
    return members.get(group_arn, [])


def _holders(ctx: BuildContext, policy_arn: str) -> list[tuple[str, str | None]]:
    """(principal, via group) for every user/role the managed policy applies to."""
    table: dict[str, list[tuple[str, str | None]]] | None = ctx.cache.get("policy_holders")
    if table is None:
        table = {}
        for u in ctx.index.users.values():
            for arn in u.attached_managed_policies:
                table.setdefault(arn, []).append((u.arn, None))
        for r in ctx.index.roles.values():
            for arn in r.attached_managed_policies:
                table.setdefault(arn, []).append((r.arn, None))
        for g in ctx.index.groups.values():
            for arn in g.attached_managed_policies:
                table.setdefault(arn, []).extend((m, g.arn) for m in _members(ctx, g.arn))
        ctx.cache["policy_holders"] = table
    return table.get(policy_arn, [])


class GrantPermissionsRule(EdgeRule):
    """Edges ``A -> B``: A can give B arbitrary permissions (Put*/Attach* policies, CreatePolicyVersion).

    B may be A itself (self-escalation). SetDefaultPolicyVersion gives only what an existing
    version says, so it is an edge only when that version is broader; the query layer evaluates it.
    """

    name = "grant-permissions"
    kinds = (EdgeKind.GRANT_PERMISSIONS,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for action, pool in (
            ("iam:PutUserPolicy", ctx.index.users),
            ("iam:AttachUserPolicy", ctx.index.users),
            ("iam:PutRolePolicy", ctx.index.roles),
            ("iam:AttachRolePolicy", ctx.index.roles),
        ):
            for p, target in same_account_targets(ctx, action, pool):
                got = self._grant(ctx, p, action, target)
                if got is not None:
                    yield make_edge(EdgeKind.GRANT_PERMISSIONS, p, target, Reason(via=(action,), note=got[1]), got[0])
        for action in ("iam:PutGroupPolicy", "iam:AttachGroupPolicy"):
            for p, group in same_account_targets(ctx, action, ctx.index.groups):
                got = self._grant(ctx, p, action, group)
                if got is None:
                    continue
                for member in _members(ctx, group):
                    yield make_edge(EdgeKind.GRANT_PERMISSIONS, p, member,
                                    Reason(via=(action,), target=group, note=got[1]), got[0])
        yield from self._rewrites(ctx)

    def _grant(self, ctx: BuildContext, p: str, action: str, target: str) -> tuple[Decision, str | None] | None:
        """(decision, note) when ``p`` can give ``target`` administrator permissions with ``action``.

        Put*Policy writes any document. Attach*Policy is asked with AdministratorAccess as
        ``iam:PolicyARN``; when that is not allowed (a condition naming other policies), each customer
        managed policy of the account that is admin-equivalent on its own -- attached anywhere or
        not -- is tried as ``iam:PolicyARN``, since attaching it gives the same.
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_policyarn
        """
        if not action.startswith("iam:Attach"):
            d = ctx.possible(self.name, p, action, target)
            return None if d is None else (d, None)
        return attach_admin(ctx, self.name, p, action, target)

    def _rewrites(self, ctx: BuildContext) -> Iterator[Edge]:
        customer = [arn for arn in ctx.index.policies if ctx.account(arn)]
        for action in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"):
            for p, policy_arn in same_account_targets(ctx, action, customer):
                managed = ctx.index.policies[policy_arn]
                if action == "iam:SetDefaultPolicyVersion" and len(managed.versions) < 2:
                    continue
                holders = _holders(ctx, policy_arn)
                if not holders:
                    continue
                d = ctx.possible(self.name, p, action, policy_arn)
                if d is None:
                    continue
                for holder, via_group in holders:
                    yield make_edge(
                        EdgeKind.GRANT_PERMISSIONS, p, holder,
                        Reason(via=(action,), target=policy_arn,
                               note=f"through group {via_group}" if via_group else None),
                        d,
                    )


class RemoveBoundaryRule(EdgeRule):
    """Deleting or replacing a permissions boundary lifts the ceiling on a principal's permissions."""

    name = "remove-boundary"
    kinds = (EdgeKind.REMOVE_BOUNDARY,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        bounded_users = [u.arn for u in ctx.index.users.values() if u.permissions_boundary]
        bounded_roles = [r.arn for r in ctx.index.roles.values() if r.permissions_boundary]
        for action, pool, ctx_keys in (
            ("iam:DeleteUserPermissionsBoundary", bounded_users, None),
            ("iam:PutUserPermissionsBoundary", bounded_users, {"iam:PermissionsBoundary": ADMIN_POLICY_ARN}),
            ("iam:DeleteRolePermissionsBoundary", bounded_roles, None),
            ("iam:PutRolePermissionsBoundary", bounded_roles, {"iam:PermissionsBoundary": ADMIN_POLICY_ARN}),
        ):
            for p, target in same_account_targets(ctx, action, pool):
                d = ctx.possible(self.name, p, action, target, ctx_keys)
                if d is not None:
                    yield make_edge(EdgeKind.REMOVE_BOUNDARY, p, target, Reason(via=(action,)), d)


class JoinGroupRule(EdgeRule):
    """iam:AddUserToGroup ``P -> G``: P can add a user to group G, which then gains G's policies.

    The action's only resource is the group, so P may add any user of its account: itself (a user)
    or any user it controls. The queries pick the user (``iamgraph.query.changes.join_users``).
    """

    name = "add-user-to-group"
    kinds = (EdgeKind.JOIN_GROUP,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        action = "iam:AddUserToGroup"
        for p, group in same_account_targets(ctx, action, ctx.index.groups):
            d = ctx.possible(self.name, p, action, group)
            if d is not None:
                yield make_edge(EdgeKind.JOIN_GROUP, p, group, Reason(via=(action,)), d)


def inline_id(owner: str, name: str) -> str:
    """How the engine names an inline policy (``SnapshotEvaluator``): ``OWNER:inline/NAME``."""
    return f"{owner}:inline/{name}"


def deny_policies(ctx: BuildContext, owner: str) -> list[tuple[str, str | None]]:
    """(engine policy id, managed ARN or None for inline) of the owner's own policies holding a Deny."""
    entity = ctx.index.users.get(owner) or ctx.index.roles.get(owner) or ctx.index.groups.get(owner)
    if entity is None:
        return []
    out: list[tuple[str, str | None]] = [
        (inline_id(owner, ip.name), None) for ip in entity.inline_policies if has_deny(ip.document)
    ]
    for arn in entity.attached_managed_policies:
        managed = ctx.index.policies.get(arn)
        if managed is not None and has_deny(managed.default_document()):
            out.append((arn, arn))
    return out


class RemoveDenyRule(EdgeRule):
    """Taking away an identity policy that holds a Deny: the Allows it blocked take effect.

    Detach*/Delete*Policy remove it; Put*Policy with the same name overwrites an inline policy
    ("adds or updates", IAM API reference); CreatePolicyVersion rewrites a customer managed one for
    everyone it is attached to; RemoveUserFromGroup takes away every policy of the group. Only
    policies with a Deny statement matter: removing Allows never widens access.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    """

    name = "remove-deny"
    kinds = (EdgeKind.REMOVE_DENY,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        # Callers and owners are of one account (IAM calls): owners outside the scope have no caller in it.
        denies = {arn: deny_policies(ctx, arn)
                  for arn in (*ctx.index.users, *ctx.index.roles, *ctx.index.groups) if ctx.in_scope(ctx.account(arn))}
        denies = {k: v for k, v in denies.items() if v}
        if not denies:
            return
        users = [a for a in denies if a in ctx.index.users]
        roles = [a for a in denies if a in ctx.index.roles]
        groups = [a for a in denies if a in ctx.index.groups]
        for pool, detach, delete, put in (
            (users, "iam:DetachUserPolicy", "iam:DeleteUserPolicy", "iam:PutUserPolicy"),
            (roles, "iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePolicy"),
            (groups, "iam:DetachGroupPolicy", "iam:DeleteGroupPolicy", "iam:PutGroupPolicy"),
        ):
            for action in (detach, delete, put):
                for p, owner in same_account_targets(ctx, action, pool):
                    for pid, managed in denies[owner]:
                        if (managed is None) == (action == detach):
                            continue  # detach is for managed policies, delete/put for inline ones
                        d = ctx.possible(self.name, p, action, owner,
                                         {"iam:PolicyARN": managed} if managed else None)
                        if d is None:
                            continue
                        members = _members(ctx, owner) if owner in ctx.index.groups else [owner]
                        for m in members:
                            yield make_edge(EdgeKind.REMOVE_DENY, p, m, Reason(
                                via=(action,), target=pid,
                                note=f"through group {owner}" if owner != m else None), d)
        # Leaving a group takes away all of its policies (its Allows too).
        member_groups = [g for g in groups if _members(ctx, g)]
        for p, group in same_account_targets(ctx, "iam:RemoveUserFromGroup", member_groups):
            d = ctx.possible(self.name, p, "iam:RemoveUserFromGroup", group)
            if d is None:
                continue
            for m in _members(ctx, group):
                yield make_edge(EdgeKind.REMOVE_DENY, p, m, Reason(via=("iam:RemoveUserFromGroup",), target=group), d)
        # Rewriting a customer managed policy changes it for all who hold it.
        rewritable = [arn for arn in ctx.index.policies
                      if ctx.account(arn) and ctx.in_scope(ctx.account(arn))
                      and has_deny(ctx.index.policies[arn].default_document())]
        for p, policy_arn in same_account_targets(ctx, "iam:CreatePolicyVersion", rewritable):
            holders = _holders(ctx, policy_arn)
            if not holders:
                continue
            d = ctx.possible(self.name, p, "iam:CreatePolicyVersion", policy_arn)
            if d is None:
                continue
            for holder, via_group in holders:
                yield make_edge(EdgeKind.REMOVE_DENY, p, holder, Reason(
                    via=("iam:CreatePolicyVersion",), target=policy_arn,
                    note=f"through group {via_group}" if via_group else None), d)


class NewGroupRule(EdgeRule):
    """Creating a group, giving it any policy and adding users to it: arbitrary permissions for
    every user of the account (``GrantPermissions`` to each, as ``iam:PutUserPolicy`` on them would be).

    The three calls must be allowed on one group ARN the caller may choose; attaching is asked with
    AdministratorAccess as ``iam:PolicyARN``, then with each admin-equivalent customer managed policy of the
    account (``attach_admin``). Groups have no permissions boundary to require.
    """

    name = "new-group"
    kinds = (EdgeKind.GRANT_PERMISSIONS,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for principal, patterns in sorted(ctx.principals_in_scope("iam:CreateGroup").items()):
            acct = ctx.account(principal)
            if not acct or ctx.admin_of(principal, acct):
                continue
            users = [u for u in ctx.candidates.principals_by_account.get(acct, ()) if u in ctx.index.users]
            if not users:
                continue
            template = f"arn:aws:iam::{acct}:group/iamgraph-new"
            for pattern in (*patterns, "*"):
                arn = instantiate(pattern, template)
                if ":group/" not in arn or ctx.account(arn) != acct:
                    continue
                steps = self._steps(ctx, principal, arn)
                if steps is None:
                    continue
                via, ds, attached = steps
                note = "new group" + (f"; {attached}" if attached else "")
                for user in users:
                    if ctx.admin_of(principal, acct, user):
                        continue
                    yield make_edge(EdgeKind.GRANT_PERMISSIONS, principal, user,
                                    Reason(via=via, target=arn, note=note), *ds)
                break

    def _steps(
        self, ctx: BuildContext, principal: str, arn: str
    ) -> tuple[tuple[str, ...], list[Decision], str | None] | None:
        create = ctx.possible(self.name, principal, "iam:CreateGroup", arn)
        if create is None:
            return None
        grant = first_grant(ctx, self.name, principal, ("iam:PutGroupPolicy", "iam:AttachGroupPolicy"), arn)
        if grant is None:
            return None
        join = ctx.possible(self.name, principal, "iam:AddUserToGroup", arn)
        if join is None:
            return None
        return ("iam:CreateGroup", grant[0], "iam:AddUserToGroup"), [create, grant[1], join], grant[2]
