"""Direct admin-equivalence: a principal the engine allows ``*`` on ``*``.

The engine answers one action at a time, so "everything" is checked on a fixed probe set spanning
IAM, STS, compute, data and logging, each on the literal resource ``*``. A statement limited to some
resources (``arn:aws:s3:::*``) or some services does not match, and a Deny, SCP or boundary on any
probe makes the principal not admin. See docs/graph.md ("Admin-equivalent").
"""

from __future__ import annotations

from collections.abc import Iterator

from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, make_edge, register
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


def admin_node(account_id: str) -> str:
    return f"admin:{account_id}"


@register
class AdminRule(EdgeRule):
    name = "admin"
    kinds = (EdgeKind.ADMIN,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        maybe: set[str] | None = None
        for action in ADMIN_PROBES:
            holders = {p for p, pats in ctx.candidates.principals_with(action).items() if "*" in pats}
            maybe = holders if maybe is None else maybe & holders
        for principal in sorted(maybe or ()):
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


@register
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
        from iamgraph.graph.rules.resources import POLICY_WRITERS

        for acct in sorted(set(ctx.definite_admins.values())):
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
