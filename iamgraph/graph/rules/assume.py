"""Becoming a role: sts:AssumeRole (same and cross-account, hence chaining), SAML/OIDC federation.

Candidates come from each role's trust policy: principals it names, principals of the accounts it
names (who also need an identity Allow), everyone for ``*``. The engine then decides trust ∧
identity ∧ SCP/RCP ∧ boundary.
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_permissions-to-switch.html
"""

from __future__ import annotations

from collections.abc import Iterator

from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, make_edge
from iamgraph.graph.types import Edge, EdgeKind, Reason

ASSUME = "sts:AssumeRole"
SAML = "sts:AssumeRoleWithSAML"
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
OUTSIDE_ASSUMPTION = "the outside account's own policies allow it (not in the snapshot)"
PUBLIC = "*"


def external_node(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


class AssumeRoleRule(EdgeRule):
    name = "assume-role"
    kinds = (EdgeKind.ASSUME_ROLE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        identity = ctx.candidates.principals_with(ASSUME)
        for role_arn in ctx.index.roles:
            # A role outside the scope keeps its edges, but for callers inside it (their policies changed).
            mine = ctx.in_scope(ctx.account(role_arn))
            trust = ctx.candidates.trust(role_arn)
            candidates: set[str] = set()
            for arn in trust.arns:
                node = ctx.resolve_principal(arn)
                if node is not None and (mine or ctx.in_scope(ctx.account(node))):
                    candidates.add(node)
            named_accounts = set(trust.accounts)
            if trust.everyone:
                named_accounts |= set(ctx.index.accounts)
                # A same-account principal that a resource policy names (here: everyone) needs no
                # identity Allow; let the engine decide for all of them.
                if mine:
                    candidates.update(ctx.candidates.principals_by_account.get(ctx.account(role_arn), ()))
            if not mine:
                named_accounts = {a for a in named_accounts if ctx.in_scope(a)}
            for acct in named_accounts:
                for p in ctx.candidates.principals_by_account.get(acct, ()):
                    if p in identity and ctx.candidates.may(p, ASSUME, role_arn):
                        candidates.add(p)
            candidates.discard(role_arn)
            for p in sorted(candidates):
                d = ctx.possible(self.name, p, ASSUME, role_arn)
                if d is not None:
                    yield make_edge(EdgeKind.ASSUME_ROLE, p, role_arn, Reason(via=(ASSUME,)), d)
            if not mine:
                continue
            # Principals outside the snapshot: their side is unknown, so the edge carries that assumption.
            for acct in sorted(set(trust.accounts) - set(ctx.index.accounts)):
                node = external_node(acct)
                d = ctx.as_outsider(self.name, node, ASSUME, role_arn,
                                    context={"aws:PrincipalAccount": acct})
                if d is not None:
                    yield make_edge(EdgeKind.ASSUME_ROLE, node, role_arn, Reason(via=(ASSUME,)), d,
                                    assumptions=(OUTSIDE_ASSUMPTION,))
            if trust.everyone:
                d = ctx.as_outsider(self.name, "anonymous", ASSUME, role_arn)
                if d is not None:
                    yield make_edge(EdgeKind.ASSUME_ROLE, PUBLIC, role_arn,
                                    Reason(via=(ASSUME,), note="trust policy allows any AWS principal"), d,
                                    assumptions=(OUTSIDE_ASSUMPTION,))
            for service in trust.services:
                d = ctx.as_outsider(self.name, service, ASSUME, role_arn)
                if d is not None:
                    yield make_edge(EdgeKind.ASSUME_ROLE, service, role_arn, Reason(via=(ASSUME,)), d)


class FederationRule(EdgeRule):
    """SAML and OIDC identity providers named as ``Federated`` in a trust policy."""

    name = "federation"
    kinds = (EdgeKind.FEDERATION,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for role_arn in ctx.index.roles:
            mine = ctx.in_scope(ctx.account(role_arn))
            for provider in ctx.candidates.trust(role_arn).federated:
                if not mine and not ctx.in_scope(ctx.account(provider)):
                    continue
                action = SAML if ":saml-provider/" in provider else WEB_IDENTITY
                d = ctx.as_outsider(self.name, provider, action, role_arn)
                if d is not None:
                    yield make_edge(
                        EdgeKind.FEDERATION, provider, role_arn, Reason(via=(action,)), d,
                        assumptions=("the identity provider authenticates the caller",),
                    )
