"""Taking over a resource by rewriting its resource-based policy (or granting through KMS grants).

After such a call the caller can write a policy that allows itself anything on the resource, so the
query layer evaluates its access with that policy replaced (SCPs, RCPs and boundaries still apply).
These calls can come from other accounts when the current resource policy allows them, so
candidates are the identity index (any account) plus principals the resource policy names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from itertools import chain

from iamgraph.graph.context import POLICY_WRITERS, BuildContext
from iamgraph.graph.rules.assume import OUTSIDE_ASSUMPTION, PUBLIC, external_node
from iamgraph.graph.rules.base import EdgeRule, make_edge
from iamgraph.graph.types import Edge, EdgeKind, Reason

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_DIGITS = re.compile(r"[0-9]{12,}")


def _account_ids_in(text: str) -> frozenset[str]:
    """Every 12-digit string that occurs in ``text``: an account id ``a`` is in this set exactly when
    ``a in text`` (a longer run of digits holds one at each offset)."""
    return frozenset(run[i:i + 12] for m in _DIGITS.finditer(text) for run in (m.group(),)
                     for i in range(len(run) - 11))


def _by_account(ctx: BuildContext,
                callers: dict[str, tuple[str, ...]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``callers`` (a ``principals_with`` answer, kept by the candidate index) grouped by account, once per
    answer: (12-digit account ids, any other account string such as ""). Each resource then looks only at the
    accounts its policy can let in, instead of every caller in the organization (at 860 accounts that scan was
    a seventh of the build)."""
    table: dict[int, tuple[object, tuple[dict[str, list[str]], dict[str, list[str]]]]] = ctx.cache.setdefault(
        "callers_by_account", {})
    hit = table.get(id(callers))
    if hit is None or hit[0] is not callers:
        numbered: dict[str, list[str]] = {}
        other: dict[str, list[str]] = {}
        for p in callers:
            a = ctx.account(p)
            (numbered if _ACCOUNT_ID.fullmatch(a) else other).setdefault(a, []).append(p)
        # The answer rides along: the key is its id(), unique only while it lives.
        hit = table[id(callers)] = (callers, (numbered, other))
    return hit[1]


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
            text: str | None = None
            ids: frozenset[str] = frozenset()
            for action in actions:
                callers = ctx.principals_in_scope(action) if not mine else ctx.candidates.principals_with(action)
                named, everyone, outside = ctx.resource_principals(res.arn, (action,))
                if not mine:
                    named = {p for p in named if ctx.in_scope(ctx.account(p))}
                    if not callers and not named:
                        continue
                # Another account's principal can only get in through the resource policy, which then
                # names it, its account, or everyone: others are not candidates.
                if everyone:
                    pool: Iterable[str] = callers
                else:
                    numbered, other = _by_account(ctx, callers)
                    if text is None:
                        text = json.dumps(res.policy) if res.policy is not None else ""
                        ids = _account_ids_in(text) | {racct}
                    pool = chain((p for a in ids if a in numbered for p in numbered[a]),
                                 (p for a, members in other.items() if a == racct or a in text for p in members))
                candidates = {p for p in pool if ctx.candidates.may(p, action, res.arn)}
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
