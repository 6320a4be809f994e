"""The batch line format and malformed input: clear errors naming the policy and the statement."""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.errors import PolicyParseError
from iamgraph.eval import Mode, PolicyType, named_policy
from iamgraph.eval.batch import evaluate_line

USER = "arn:aws:iam::111122223333:user/alice"
GOOD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def line(**policies: Any) -> dict[str, Any]:
    return {"id": 7, "request": {"principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"},
            "policies": policies}


def test_named_policy_error_names_policy_and_statement() -> None:
    bad = {"Version": "2012-10-17", "Statement": [GOOD["Statement"][0], {"Effect": "Allow", "Action": "s3:*"}]}
    with pytest.raises(PolicyParseError) as err:
        named_policy(bad, "arn:aws:iam::111122223333:policy/p", PolicyType.IDENTITY)
    assert "Statement[1]" in str(err.value) and "Resource" in str(err.value)


def test_named_policy_is_cached_by_content() -> None:
    a = named_policy(dict(GOOD), "x", PolicyType.IDENTITY)
    b = named_policy({"Statement": GOOD["Statement"], "Version": "2012-10-17"}, "y", PolicyType.IDENTITY)
    assert a.policy is b.policy and a.policy_id == "x" and b.policy_id == "y"


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"id": 1}, "request must be an object"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject"}}, "request.resource"),
        ({"id": 1, "request": {"principal": USER, "action": "GetObject", "resource": "*"}}, "request.action"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject", "resource": "*", "extra": 1}},
         "unknown key(s) extra"),
        (line(identity=GOOD), "policies.identity: must be a list"),
        (line(identity=[GOOD], scps=[GOOD]), "policies.scps[0]: must be a list"),
        (line(identity=[{"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "s3:*",
                                                                  "Resource": "*"}]}]),
         "policies.identity[0]: Statement[0].Effect"),
        (line(resource={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                                 "Resource": "*"}]}),
         "policies.resource: Statement[0]: a resource-based policy statement needs Principal"),
        (line(identity=["not a policy"]), "policies.identity[0]"),
        (line(permissionBoundary=[GOOD]), "policies.permissionBoundary: a policy must be a JSON object"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject", "resource": "*",
                               "context": {"aws:SourceIp": {"a": 1}}}, "policies": {}}, "request.context.aws:SourceIp"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject", "resource": "*",
                               "resourceAccount": "12"}, "policies": {}}, "12-digit"),
    ],
)
def test_bad_lines_get_an_error_and_never_a_grant(obj: Any, fragment: str) -> None:
    for mode in (Mode.STRICT, Mode.DISCOVERY):
        out = evaluate_line(obj, mode)
        assert out["decision"] == "ImplicitlyDenied"
        assert fragment in out["error"], out["error"]
        assert set(out) >= {"id", "decision", "conditions", "reasons", "error"}


def test_evaluation_error_keeps_the_decision_and_names_the_statement() -> None:
    broken_deny = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Broken", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}]}
    out = evaluate_line(line(identity=[GOOD, broken_deny]))
    assert out["decision"] == "ExplicitlyDenied"
    assert out["error"].startswith("policies.identity[1] Statement[0]: Condition.DateLessThan")


def test_output_shape_for_a_conditional_answer() -> None:
    cond = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                                                    "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    out = evaluate_line(line(identity=[cond]), Mode.DISCOVERY)
    assert out == {
        "id": 7,
        "decision": "Allowed",
        "conditions": [[{"operator": "Bool", "key": "aws:SecureTransport", "values": ["true"], "negated": False}]],
        "reasons": [{"policyType": "identity", "policyId": "policies.identity[0]", "statementIndex": 0,
                     "sid": None, "effect": "Allow"}],
        "blockedBy": [],
        "orgGaps": [],
        "refusedBy": None,
        "warnings": [],
        "error": None,
    }
