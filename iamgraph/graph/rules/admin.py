"""Direct admin-equivalence: a principal the engine allows ``*`` on ``*``.

The engine answers one action at a time, so "everything" is checked on a fixed probe set spanning
IAM, STS, compute, data and logging, each on the literal resource ``*``. A statement limited to some
resources (``arn:aws:s3:::*``) or some services does not match, and a Deny, SCP or boundary on any
probe makes the principal not admin. See docs/graph.md ("Admin-equivalent").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from iamgraph.errors import IamGraphError
from iamgraph.eval import ask_policies, named_policy
from iamgraph.eval.types import ContextValue, Decision, PolicyType
from iamgraph.graph.candidates import instantiate
from iamgraph.graph.context import POLICY_WRITERS, BuildContext, new_principal_parts
from iamgraph.graph.rules.base import EdgeRule, fewest_conditions, make_edge
from iamgraph.graph.types import Edge, EdgeKind, Reason

ADMIN_PROBES: tuple[str, ...] = (
    "iam:PutRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:PassRole",
    "sts:AssumeRole",
    "ec2:RunInstances",
    "lambda:UpdateFunctionCode",
    "s3:GetObject",
    "s3:PutBucketPolicy",
    "kms:Decrypt",
    "secretsmanager:GetSecretValue",
    "dynamodb:Scan",
    "cloudtrail:StopLogging",
    "organizations:ListAccounts",
)


ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


def admin_node(account_id: str) -> str:
    return f"admin:{account_id}"


class AdminRule(EdgeRule):
    name = "admin"
    kinds = (EdgeKind.ADMIN,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        maybe: set[str] | None = None
        for action in ADMIN_PROBES:
            holders = {p for p, pats in ctx.candidates.principals_with(action).items() if "*" in pats}
            maybe = holders if maybe is None else maybe & holders
        for principal in sorted(maybe or ()):
            if not ctx.in_scope(ctx.account(principal)):
                continue
            ds = []
            for action in ADMIN_PROBES:
                d = ctx.possible(self.name, principal, action, "*")
                if d is None:
                    break
                ds.append(d)
            else:
                edge = make_edge(EdgeKind.ADMIN, principal, admin_node(ctx.account(principal)),
                                 Reason(via=("*",), note="allowed * on * (probe set)"), *ds)
                if not edge.conditional and ctx.admin_shortcut:
                    ctx.definite_admins[principal] = ctx.account(principal)
                yield edge


def new_principal_node(account_id: str, boundary: str | None = None) -> str:
    """A principal the caller creates in ``account_id`` (not in the snapshot), with ``boundary`` if any."""
    return f"new-principal:{account_id}" + (f":{boundary}" if boundary else "")


@dataclass(frozen=True, slots=True)
class _Creation:
    name: str
    kind: str
    """``role`` or ``user``: the ARN's resource type."""
    create: str
    grants: tuple[str, ...]
    """Any one of these gives the new principal a policy."""
    use: tuple[str, ...]
    """Any one of these lets the caller act as it."""
    drop_boundary: str
    """Takes the boundary it was created with away again."""


CREATIONS = (
    _Creation(name="create-role", kind="role", create="iam:CreateRole",
              grants=("iam:AttachRolePolicy", "iam:PutRolePolicy"), use=("sts:AssumeRole",),
              drop_boundary="iam:DeleteRolePermissionsBoundary"),
    _Creation(name="create-user", kind="user", create="iam:CreateUser",
              grants=("iam:AttachUserPolicy", "iam:PutUserPolicy"),
              use=("iam:CreateAccessKey", "iam:CreateLoginProfile"),
              drop_boundary="iam:DeleteUserPermissionsBoundary"),
)


class CreatePrincipalRule(EdgeRule):
    """Creating a user or role, giving it a policy, and using it.

    ``P -> new-principal:<account>`` when P may create the principal with no boundary (the
    ``iam:PermissionsBoundary`` key absent), attach AdministratorAccess (or an admin-equivalent customer
    managed policy of the account: ``attach_admin``) or put an inline policy on that same ARN, and then act as it: for a role, ``sts:AssumeRole`` evaluated against the trust
    policy P writes (naming P); for a user, a new access key or console password. When P's policy
    requires a boundary (a condition on ``iam:PermissionsBoundary`` naming policy ARNs), each named
    boundary is tried: the node is ``new-principal:<account>:<boundary>``, unless P can also delete
    or replace the new principal's boundary (then it is unbounded). A node gets an
    ``AdminEquivalent`` edge when a principal holding only an allow-all policy (and its boundary)
    passes the admin probe under the account's SCPs.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
    """

    name = "create-principal"
    kinds = (EdgeKind.CREATE_PRINCIPAL, EdgeKind.ADMIN)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        reached: set[str] = set()
        for tech in CREATIONS:
            for principal, patterns in sorted(ctx.principals_in_scope(tech.create).items()):
                acct = ctx.account(principal)
                if not acct or ctx.admin_of(principal, acct) or (
                        principal not in ctx.index.users and principal not in ctx.index.roles):
                    continue
                template = f"arn:aws:iam::{acct}:{tech.kind}/iamgraph-new"
                options: list[Edge] = []
                for pattern in (*patterns, "*"):
                    arn = instantiate(pattern, template)
                    if f":{tech.kind}/" not in arn or ctx.account(arn) != acct:
                        continue
                    options.extend(self._try(ctx, principal, tech, arn))
                by_node: dict[str, list[Edge]] = {}
                for e in options:
                    by_node.setdefault(e.target, []).append(e)
                for node, edges in sorted(by_node.items()):
                    best = fewest_conditions(edges)
                    if best is not None:
                        reached.add(node)
                        yield best
        for node in sorted(reached):
            acct, boundary = new_principal_parts(node)
            ds = []
            for action in ADMIN_PROBES:
                d = ctx.as_new_principal(acct, action, "*", boundary)
                if d is None or not d.possible:
                    break
                ds.append(d)
            else:
                edge = make_edge(EdgeKind.ADMIN, node, admin_node(acct),
                                 Reason(via=("*",), note="a new principal with an allow-all policy"), *ds)
                if not edge.conditional and ctx.admin_shortcut:
                    ctx.creatable_admin.add(acct)
                yield edge

    def _try(self, ctx: BuildContext, principal: str, tech: _Creation, arn: str) -> list[Edge]:
        # None: the key is known to be absent (the engine's convention), not unknown.
        no_boundary = cast("dict[str, ContextValue]", {"iam:PermissionsBoundary": None})
        creations: list[tuple[str | None, tuple[str, ...], list[Decision]]] = []
        create = ctx.possible(self.name, principal, tech.create, arn, no_boundary)
        if create is not None:
            creations.append((None, (tech.create,), [create]))
        else:
            for boundary in _required_boundaries(ctx.possible(self.name, principal, tech.create, arn)):
                d = ctx.possible(self.name, principal, tech.create, arn, {"iam:PermissionsBoundary": boundary})
                if d is None:
                    continue
                lift = _first(ctx, self.name, principal, (tech.drop_boundary,), arn)
                if lift is not None:
                    creations.append((None, (tech.create, lift[0]), [d, lift[1]]))
                else:
                    creations.append((boundary, (tech.create,), [d]))
        if not creations:
            return []
        grant = first_grant(ctx, self.name, principal, tech.grants, arn)
        if grant is None:
            return []
        if tech.kind == "role":
            # The new role's trust names its creator.
            d_use = ctx.trusted_caller(self.name, principal, arn, f"{arn}:trust")
            use = ("sts:AssumeRole", d_use) if d_use is not None and d_use.possible else None
        else:
            use = _first(ctx, self.name, principal, tech.use, arn)
        if use is None:
            return []
        return [make_edge(EdgeKind.CREATE_PRINCIPAL, principal, new_principal_node(ctx.account(arn), boundary),
                          Reason(via=(*via, grant[0], use[0]), target=arn,
                                 note=tech.name + (f"; {grant[2]}" if grant[2] else "")),
                          *ds, grant[1], use[1])
                for boundary, via, ds in creations]


def _required_boundaries(decision: Decision | None) -> list[str]:
    """Boundary policy ARNs a conditional decision asks ``iam:PermissionsBoundary`` to equal."""
    if decision is None:
        return []
    out: list[str] = []
    for conj in decision.conditions:
        for c in conj:
            if c.key.lower() != "iam:permissionsboundary" or c.negated:
                continue
            if c.operator.lower().removesuffix("ifexists") not in ("stringequals", "arnequals", "stringlike", "arnlike"):
                continue
            out.extend(str(v) for v in c.values
                       if isinstance(v, str) and "*" not in v and "?" not in v and v not in out)
    return out


def _first(ctx: BuildContext, rule: str, principal: str, actions: Iterable[str],
           arn: str) -> tuple[str, Decision] | None:
    """The first of ``actions`` possible on ``arn``."""
    for a in actions:
        d = ctx.possible(rule, principal, a, arn)
        if d is not None:
            return a, d
    return None


def first_grant(ctx: BuildContext, rule: str, principal: str, actions: Iterable[str],
                arn: str) -> tuple[str, Decision, str | None] | None:
    """The first of ``actions`` by which ``principal`` can give ``arn`` administrator permissions:
    (action, decision, note). Put*Policy writes any document; Attach*Policy goes through ``attach_admin``."""
    for a in actions:
        if a.startswith("iam:Attach"):
            got = attach_admin(ctx, rule, principal, a, arn)
            if got is not None:
                return a, got[0], got[1]
            continue
        d = ctx.possible(rule, principal, a, arn)
        if d is not None:
            return a, d, None
    return None


def attach_admin(ctx: BuildContext, rule: str, principal: str, action: str,
                 target: str) -> tuple[Decision, str | None] | None:
    """(decision, note) when ``principal`` can attach an admin-equivalent managed policy to ``target``.

    Asked with AdministratorAccess as ``iam:PolicyARN``; when that is not allowed (a condition naming other
    policies), each customer managed policy of the target's account that is admin-equivalent on its own --
    attached anywhere or not -- is tried, since attaching it gives the same (``admin_policies``).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_policyarn
    """
    d = ctx.possible(rule, principal, action, target, {"iam:PolicyARN": ADMIN_POLICY_ARN})
    if d is not None:
        return d, None
    found = [(d2, pol) for pol in admin_policies(ctx, ctx.account(target))
             if (d2 := ctx.possible(rule, principal, action, target, {"iam:PolicyARN": pol})) is not None]
    if not found:
        return None
    d, pol = min(found, key=lambda x: (len(x[0].conditions), x[1]))
    return d, f"attaches {pol}, admin-equivalent"


def admin_policies(ctx: BuildContext, account: str) -> list[str]:
    """Customer managed policies of ``account`` that on their own allow every admin probe on ``*``
    (strict mode: no condition left), whether or not anything holds them."""
    table: dict[str, list[str]] = ctx.cache.setdefault("admin_policies", {})
    hit = table.get(account)
    if hit is not None:
        return hit
    stand_in = f"arn:aws:iam::{account}:user/iamgraph-policy-probe"
    out: list[str] = []
    for arn in _managed_by_account(ctx).get(account, ()):
        doc = ctx.index.policies[arn].default_document()
        if doc is None:
            continue
        try:
            policy = named_policy(doc, arn, PolicyType.IDENTITY)
        except IamGraphError:
            continue  # the evaluator reports an unreadable policy where it applies
        if all(ask_policies(stand_in, a, "*", identity=(policy,)).allowed for a in ADMIN_PROBES):
            out.append(arn)
    table[account] = out
    return out


def _managed_by_account(ctx: BuildContext) -> dict[str, list[str]]:
    """The snapshot's managed policies by account, each list in ARN order: one pass, not one per account
    (an organization of 860 accounts spent a third of its build scanning every policy for each)."""
    table: dict[str, list[str]] | None = ctx.cache.get("managed_by_account")
    if table is None:
        table = {}
        for arn in sorted(ctx.index.policies):
            table.setdefault(ctx.account(arn), []).append(arn)
        ctx.cache["managed_by_account"] = table
    return table


class AdminControlRule(EdgeRule):
    """A definite admin of an account can act as, re-permission or take over anything in it.

    Instead of one edge per (admin, target, technique) -- most of a large graph -- the account's
    admin node gets one edge per target: ``AdminControl`` to each user and role (create an access
    key / rewrite the trust policy, then use it), ``GrantPermissions`` and ``RemovePermissionsBoundary``
    to each, ``ResourcePolicyTakeover`` to each policy-bearing resource. Service-linked roles are
    left out: their trust policies cannot be edited. This can only add reach (a Deny on one
    specific principal is not checked per admin), never hide a path.
    """

    name = "admin-control"
    kinds = (EdgeKind.ADMIN_CONTROL, EdgeKind.GRANT_PERMISSIONS, EdgeKind.REMOVE_BOUNDARY,
             EdgeKind.RESOURCE_POLICY_TAKEOVER)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for acct in sorted(set(ctx.definite_admins.values()) | ctx.creatable_admin):
            if not ctx.in_scope(acct):
                continue
            node = admin_node(acct)
            account = ctx.index.accounts.get(acct)
            if account is None:
                continue
            protected = ctx.protected(acct)
            for u in account.users:
                if u.arn in protected:
                    continue  # a Deny may single it out: each admin's own edges are computed
                yield Edge(kind=EdgeKind.ADMIN_CONTROL, source=node, target=u.arn,
                           reason=Reason(via=("iam:CreateAccessKey",), note="account admin"))
                yield Edge(kind=EdgeKind.GRANT_PERMISSIONS, source=node, target=u.arn,
                           reason=Reason(via=("iam:PutUserPolicy",), note="account admin"))
                if u.permissions_boundary:
                    yield Edge(kind=EdgeKind.REMOVE_BOUNDARY, source=node, target=u.arn,
                               reason=Reason(via=("iam:DeleteUserPermissionsBoundary",), note="account admin"))
            for r in account.roles:
                if "/aws-service-role/" in r.arn or r.arn in protected:
                    continue
                yield Edge(kind=EdgeKind.ADMIN_CONTROL, source=node, target=r.arn,
                           reason=Reason(via=("iam:UpdateAssumeRolePolicy", "sts:AssumeRole"), note="account admin"))
                yield Edge(kind=EdgeKind.GRANT_PERMISSIONS, source=node, target=r.arn,
                           reason=Reason(via=("iam:PutRolePolicy",), note="account admin"))
                if r.permissions_boundary:
                    yield Edge(kind=EdgeKind.REMOVE_BOUNDARY, source=node, target=r.arn,
                               reason=Reason(via=("iam:DeleteRolePermissionsBoundary",), note="account admin"))
            for res in account.resources:
                writers = POLICY_WRITERS.get(res.type)
                if writers and res.arn not in protected:
                    yield Edge(kind=EdgeKind.RESOURCE_POLICY_TAKEOVER, source=node, target=res.arn,
                               reason=Reason(via=(writers[0],), note="account admin"))
