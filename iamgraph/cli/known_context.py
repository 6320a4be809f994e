"""Apply context the user knows (``--region``) to answers that carry residual conditions.

The graph's answers are computed once for every context, with conditions on keys nobody supplied left as
residual conditions (DESIGN: unknown is not false). When the user then says which region the request goes
to, each residual clause on ``aws:RequestedRegion`` is decided by the engine itself (a one-statement
policy holding just that clause, asked with the key supplied), never by string comparison here: a satisfied
clause is dropped, and an alternative with an unsatisfied clause is impossible in that region.
"""

from __future__ import annotations

from typing import Any

from iamgraph.eval import ask_policies, named_policy
from iamgraph.eval.types import Mode, PolicyType, ResidualCondition

REGION_KEY = "aws:RequestedRegion"

Conditions = tuple[tuple[ResidualCondition, ...], ...]


def _holds(c: ResidualCondition, context: dict[str, Any]) -> bool:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                                   "Condition": {c.operator: {c.key: list(c.values)}}}]}
    np = named_policy(doc, "known-context", PolicyType.IDENTITY)
    return ask_policies("arn:aws:iam::111122223333:user/known-context", "s3:ListBucket", "*", identity=(np,),
                        resource_account="111122223333", context=context, mode=Mode.STRICT).allowed


def apply_known(conditions: Conditions, context: dict[str, Any]) -> Conditions | None:
    """``conditions`` with the clauses on keys in ``context`` decided: None when no alternative survives
    (the access does not exist in that context), () when one alternative is now unconditional."""
    if not conditions or not context:
        return conditions
    known = {k.lower() for k in context}
    out: list[tuple[ResidualCondition, ...]] = []
    for term in conditions:
        kept: list[ResidualCondition] = []
        possible = True
        for c in term:
            if c.key.lower() not in known:
                kept.append(c)
                continue
            # A negated clause comes from a Deny: access needs the clause to be false.
            if _holds(c, context) == c.negated:
                possible = False
                break
        if possible:
            if not kept:
                return ()
            out.append(tuple(kept))
    return tuple(out) if out else None
