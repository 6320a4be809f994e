"""Which condition keys a strict answer turned on although nobody supplied them.

In strict mode the given context is the whole context, as AWS sees a real request: a condition on a key
the request does not carry is evaluated as AWS does for an absent key (``StringNotEquals`` matches it), so a
region SCP denies a request that named no region
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html). That is the right strict answer, but it must say so: the same question asked in
discovery mode leaves such conditions residual, and the keys of those residual conditions are exactly the
unsupplied keys the strict answer depended on. Nothing here changes a decision; it only reports.
"""

from __future__ import annotations

from collections.abc import Mapping

from iamgraph.eval.snapshot_eval import Overrides, SnapshotEvaluator
from iamgraph.eval.types import ContextValue, Decision, Mode, PolicySet
from iamgraph.model.policy import Statement


def unsupplied_keys(
    evaluator: SnapshotEvaluator,
    principal: str,
    action: str,
    resource: str,
    strict: Decision,
    *,
    context: Mapping[str, ContextValue] | None = None,
    resource_account: str | None = None,
    overrides: Overrides | None = None,
) -> tuple[str, ...]:
    """The condition keys, sorted and as the policies spell them, whose absence the strict decision
    ``strict`` turned on; () when it did not depend on any key nobody supplied."""
    found = evaluator.ask(principal, action, resource, context=context, mode=Mode.DISCOVERY,
                          resource_account=resource_account, overrides=overrides)
    if not found.conditions and found.decision is strict.decision:
        return ()
    keys: dict[str, str] = {}
    for term in found.conditions:
        for c in term:
            keys.setdefault(c.key.lower(), c.key)
    # The decision can differ without residual conditions: a Deny on an absent key (a region SCP) makes the
    # strict answer ExplicitlyDenied where discovery, finding no Allow either, says ImplicitlyDenied. The
    # deciding statements then name the keys: those neither the snapshot nor the caller supplied.
    supplied = {k.lower() for k in evaluator.principal_context(principal)}
    supplied |= {k.lower() for k in evaluator.resource_context(resource, resource_account)}
    supplied |= {k.lower() for k in (context or {})}
    statements = _statements(evaluator.policy_set(principal, resource, resource_account=resource_account,
                                                  overrides=overrides, action=action))
    for ref in strict.reasons:
        st = statements.get((ref.policy_id, ref.statement_index))
        for clause in st.conditions if st is not None else ():
            low = clause.key.lower()
            if low not in supplied and not _filled_by_snapshot(low):
                keys.setdefault(low, clause.key)
    return tuple(sorted(keys.values(), key=str.lower))


def _filled_by_snapshot(key: str) -> bool:
    # Tag keys the snapshot knows to be absent are given to the engine as absent (None): they are facts,
    # not missing context.
    return key.startswith(("aws:principaltag/", "aws:resourcetag/", "iam:resourcetag/"))


def _statements(ps: PolicySet) -> dict[tuple[str, int], Statement]:
    out: dict[tuple[str, int], Statement] = {}
    policies = [*ps.identity, *(p for p in (ps.resource, ps.permission_boundary, ps.session) if p is not None)]
    for levels in (ps.scps, ps.rcps):
        for level in levels:
            policies.extend(level)
    for np in policies:
        for st in np.policy.statements:
            out[(np.policy_id, st.index)] = st
    return out


def how_to_supply(keys: tuple[str, ...], *, api: bool = False) -> str:
    """One sentence: which keys decided a strict answer unsupplied, and how to give them (CLI or API words)."""
    shown = ", ".join(keys)
    example = next((k for k in keys if k.lower() == "aws:requestedregion"), keys[0])
    it = "them" if len(keys) > 1 else "it"
    if api:
        how = f'supply {it} in request.context (e.g. "{example}": VALUE), or ask with "mode": "discovery"'
    else:
        region = " or --region" if example.lower() == "aws:requestedregion" else ""
        how = f"supply {it} with --context {example}=VALUE{region}, or ask with --mode discovery"
    return (f"strict mode: this answer turned on {shown}, which the request did not supply (an absent key stays "
            f"absent, as in a real request to AWS); {how} to see the conditions")
