"""The engine's conformance suite: every case in tests/eval/cases/*.json through the batch interface.

Expectations come from AWS's documentation (each case cites its page), not from what the engine
returns. A case the engine gets wrong, and that we are sure of, goes in KNOWN_ENGINE_BUGS so it is
reported as an expected failure (strict: the day the engine is fixed, the entry must go).
How cases are written: docs/conformance.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from case_schema import Case, load_case_files

from iamgraph.eval import Mode
from iamgraph.eval.batch import evaluate_line

MIN_CASES = 450

TOPIC_FILES = frozenset(
    {
        "operators-string.json",
        "operators-numeric.json",
        "operators-date.json",
        "operators-bool-binary-null.json",
        "operators-ip.json",
        "operators-arn.json",
        "set-operators.json",
        "ifexists.json",
        "variables.json",
        "action-resource-matching.json",
        "principal-notprincipal.json",
        "identity-vs-resource-same-account.json",
        "cross-account.json",
        "boundaries.json",
        "session-policies.json",
        "scps.json",
        "rcps.json",
        "kms.json",
        "trust-policies.json",
        "s3.json",
        "discovery-mode.json",
        "malformed.json",
        "service-rules.json",
        "kms-grants.json",
        "vpc-endpoints.json",
    }
)

# case id -> why the engine is wrong (see /work/main/.coord/eval-disagreements.md for the quotes).
KNOWN_ENGINE_BUGS: dict[str, str] = {}

_FILES = load_case_files()
_CASES: list[Case] = [case for f in _FILES.values() for case in f.cases]


def _params() -> Iterator[Any]:
    for case in _CASES:
        marks = []
        if case.id in KNOWN_ENGINE_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_ENGINE_BUGS[case.id]))
        yield pytest.param(case, id=case.id, marks=marks)


def _residuals(conditions: Any) -> list[dict[str, Any]]:
    """Every residual condition (an object with a "key") anywhere in the output's conditions."""
    found: list[dict[str, Any]] = []
    stack = [conditions]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("key"), str):
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def _condition_keys(conditions: Any) -> set[str]:
    """Every condition key named in the residual conditions, lower-cased (keys are case-insensitive)."""
    return {r["key"].lower() for r in _residuals(conditions)}


def test_case_files_are_the_documented_topics() -> None:
    assert set(_FILES) == TOPIC_FILES


def test_enough_cases_with_unique_ids() -> None:
    ids = [case.id for case in _CASES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate case ids: {duplicates}"
    assert len(ids) >= MIN_CASES


def test_known_bugs_name_real_cases() -> None:
    ids = {case.id for case in _CASES}
    assert set(KNOWN_ENGINE_BUGS) <= ids


def test_every_decision_kind_is_expected_somewhere() -> None:
    # A suite that only ever expects one answer cannot catch an engine that always gives it.
    expected = {case.expect.decision for case in _CASES if case.expect.decision}
    assert expected == {"Allowed", "ExplicitlyDenied", "ImplicitlyDenied"}
    assert any(case.expect.conditional for case in _CASES)
    assert any(case.expect.error for case in _CASES)


@pytest.mark.parametrize("case", list(_params()))
def test_case(case: Case) -> None:
    line = copy.deepcopy(case.input)
    out = evaluate_line(line, Mode(case.mode))
    assert isinstance(out, dict), f"evaluate_line returned {type(out).__name__}"
    assert set(out) >= {"id", "decision", "conditions", "reasons", "error"}, f"output keys: {sorted(out)}"
    assert out["id"] == case.input.get("id")
    expect = case.expect
    if expect.error:
        assert isinstance(out["error"], str) and out["error"], f"expected an error, got {out}"
        # Fail closed: an input that could not be evaluated never reads as a grant.
        assert out["decision"] != "Allowed", f"error but Allowed: {out}"
        if expect.decision is not None:
            assert out["decision"] == expect.decision
        return
    assert out["error"] is None, f"unexpected error: {out['error']}"
    assert out["decision"] == expect.decision, f"{case.rule}\nexpected {expect.decision}, got {out}"
    refused = (out.get("refusedBy") or {}).get("rule")
    assert refused == expect.refused_by, f"{case.rule}\nexpected refusedBy {expect.refused_by}, got {out}"
    conditions = out["conditions"] or []
    if expect.conditional:
        assert conditions, f"expected a conditional answer, got {out}"
        missing = {k.lower() for k in expect.condition_keys or []} - _condition_keys(conditions)
        assert not missing, f"residual conditions lack {sorted(missing)}: {conditions}"
        if expect.negated_keys is not None:
            negated = {k.lower() for k in expect.negated_keys}
            seen = {(r["key"].lower(), r.get("negated")) for r in _residuals(conditions)}
            for key in {k.lower() for k in expect.condition_keys or []}:
                want = key in negated
                assert (key, want) in seen, f"{key} should appear with negated={want}: {conditions}"
    else:
        # Strict mode never answers conditionally; a discovery case that says conditional: false
        # means every key the decision needs was supplied (or the outcome does not depend on it).
        assert not conditions, f"expected a definite answer, got conditions {conditions}"
