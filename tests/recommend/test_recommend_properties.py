"""Hypothesis: for random policies and random usage, a trimmed policy allows every used call the original
allowed, and nothing the original did not (both judged by the engine, over today's catalog actions and names AWS
does not have yet: the enumeration is the oracle); and the structural containment proof holds."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.eval import Mode, named_policy
from iamgraph.eval.engine import authorize
from iamgraph.eval.types import Decision, PolicySet, PolicyType, Request
from iamgraph.recommend import Call, RecommendConfig, trim_document
from iamgraph.recommend.containment import prove_contained

P = "arn:aws:iam::111122223333:user/alice"
ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "sqs:SendMessage",
           "sqs:ReceiveMessage", "iam:PassRole", "ec2:DescribeInstances"]
PATTERNS = [*ACTIONS, "s3:*", "s3:Get*", "sqs:*", "*", "ec2:Describe*"]
# Names no AWS service has (yet), matched only by wildcards: a proposal must not reach them where the original did not.
FUTURE = ["s3:ReplicateFutureAction", "s3:GetFutureThing", "sqs:SendFutureMessage"]
RESOURCES = ["arn:aws:s3:::b1", "arn:aws:s3:::b1/a/1", "arn:aws:s3:::b1/a/2", "arn:aws:s3:::b1/b/3",
             "arn:aws:s3:::b2/x", "arn:aws:sqs:us-east-1:111122223333:q1", "arn:aws:iam::111122223333:role/r",
             "*"]
RES_PATTERNS = [*RESOURCES[:-1], "*", "arn:aws:s3:::b1/*", "arn:aws:s3:::b1/a/*", "arn:aws:sqs:*:*:q*",
                "arn:aws:s3:::b1/${aws:username}/*"]
CONDS = [None, {"Bool": {"aws:SecureTransport": "true"}}, {"StringEquals": {"aws:PrincipalTag/team": "a"}}]

statement = st.fixed_dictionaries({
    "Effect": st.sampled_from(["Allow", "Allow", "Allow", "Deny"]),
    "act": st.tuples(st.booleans(), st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3, unique=True)),
    "res": st.tuples(st.booleans(), st.lists(st.sampled_from(RES_PATTERNS), min_size=1, max_size=3, unique=True)),
    "cond": st.sampled_from(CONDS),
    "sid": st.sampled_from([None, "S", "KeepMe"]),
})


def _stmt(raw: dict[str, Any], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": raw["Effect"]}
    if raw["sid"]:
        out["Sid"] = f"{raw['sid']}{i}"
    out["NotAction" if raw["act"][0] and raw["act"][1] != ["*"] and i % 3 == 0 else "Action"] = raw["act"][1]
    out["NotResource" if raw["res"][0] and i % 4 == 1 else "Resource"] = raw["res"][1]
    if raw["cond"]:
        out["Condition"] = raw["cond"]
    return out


def _decide(doc: dict[str, Any], action: str, resource: str, ctx: dict[str, Any]) -> Decision:
    np = named_policy(doc, "p", PolicyType.IDENTITY)
    return authorize(Request(principal=P, action=action, resource=resource, context=ctx),
                     PolicySet(identity=(np,)), mode=Mode.DISCOVERY)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    statements=st.lists(statement, min_size=1, max_size=4),
    used=st.lists(st.tuples(st.sampled_from(ACTIONS), st.sampled_from([*RESOURCES, None])), max_size=6),
    unobservable=st.sets(st.sampled_from(ACTIONS), max_size=2),
    threshold=st.sampled_from([1, 10]),
    ctx=st.sampled_from([{}, {"aws:SecureTransport": True, "aws:username": "alice"}]),
)
def test_trimmed_allows_all_used_and_nothing_new(statements: list[dict[str, Any]], used: list[tuple[str, str | None]],
                                                 unobservable: set[str], threshold: int, ctx: dict[str, Any]) -> None:
    doc = {"Version": "2012-10-17", "Statement": [_stmt(s, i) for i, s in enumerate(statements)]}
    calls = [Call(principal_arn=P, action=a, resource=r) for a, r in used]
    t = trim_document(doc, calls, keep_action=lambda a: a in unobservable,
                      config=RecommendConfig(resource_wildcard_threshold=threshold))
    if not t.document["Statement"]:
        new_doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    else:
        new_doc = t.document
    # every used call the original allowed stays allowed (a call of unknown resource: on every resource)
    for a, r in used:
        for res in [r] if r is not None else RESOURCES:
            before = _decide(doc, a, res, ctx)
            if before.possible:
                after = _decide(new_doc, a, res, ctx)
                assert after.possible, (a, res, t.document)
                assert after.allowed or not before.allowed, (a, res)
    assert prove_contained(doc, [t.document]).contained, (doc, t.document)
    # nothing new, on every action × resource of the universe, including unobservable and future ones
    for a in [*ACTIONS, *FUTURE]:
        for res in RESOURCES:
            after = _decide(new_doc, a, res, ctx)
            if after.possible:
                before = _decide(doc, a, res, ctx)
                assert before.possible, (a, res, doc, t.document)
                assert before.allowed or not after.allowed, (a, res)
