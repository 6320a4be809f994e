"""Invariants of the evaluation logic, checked on generated policy sets (issue 3).

- adding a Deny statement never turns a decision into Allowed;
- adding an Allow to the identity policies never turns Allowed into a deny;
- removing an Allow from an SCP level never grants;
- discovery mode with every key supplied equals strict mode;
- strict results do not depend on the order of statements and policies;
- discovery mode never misses an access path: whatever the strict answer for a full context, the
  discovery answer for any part of that context is at least "possible".
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.eval import Decision, Mode, PolicySet, PolicyType, Request, named_policy
from iamgraph.eval.engine import authorize

A = "111122223333"
B = "444455556666"
USER = f"arn:aws:iam::{A}:user/alice"
ROLE = f"arn:aws:iam::{A}:role/app"
SESSION = f"arn:aws:sts::{A}:assumed-role/app/s1"
OUTSIDER = f"arn:aws:iam::{B}:user/eve"

ACTIONS = ["s3:GetObject", "s3:PutObject", "sqs:SendMessage", "kms:Decrypt"]
ACTION_PATTERNS = ["*", "*", "s3:GetObject", "s3:Get*", "s3:*", "sqs:SendMessage", "sqs:*", "kms:*", "*", "s3:Put?bject"]
RESOURCES = [
    "arn:aws:s3:::data/k",
    "arn:aws:s3:::blue/k",
    f"arn:aws:sqs:us-east-1:{A}:q",
    f"arn:aws:kms:us-east-1:{A}:key/k1",
    f"arn:aws:sqs:us-east-1:{B}:q",
]
RESOURCE_PATTERNS = ["*", "*", "*", "arn:aws:s3:::data/*", f"arn:aws:sqs:*:{A}:*", "arn:aws:sqs:*:*:q",
                     f"arn:aws:kms:*:{A}:key/*", "arn:aws:s3:::other/*", "arn:aws:s3:::${aws:PrincipalTag/team}/*",
                     "arn:aws:s3:::${aws:PrincipalTag/team}*/${aws:PrincipalTag/owner}"]
CONDITIONS: list[dict[str, Any]] = [
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
    {"StringEquals": {"aws:PrincipalTag/team": "blue"}},
    {"StringNotEquals": {"aws:PrincipalTag/team": ["blue", "red"]}},
    {"StringLike": {"aws:PrincipalTag/team": "b*"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}},
    {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}},
    {"Null": {"aws:TokenIssueTime": "true"}},
    {"NumericLessThan": {"s3:max-keys": "10"}},
    {"StringEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/owner}"}},
]
PRINCIPALS = ["*", {"AWS": USER}, {"AWS": A}, {"AWS": f"arn:aws:iam::{B}:root"}, {"AWS": ROLE},
              {"AWS": SESSION}, {"AWS": OUTSIDER}]
FULL_CONTEXT: dict[str, Any] = {
    "aws:SourceIp": "10.1.2.3",
    "aws:SecureTransport": True,
    "aws:MultiFactorAuthPresent": False,
    "aws:PrincipalTag/team": "blue",
    "aws:PrincipalTag/owner": "blue",
    "aws:TagKeys": ["env"],
    "aws:TokenIssueTime": "2026-01-01T00:00:00Z",
    "s3:max-keys": "5",
}

# Biased towards Allows without conditions so that generated requests are often allowed and the
# properties have something to break.
condition = st.one_of(st.none(), st.none(), st.sampled_from(CONDITIONS))
EFFECTS = ["Allow", "Allow", "Allow", "Deny"]
FULL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
RCP_FULL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}


@st.composite
def statement(draw: st.DrawFn, *, effect: str | None = None, principal: bool = False) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(EFFECTS))}
    if principal:
        s["Principal"] = draw(st.sampled_from(PRINCIPALS))
    key = "NotAction" if draw(st.integers(0, 7)) == 0 else "Action"
    s[key] = draw(st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2, unique=True))
    s["NotResource" if draw(st.integers(0, 7)) == 0 else "Resource"] = draw(st.sampled_from(RESOURCE_PATTERNS))
    cond = draw(condition)
    if cond is not None:
        s["Condition"] = cond
    return s


def policy(*, principal: bool = False, effect: str | None = None, max_size: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda stmts: {"Version": "2012-10-17", "Statement": stmts},
        st.lists(statement(principal=principal, effect=effect), min_size=1, max_size=max_size),
    )


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "principal": draw(st.sampled_from([USER, SESSION, ROLE, OUTSIDER])),
        "action": draw(st.sampled_from(ACTIONS)),
        "resource": draw(st.sampled_from(RESOURCES)),
        "identity": draw(st.lists(policy(), min_size=1, max_size=2)),
        "resource_policy": draw(st.one_of(st.none(), policy(principal=True))),
        "boundary": draw(st.one_of(st.none(), st.none(), policy())),
        "session": draw(st.one_of(st.none(), st.none(), policy())),
        "scps": draw(st.lists(_level(FULL, policy()), max_size=2)),
        "rcps": draw(st.lists(_level(RCP_FULL, policy(principal=True)), max_size=1)),
        "context": draw(st.dictionaries(st.sampled_from(sorted(FULL_CONTEXT)), st.just(None), max_size=8)),
    }


def _level(full: dict[str, Any], pol: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """An organization level: usually the full-access policy AWS attaches, plus generated ones."""
    return st.builds(lambda keep, extra: ([full] if keep else []) + extra,
                     st.sampled_from([True, True, True, False]), st.lists(pol, min_size=0, max_size=1)).filter(bool)


def run(sc: dict[str, Any], *, mode: Mode = Mode.STRICT, context: dict[str, Any] | None = None) -> Decision:
    def np(d: dict[str, Any], t: PolicyType, i: str) -> Any:
        return named_policy(d, i, t)

    ps = PolicySet(
        identity=tuple(np(d, PolicyType.IDENTITY, f"i{i}") for i, d in enumerate(sc["identity"])),
        resource=np(sc["resource_policy"], PolicyType.RESOURCE, "r") if sc["resource_policy"] else None,
        permission_boundary=np(sc["boundary"], PolicyType.PERMISSION_BOUNDARY, "b") if sc["boundary"] else None,
        session=np(sc["session"], PolicyType.SESSION, "s") if sc["session"] else None,
        scps=tuple(tuple(np(d, PolicyType.SCP, f"scp{i}.{j}") for j, d in enumerate(lv)) for i, lv in enumerate(sc["scps"])),
        rcps=tuple(tuple(np(d, PolicyType.RCP, f"rcp{i}.{j}") for j, d in enumerate(lv)) for i, lv in enumerate(sc["rcps"])),
    )
    if context is None:
        context = {k: FULL_CONTEXT[k] for k in sc["context"]}
    req = Request(principal=sc["principal"], action=sc["action"], resource=sc["resource"], context=context)
    return authorize(req, ps, mode=mode)


PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = st.sampled_from([Mode.STRICT, Mode.DISCOVERY])


@PROPS
@given(sc=scenario(), mode=MODES, where=st.integers(0, 5), extra=statement(effect="Deny", principal=True))
def test_adding_a_deny_never_grants(sc: dict[str, Any], mode: Mode, where: int, extra: dict[str, Any]) -> None:
    before = run(sc, mode=mode)
    after_sc = _with_statement(sc, where, extra)
    after = run(after_sc, mode=mode)
    assert not after.allowed or before.allowed
    assert not after.possible or before.possible


@PROPS
@given(sc=scenario(), mode=MODES, extra=statement(effect="Allow"))
def test_adding_an_identity_allow_never_denies(sc: dict[str, Any], mode: Mode, extra: dict[str, Any]) -> None:
    before = run(sc, mode=mode)
    identity = [*sc["identity"], {"Version": "2012-10-17", "Statement": [extra]}]
    after = run({**sc, "identity": identity}, mode=mode)
    assert not before.allowed or after.allowed
    assert not before.possible or after.possible


@PROPS
@given(sc=scenario(), mode=MODES, pick=st.integers(0, 1000))
def test_removing_an_scp_allow_never_grants(sc: dict[str, Any], mode: Mode, pick: int) -> None:
    spots = [(i, j, k) for i, lv in enumerate(sc["scps"]) for j, d in enumerate(lv)
             for k, s in enumerate(d["Statement"]) if s["Effect"] == "Allow"]
    if not spots:
        return
    i, j, k = spots[pick % len(spots)]
    scps = [[dict(d) for d in lv] for lv in sc["scps"]]
    stmts = [s for n, s in enumerate(scps[i][j]["Statement"]) if n != k]
    if stmts:
        scps[i][j] = {"Version": "2012-10-17", "Statement": stmts}
    else:
        del scps[i][j]
    before = run(sc, mode=mode)
    after = run({**sc, "scps": scps}, mode=mode)
    assert not after.allowed or before.allowed
    assert not after.possible or before.possible


@PROPS
@given(sc=scenario())
def test_discovery_with_every_key_equals_strict(sc: dict[str, Any]) -> None:
    strict = run(sc, context=dict(FULL_CONTEXT))
    disc = run(sc, mode=Mode.DISCOVERY, context=dict(FULL_CONTEXT))
    assert disc.decision is strict.decision
    assert not disc.conditions
    assert disc.reasons == strict.reasons and disc.blocked_by == strict.blocked_by


@PROPS
@given(sc=scenario(), seed=st.integers(0, 2**32 - 1))
def test_strict_result_is_order_independent(sc: dict[str, Any], seed: int) -> None:
    rnd = random.Random(seed)

    def shuffled(d: dict[str, Any] | None) -> dict[str, Any] | None:
        if d is None:
            return None
        stmts = list(d["Statement"])
        rnd.shuffle(stmts)
        return {**d, "Statement": stmts}

    identity = [shuffled(d) for d in sc["identity"]]
    rnd.shuffle(identity)
    scps = [[shuffled(d) for d in rnd.sample(lv, len(lv))] for lv in sc["scps"]]
    rcps = [[shuffled(d) for d in rnd.sample(lv, len(lv))] for lv in sc["rcps"]]
    other = {**sc, "identity": identity, "resource_policy": shuffled(sc["resource_policy"]),
             "boundary": shuffled(sc["boundary"]), "session": shuffled(sc["session"]), "scps": scps, "rcps": rcps}
    a, b = run(sc), run(other)
    assert a.decision is b.decision
    assert set(a.blocked_by) == set(b.blocked_by)
    assert {(r.policy_type, r.effect) for r in a.reasons} == {(r.policy_type, r.effect) for r in b.reasons}


@PROPS
@given(sc=scenario())
def test_discovery_never_misses_a_path(sc: dict[str, Any]) -> None:
    full = run(sc, context=dict(FULL_CONTEXT))
    partial = {k: FULL_CONTEXT[k] for k in sc["context"]}
    disc = run(sc, mode=Mode.DISCOVERY, context=partial)
    if full.allowed:
        assert disc.possible


def _with_statement(sc: dict[str, Any], where: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Add ``extra`` to one of the scenario's policies (making the policy when there is none)."""
    def add(d: dict[str, Any] | None, principal: bool) -> dict[str, Any]:
        s = dict(extra)
        if not principal:
            s.pop("Principal", None)
        return {"Version": "2012-10-17", "Statement": [*(d["Statement"] if d else []), s]}

    out = dict(sc)
    if where == 0:
        out["identity"] = [*sc["identity"][:-1], add(sc["identity"][-1] if sc["identity"] else None, False)]
    elif where == 1:
        out["resource_policy"] = add(sc["resource_policy"], True)
    elif where == 2 and sc["boundary"] is not None:
        out["boundary"] = add(sc["boundary"], False)
    elif where == 3 and sc["session"] is not None:
        out["session"] = add(sc["session"], False)
    elif where == 4 and sc["scps"]:
        out["scps"] = [*sc["scps"][:-1], [*sc["scps"][-1][:-1], add(sc["scps"][-1][-1], False)]]
    elif where == 5 and sc["rcps"]:
        out["rcps"] = [[*sc["rcps"][0][:-1], add(sc["rcps"][0][-1], True)]]
    else:
        out["identity"] = [*sc["identity"], add(None, False)]
    return out
