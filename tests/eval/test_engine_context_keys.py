"""Context keys an action does not support are treated as absent, with a warning in the answer.

The Service Authorization Reference lists, per action, the condition keys a request for it carries
(the action's own, its resource types', and the global ``aws:`` keys)
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
"""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.eval import DecisionKind, Mode, PolicySet, PolicyType, Request, named_policy
from iamgraph.eval.batch import evaluate_line
from iamgraph.eval.engine import authorize

ACCT = "111122223333"
USER = f"arn:aws:iam::{ACCT}:user/alice"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCT}:orders"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1111aaaa-22bb-33cc-44dd-555555eeeeee"


def _decide(action: str, resource: str, condition: dict[str, Any], context: dict[str, Any],
            mode: Mode = Mode.STRICT) -> Any:
    doc = {"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*", "Condition": condition}]}
    request = Request(principal=USER, action=action, resource=resource, resource_account=ACCT, context=context)
    return authorize(request, PolicySet(identity=(named_policy(doc, "p", PolicyType.IDENTITY),)), mode=mode)


def test_a_key_of_another_action_is_dropped_with_a_warning() -> None:
    # s3:prefix belongs to s3:ListBucket; SendMessage never carries it, so the Allow's condition fails.
    d = _decide("sqs:SendMessage", QUEUE, {"StringEquals": {"s3:prefix": "a/"}}, {"s3:prefix": "a/"})
    assert d.decision is DecisionKind.IMPLICITLY_DENIED
    assert d.unsupported_keys == ("s3:prefix",)


def test_the_same_key_on_the_action_that_supports_it_is_used() -> None:
    d = _decide("s3:ListBucket", "arn:aws:s3:::b", {"StringEquals": {"s3:prefix": "a/"}}, {"s3:prefix": "a/"})
    assert d.allowed and d.unsupported_keys == ()


@pytest.mark.parametrize(("action", "resource", "key", "value"), [
    # global keys are always supported
    ("sqs:SendMessage", QUEUE, "aws:SourceIp", "10.1.2.3"),
    # a key of the action's resource type
    ("kms:Decrypt", KEY, "kms:ResourceAliases", ["alias/app"]),
    # a templated key (s3:ExistingObjectTag/<key>)
    ("s3:GetObject", "arn:aws:s3:::b/k", "s3:ExistingObjectTag/team", "blue"),
    # identity-provider keys are no service's namespace: not judged
    ("sts:AssumeRoleWithWebIdentity", f"arn:aws:iam::{ACCT}:role/ci", "token.actions.githubusercontent.com:sub",
     "repo:o/r:ref:refs/heads/main"),
    # an action the catalog does not know: not judged here
    ("sqs:NoSuchAction", QUEUE, "s3:prefix", "a/"),
])
def test_supported_or_unjudged_keys_are_kept(action: str, resource: str, key: str, value: Any) -> None:
    op = "ForAnyValue:StringEquals" if isinstance(value, list) else (
        "IpAddress" if key == "aws:SourceIp" else "StringEquals")
    cond_value = "10.0.0.0/8" if key == "aws:SourceIp" else value
    d = _decide(action, resource, {op: {key: cond_value}}, {key: value})
    assert d.unsupported_keys == ()
    if not action.startswith(("kms:", "sts:")):  # those need a key or trust policy too
        assert d.allowed


def test_a_templated_key_of_another_action_is_dropped() -> None:
    d = _decide("s3:ListBucket", "arn:aws:s3:::b", {"StringEquals": {"s3:ExistingObjectTag/team": "blue"}},
                {"s3:ExistingObjectTag/team": "blue"})
    assert d.decision is DecisionKind.IMPLICITLY_DENIED and d.unsupported_keys == ("s3:existingobjecttag/team",)


def test_discovery_mode_treats_a_dropped_key_as_known_absent() -> None:
    d = _decide("sqs:SendMessage", QUEUE, {"StringEquals": {"s3:prefix": "a/"}}, {"s3:prefix": "a/"},
                mode=Mode.DISCOVERY)
    assert d.decision is DecisionKind.IMPLICITLY_DENIED and not d.conditions


def test_batch_output_warns() -> None:
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    out = evaluate_line({"id": 1, "request": {"principal": USER, "action": "sqs:SendMessage", "resource": QUEUE,
                                              "context": {"s3:prefix": "a/", "aws:SourceIp": "10.1.2.3"}},
                         "policies": {"identity": [allow]}})
    assert out["decision"] == "Allowed"
    assert len(out["warnings"]) == 1 and "s3:prefix" in out["warnings"][0]


# ------------------------------------------------- one batch, lines that differ only in the keys the action drops

_READS_PREFIX = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"StringEquals": {"s3:prefix": "a/"}}},
]}
_READS_NOTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}


def _line(i: int, policy: dict[str, Any], context: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps({"id": i, "request": {"principal": USER, "action": "sqs:SendMessage", "resource": QUEUE,
                                              "context": context},
                         "policies": {"identity": [policy]}}) + b"\n"


# (policy, context, strict answer, discovery answer, warned keys). s3:prefix is s3:ListBucket's key: SendMessage never
# carries it (Service Authorization Reference), so where it is supplied it is absent and the answer says so.
_VARIANTS: list[tuple[dict[str, Any], dict[str, Any], str, str, tuple[str, ...]]] = [
    # The answer turns on the dropped key: supplied, it is known absent (no residual condition); not supplied,
    # discovery mode leaves it as a condition.
    (_READS_PREFIX, {"s3:prefix": "a/"}, "ImplicitlyDenied", "ImplicitlyDenied", ("s3:prefix",)),
    (_READS_PREFIX, {}, "ImplicitlyDenied", "Allowed if s3:prefix", ()),
    (_READS_PREFIX, {"aws:SourceIp": "10.1.2.3"}, "ImplicitlyDenied", "Allowed if s3:prefix", ()),
    # No policy reads the key: the decision is the same either way, the warning only where the key was supplied.
    (_READS_NOTHING, {"s3:prefix": "a/"}, "Allowed", "Allowed", ("s3:prefix",)),
    (_READS_NOTHING, {}, "Allowed", "Allowed", ()),
    (_READS_NOTHING, {"s3:prefix": "a/", "s3:delimiter": "/"}, "Allowed", "Allowed", ("s3:prefix", "s3:delimiter")),
]


@pytest.mark.parametrize("mode", [Mode.STRICT, Mode.DISCOVERY])
def test_each_line_of_a_batch_warns_of_its_own_dropped_keys(mode: Mode) -> None:
    """Lines with the same policies and request that differ only in the context keys the action does not support
    share every cache of the batch reader (the whole policy set from its second sight, compiled statements, plans,
    the unsupported-key answers): the decision and the warning of each are still its own, whichever line came first.
    """
    from iamgraph.eval.batch import evaluate_lines

    order = [v for _ in range(40) for v in (_VARIANTS if _ % 2 else _VARIANTS[::-1])]  # both orders, many sights
    answers = list(evaluate_lines([_line(i, *v[:2]) for i, v in enumerate(order)], "t.jsonl", mode))
    assert len(answers) == len(order)
    for (_, out), (_policy, context, strict, discovery, warned) in zip(answers, order, strict=True):
        assert out["error"] is None
        expected = strict if mode is Mode.STRICT else discovery
        if expected == "Allowed if s3:prefix":
            assert out["decision"] == "Allowed"
            assert [[c["key"] for c in term] for term in out["conditions"]] == [["s3:prefix"]], context
        else:
            assert (out["decision"], out["conditions"]) == (expected, []), context
        assert [w.split()[2] for w in out["warnings"]] == list(warned), context
