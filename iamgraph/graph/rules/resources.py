"""Taking over a resource by rewriting its resource-based policy (or granting through KMS grants).

After such a call the caller can write a policy that allows itself anything on the resource, so the
query layer evaluates its access with that policy replaced (SCPs, RCPs and boundaries still apply).
These calls can come from other accounts when the current resource policy allows them, so
candidates are the identity index (any account) plus principals the resource policy names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from iamgraph.graph.context import POLICY_WRITERS, BuildContext
from iamgraph.graph.rules.assume import OUTSIDE_ASSUMPTION, PUBLIC, external_node
from iamgraph.graph.rules.base import EdgeRule, make_edge
from iamgraph.graph.types import Edge, EdgeKind, Reason


class ResourcePolicyTakeoverRule(EdgeRule):
    name = "resource-policy-takeover"
    kinds = (EdgeKind.RESOURCE_POLICY_TAKEOVER,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for res in ctx.index.resources.values():
            actions = POLICY_WRITERS.get(res.type)
            if not actions:
                continue
            racct = ctx.account(res.arn)
            # A resource outside the scope keeps its edges, but for callers inside it (their policies changed).
            mine = ctx.in_scope(racct)
            for action in actions:
                callers = ctx.principals_in_scope(action) if not mine else ctx.candidates.principals_with(action)
                named, everyone, outside = ctx.resource_principals(res.arn, (action,))
                if not mine:
                    named = {p for p in named if ctx.in_scope(ctx.account(p))}
                    if not callers and not named:
                        continue
                text = json.dumps(res.policy) if res.policy is not None else ""
                # Another account's principal can only get in through the resource policy, which then
                # names it, its account, or everyone: others are not candidates.
                candidates = {p for p in callers
                              if (ctx.account(p) == racct or everyone or ctx.account(p) in text)
                              and ctx.candidates.may(p, action, res.arn)}
                candidates |= named
                if everyone and mine:
                    candidates |= set(ctx.candidates.principals_by_account.get(ctx.account(res.arn), ()))
                for p in sorted(candidates):
                    if ctx.admin_of(p, racct, res.arn):
                        continue  # the account's admin node covers it (AdminControlRule)
                    d = ctx.possible(self.name, p, action, res.arn)
                    if d is not None:
                        yield make_edge(EdgeKind.RESOURCE_POLICY_TAKEOVER, p, res.arn, Reason(via=(action,)), d)
                if not mine:
                    continue
                for acct in sorted(outside):
                    node = external_node(acct)
                    d = ctx.as_outsider(self.name, node, action, res.arn, context={"aws:PrincipalAccount": acct})
                    if d is not None:
                        yield make_edge(EdgeKind.RESOURCE_POLICY_TAKEOVER, node, res.arn, Reason(via=(action,)),
                                        d, assumptions=(OUTSIDE_ASSUMPTION,))
                if everyone:
                    d = ctx.as_outsider(self.name, "anonymous", action, res.arn)
                    if d is not None:
                        yield make_edge(EdgeKind.RESOURCE_POLICY_TAKEOVER, PUBLIC, res.arn, Reason(via=(action,)),
                                        d, assumptions=(OUTSIDE_ASSUMPTION,))
