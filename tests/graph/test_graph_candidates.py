"""The candidate index's answer to "who might be allowed this action", checked against the plain reading of every
principal's Allow statements (IAM's Action/NotAction matching: case-insensitive names with ``*`` and ``?``,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)."""

from __future__ import annotations

import re
from functools import cache

import pytest

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.graph.candidates import CandidateIndex, statement_covers, statement_resources
from iamgraph.snapshot.index import SnapshotIndex


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.IGNORECASE)


def _covers(action: str, names: tuple[str, ...]) -> bool:
    return any(_glob(n).match(action) for n in names)


def _plain(index: CandidateIndex, action: str) -> dict[str, tuple[str, ...]]:
    """Per principal, the resource patterns of its Allow statements whose Action names ``action`` or whose
    NotAction does not (a statement without Resource counts as ``*``), first seen first."""
    out: dict[str, tuple[str, ...]] = {}
    for principal, statements in index.statements.items():
        patterns: list[str] = []
        for st in statements:
            hit = (st.action is not None and _covers(action, st.action)) or (
                st.action is None and st.not_action is not None and not _covers(action, st.not_action))
            if hit:
                patterns.extend(st.resource if st.resource is not None else ("*",))
        if patterns:
            out[principal] = tuple(dict.fromkeys(patterns))
    return out


@pytest.fixture(scope="module")
def index() -> CandidateIndex:
    return CandidateIndex(SnapshotIndex(build_demo_snapshot(DemoConfig())))


def _actions(index: CandidateIndex) -> list[str]:
    named = {a for sts in index.statements.values() for st in sts for a in (st.action or st.not_action or ())}
    literal = sorted(a for a in named if "*" not in a and "?" not in a)
    # Names no policy spells out, reached only through wildcards or NotAction, and odd case.
    return [*literal, "S3:GETOBJECT", "iam:PassRole", "ec2:RunInstances", "kms:ReEncryptFrom",
            "organizations:ListAccounts", "nosuchservice:DoThing", "sts:AssumeRole"]


def _scan(index: CandidateIndex, action: str) -> dict[str, tuple[str, ...]]:
    """The index's answer as one scan of every policy in the index's order produces it (each policy's covering
    patterns appended to its holders'): the order rules meet principals and patterns in, which edge order follows."""
    collected: dict[str, list[str]] = {}
    for pkey, allows in index._policy_allows.items():
        patterns = [r for st in allows if statement_covers(st, action) for r in statement_resources(st)]
        for principal in index._holders.get(pkey, ()) if patterns else ():
            collected.setdefault(principal, []).extend(patterns)
    return {p: tuple(dict.fromkeys(pats)) for p, pats in collected.items()}


def test_principals_with_is_the_plain_reading_of_every_allow_statement(index: CandidateIndex) -> None:
    actions = _actions(index)
    assert len(actions) > 50
    for action in actions:
        got = index.principals_with(action)
        want = _plain(index, action)
        # The same principals with the same patterns...
        assert {p: set(v) for p, v in got.items()} == {p: set(v) for p, v in want.items()}, action
        # ...in the order of one scan over the policies.
        assert list(got.items()) == list(_scan(index, action).items()), action


def test_principals_with_in_an_account_is_that_accounts_share_of_the_answer_in_its_order() -> None:
    """``BuildContext.principals_with_in``, the callers of one account the per-item rules (ECS task-role override,
    Glue job role, launch templates) look at: exactly the principals of ``principals_with`` whose account it is, in
    that answer's order, with their patterns -- for every account of a generated organization (and none for an
    account without principals)."""
    from iamgraph.graph.context import BuildContext

    ctx = BuildContext(SnapshotIndex(build_demo_snapshot(DemoConfig(accounts=6, roles_per_account=20,
                                                                    with_activity=False))))
    accounts = [*ctx.index.accounts, "000000000000"]
    for action in ("ecs:RunTask", "ecs:StartTask", "glue:UpdateJob", "ec2:CreateLaunchTemplateVersion",
                   "iam:PassRole", "sts:AssumeRole"):
        every = ctx.candidates.principals_with(action)
        assert every, action
        for acct in accounts:
            want = [(p, pats) for p, pats in every.items() if ctx.account(p) == acct]
            assert ctx.principals_with_in(action, acct) == want, (action, acct)
        assert sum(len(ctx.principals_with_in(action, a)) for a in accounts) == len(every)
