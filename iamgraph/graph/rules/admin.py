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
                yield make_edge(EdgeKind.ADMIN, principal, admin_node(ctx.account(principal)),
                                Reason(via=("*",), note="allowed * on * (probe set)"), *ds)
