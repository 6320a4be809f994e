"""Condition operators, one table row per documented behaviour.

Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
(absent keys: "If the key that you specify in a policy condition is not present in the request
context, the values do not match and the condition is false. If the policy condition requires that
the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the
condition is true."), sets:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
"""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.eval import Mode, PolicySet, PolicyType, Request, named_policy
from iamgraph.eval.engine import authorize

ACCT = "111122223333"
USER = f"arn:aws:iam::{ACCT}:user/alice"
MISSING = object()


def _decide(condition: dict[str, Any], context: dict[str, Any], *, mode: Mode = Mode.STRICT, version: str = "2012-10-17"):
    # An action that supports the keys the table uses (s3:prefix, s3:max-keys; ec2:InstanceType): the
    # engine treats a key the action does not support as absent (context_keys.py).
    ec2 = any(k.lower().startswith("ec2:") for k in context)
    action, resource = ("ec2:RunInstances", f"arn:aws:ec2:us-east-1:{ACCT}:instance/*") if ec2 else (
        "s3:ListBucket", "arn:aws:s3:::b")
    doc = {
        "Version": version,
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*", "Condition": condition}],
    }
    request = Request(principal=USER, action=action, resource=resource, resource_account=ACCT, context=context)
    return authorize(request, PolicySet(identity=(named_policy(doc, "p", PolicyType.IDENTITY),)), mode=mode)


def _matches(operator: str, key: str, policy_values: Any, value: Any) -> bool:
    ctx = {} if value is MISSING else {key: value}
    d = _decide({operator: {key: policy_values}}, ctx)
    assert not d.errors, d.errors
    return d.allowed


TAG = "aws:PrincipalTag/team"
IP = "aws:SourceIp"
TIME = "aws:CurrentTime"
ARN = "aws:SourceArn"
KEYS = "aws:TagKeys"

CASES = [
    # String: exact, case-sensitive; values OR'd; negated operators AND their values.
    ("StringEquals", TAG, "blue", "blue", True),
    ("StringEquals", TAG, "blue", "Blue", False),
    ("StringEquals", TAG, "blue", MISSING, False),
    ("StringEquals", TAG, ["red", "blue"], "blue", True),
    ("StringEquals", TAG, "blu*", "blue", False),  # no wildcards in StringEquals
    ("StringNotEquals", TAG, "blue", "red", True),
    ("StringNotEquals", TAG, "blue", "blue", False),
    ("StringNotEquals", TAG, "blue", MISSING, True),
    ("StringNotEquals", TAG, ["red", "blue"], "red", False),
    ("StringNotEquals", TAG, ["red", "blue"], "green", True),
    ("StringEqualsIgnoreCase", TAG, "blue", "BLUE", True),
    ("StringEqualsIgnoreCase", TAG, "blue", "red", False),
    ("StringNotEqualsIgnoreCase", TAG, "blue", "BLUE", False),
    ("StringNotEqualsIgnoreCase", TAG, "blue", MISSING, True),
    ("StringLike", TAG, "bl*", "blue", True),
    ("StringLike", TAG, "b??e", "blue", True),
    ("StringLike", TAG, "b?e", "blue", False),
    ("StringLike", TAG, "BL*", "blue", False),  # case-sensitive
    ("StringLike", TAG, "bl*", MISSING, False),
    ("StringNotLike", TAG, "bl*", "red", True),
    ("StringNotLike", TAG, "bl*", "blue", False),
    ("StringNotLike", TAG, "bl*", MISSING, True),
    ("StringEquals", "aws:SecureTransport", "true", True, True),  # booleans compare as their text
    # Numeric
    ("NumericLessThan", "s3:max-keys", "10", "5", True),
    ("NumericLessThan", "s3:max-keys", "10", "10", False),
    ("NumericLessThanEquals", "s3:max-keys", "10", "10", True),
    ("NumericGreaterThan", "s3:max-keys", "10", "11", True),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", "9", False),
    ("NumericEquals", "s3:max-keys", "10", "10.0", True),
    ("NumericEquals", "s3:max-keys", 10, 10, True),
    ("NumericNotEquals", "s3:max-keys", "10", "11", True),
    ("NumericNotEquals", "s3:max-keys", "10", MISSING, True),
    ("NumericEquals", "s3:max-keys", "10", "ten", False),
    ("NumericEquals", "s3:max-keys", "10", MISSING, False),
    # Date: ISO 8601 and epoch seconds, compared as instants.
    ("DateGreaterThan", TIME, "2020-01-01T00:00:00Z", "2021-06-01T00:00:00Z", True),
    ("DateGreaterThan", TIME, "2020-01-01T00:00:00Z", "2019-06-01T00:00:00Z", False),
    ("DateGreaterThan", TIME, "2020-01-01T00:00:00Z", "1609459200", True),  # 2021-01-01 as epoch
    ("DateLessThan", TIME, "1577836800", "2019-12-31T23:59:59Z", True),  # policy value as epoch
    ("DateEquals", TIME, "2020-01-01T00:00:00Z", "2020-01-01T01:00:00+01:00", True),
    ("DateNotEquals", TIME, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", True),
    ("DateLessThanEquals", TIME, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", True),
    ("DateGreaterThanEquals", TIME, "2020-01-01", "2020-01-01T00:00:00Z", True),
    ("DateLessThan", TIME, "2020-01-01T00:00:00Z", MISSING, False),
    # Bool: "true"/"false", case-insensitive, JSON booleans accepted.
    ("Bool", "aws:SecureTransport", "true", True, True),
    ("Bool", "aws:SecureTransport", "true", "TRUE", True),
    ("Bool", "aws:SecureTransport", "true", "false", False),
    ("Bool", "aws:SecureTransport", True, "true", True),
    ("Bool", "aws:SecureTransport", "false", MISSING, False),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "true", MISSING, True),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "true", False, False),
    # Binary: base64 values compared as bytes.
    ("BinaryEquals", "key", "QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWU=", True),
    ("BinaryEquals", "key", "QmluYXJ5VmFsdWU=", "T3RoZXI=", False),
    # IP: IPv4 and IPv6 CIDR, a bare address is a /32 (/128).
    ("IpAddress", IP, "203.0.113.0/24", "203.0.113.7", True),
    ("IpAddress", IP, "203.0.113.0/24", "198.51.100.7", False),
    ("IpAddress", IP, "203.0.113.7", "203.0.113.7", True),
    ("IpAddress", IP, ["198.51.100.0/24", "203.0.113.0/24"], "203.0.113.9", True),
    ("IpAddress", IP, "2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", True),
    ("IpAddress", IP, "2001:DB8:1234:5678::/64", "2001:db8:1234:9999::1", False),
    ("IpAddress", IP, "203.0.113.0/24", "::ffff:1", False),  # families never mix
    ("IpAddress", IP, "203.0.113.0/24", MISSING, False),
    ("NotIpAddress", IP, "203.0.113.0/24", "198.51.100.7", True),
    ("NotIpAddress", IP, "203.0.113.0/24", "203.0.113.7", False),
    ("NotIpAddress", IP, "203.0.113.0/24", MISSING, True),
    # ARN: six segments, each compared with wildcards; ArnEquals behaves like ArnLike.
    ("ArnLike", ARN, "arn:aws:sns:*:111122223333:topic-*", "arn:aws:sns:us-east-1:111122223333:topic-a", True),
    ("ArnLike", ARN, "arn:aws:sns:*:111122223333:topic-*", "arn:aws:sns:us-east-1:444455556666:topic-a", False),
    ("ArnEquals", ARN, "arn:aws:sns:*:111122223333:topic-*", "arn:aws:sns:us-east-1:111122223333:topic-a", True),
    ("ArnLike", ARN, "arn:aws:sns:*:111122223333:topic", "not-an-arn", False),
    ("ArnLike", ARN, "arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", True),
    ("ArnLike", ARN, "arn:aws:sqs:us-*:111122223333:q", "arn:aws:sqs:us-east-1:111122223333:q", True),
    # a wildcard in the region segment does not reach into the next segment
    ("ArnLike", ARN, "arn:aws:sqs:us-*1:q", "arn:aws:sqs:us-east-1:111122223333:q", False),
    ("ArnNotLike", ARN, "arn:aws:sns:*:111122223333:*", "arn:aws:sns:us-east-1:444455556666:t", True),
    ("ArnNotEquals", ARN, "arn:aws:sns:*:111122223333:*", MISSING, True),
    ("ArnLike", ARN, "arn:aws:sns:*:111122223333:*", MISSING, False),
    # Null: true means "absent".
    ("Null", "aws:TokenIssueTime", "true", MISSING, True),
    ("Null", "aws:TokenIssueTime", "true", "2020-01-01T00:00:00Z", False),
    ("Null", "aws:TokenIssueTime", "false", "2020-01-01T00:00:00Z", True),
    ("Null", "aws:TokenIssueTime", "false", MISSING, False),
    # IfExists: an absent key makes the clause true; a present one is compared as usual.
    ("StringEqualsIfExists", "ec2:InstanceType", "t3.micro", MISSING, True),
    ("StringEqualsIfExists", "ec2:InstanceType", "t3.micro", "m5.large", False),
    ("StringNotEqualsIfExists", "ec2:InstanceType", "t3.micro", "t3.micro", False),
    ("NumericLessThanIfExists", "s3:max-keys", "10", MISSING, True),
    # Sets.
    ("ForAllValues:StringEquals", KEYS, ["env", "team"], ["env"], True),
    ("ForAllValues:StringEquals", KEYS, ["env", "team"], ["env", "cost"], False),
    ("ForAllValues:StringEquals", KEYS, ["env", "team"], [], True),
    ("ForAllValues:StringEquals", KEYS, ["env", "team"], MISSING, True),
    ("ForAnyValue:StringEquals", KEYS, ["env", "team"], ["cost", "env"], True),
    ("ForAnyValue:StringEquals", KEYS, ["env", "team"], ["cost"], False),
    ("ForAnyValue:StringEquals", KEYS, ["env", "team"], [], False),
    ("ForAnyValue:StringEquals", KEYS, ["env", "team"], MISSING, False),
    ("ForAnyValue:StringNotEquals", KEYS, ["env", "team"], ["env", "cost"], True),
    ("ForAnyValue:StringNotEquals", KEYS, ["env", "team"], ["env", "team"], False),
    ("ForAllValues:StringNotEquals", KEYS, ["env", "team"], ["cost", "owner"], True),
    ("ForAllValues:StringNotEquals", KEYS, ["env", "team"], ["cost", "env"], False),
    ("ForAllValues:StringLike", KEYS, ["cost-*"], ["cost-a", "cost-b"], True),
    ("ForAnyValue:StringLikeIfExists", KEYS, ["cost-*"], MISSING, True),
    # Without a set qualifier a multi-valued key matches when any value does (negated: when none does).
    ("StringEquals", KEYS, "env", ["cost", "env"], True),
    ("StringNotEquals", KEYS, "env", ["cost", "env"], False),
]


@pytest.mark.parametrize(("operator", "key", "policy_values", "value", "expected"), CASES)
def test_operator(operator: str, key: str, policy_values: Any, value: Any, expected: bool) -> None:
    assert _matches(operator, key, policy_values, value) is expected


def test_condition_keys_are_case_insensitive() -> None:
    d = _decide({"IpAddress": {"AWS:SOURCEIP": "10.0.0.0/8"}}, {"aws:sourceip": "10.1.2.3"})
    assert d.allowed


def test_operators_and_keys_are_anded() -> None:
    cond = {"StringEquals": {TAG: "blue", "aws:PrincipalTag/env": "prod"}, "Bool": {"aws:SecureTransport": "true"}}
    full = {TAG: "blue", "aws:PrincipalTag/env": "prod", "aws:SecureTransport": True}
    assert _decide(cond, full).allowed
    for drop in full:
        partial = {k: v for k, v in full.items() if k != drop}
        assert not _decide(cond, partial).allowed, drop


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"StringEqualz": {TAG: "blue"}}, "unknown condition operator"),
        ({"NumericLessThan": {"s3:max-keys": "many"}}, "not all numbers"),
        ({"DateLessThan": {TIME: "yesterday"}}, "ISO 8601"),
        ({"Bool": {"aws:SecureTransport": "yes"}}, "true or false"),
        ({"IpAddress": {IP: "10.0.0.0/99"}}, "not an IP address"),
        ({"NullIfExists": {TAG: "true"}}, "Null cannot be combined"),
    ],
)
def test_unevaluable_clause_is_reported_and_never_grants(condition: dict[str, Any], message: str) -> None:
    for mode in (Mode.STRICT, Mode.DISCOVERY):
        d = _decide(condition, {TAG: "blue", "s3:max-keys": "1", TIME: "2020-01-01T00:00:00Z",
                                "aws:SecureTransport": True, IP: "10.0.0.1"}, mode=mode)
        assert not d.possible
        assert len(d.errors) == 1
        err = d.errors[0]
        assert err.policy_id == "p" and err.statement_index == 0 and message in err.message


# ----------------------------------------------------------------------------- policy variables
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html


def test_variable_in_condition_value() -> None:
    cond = {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}
    assert _decide(cond, {"s3:prefix": "home/alice/docs"}).allowed  # aws:username comes from the user ARN
    assert not _decide(cond, {"s3:prefix": "home/bob/docs"}).allowed


def test_variable_default_value() -> None:
    cond = {"StringEquals": {"s3:prefix": "${aws:PrincipalTag/team, 'none'}"}}
    assert _decide(cond, {"s3:prefix": "none"}).allowed
    assert _decide(cond, {"s3:prefix": "blue", TAG: "blue"}).allowed
    assert not _decide(cond, {"s3:prefix": "none", TAG: "blue"}).allowed


def test_special_character_variables_are_literal() -> None:
    cond = {"StringLike": {"s3:prefix": "a${*}b${?}c${$}"}}
    assert _decide(cond, {"s3:prefix": "a*b?c$"}).allowed
    assert not _decide(cond, {"s3:prefix": "aXXbYc$"}).allowed


def test_variables_are_literal_text_before_version_2012() -> None:
    cond = {"StringEquals": {"s3:prefix": "${aws:username}"}}
    assert _decide(cond, {"s3:prefix": "${aws:username}"}, version="2008-10-17").allowed
    assert not _decide(cond, {"s3:prefix": "alice"}, version="2008-10-17").allowed
    assert _decide(cond, {"s3:prefix": "alice"}).allowed


def test_variable_with_no_value_matches_nothing_positive_and_everything_negated() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    assert not _decide({"StringEquals": {"s3:prefix": "${aws:PrincipalTag/team}"}}, {"s3:prefix": ""}).allowed
    assert _decide({"StringNotEquals": {"s3:prefix": "${aws:PrincipalTag/team}"}}, {"s3:prefix": "x"}).allowed


def test_variables_are_not_substituted_in_numeric_operators() -> None:
    d = _decide({"NumericEquals": {"s3:max-keys": "${aws:username}"}}, {"s3:max-keys": "1"})
    assert d.errors and not d.possible


# ----------------------------------------------------------------------------- discovery mode


def test_discovery_leaves_unsupplied_key_as_residual() -> None:
    d = _decide({"IpAddress": {IP: "10.0.0.0/8"}}, {}, mode=Mode.DISCOVERY)
    assert d.conditional
    ((c,),) = d.conditions
    assert (c.operator, c.key, c.values, c.negated) == ("IpAddress", IP, ("10.0.0.0/8",), False)
    assert c.source is not None and c.source.policy_id == "p"


def test_discovery_with_supplied_key_is_definite() -> None:
    assert _decide({"IpAddress": {IP: "10.0.0.0/8"}}, {IP: "10.1.1.1"}, mode=Mode.DISCOVERY).allowed
    assert not _decide({"IpAddress": {IP: "10.0.0.0/8"}}, {IP: "11.1.1.1"}, mode=Mode.DISCOVERY).possible


def test_discovery_null_context_value_means_known_absent() -> None:
    d = _decide({"StringEqualsIfExists": {TAG: "blue"}}, {TAG: None}, mode=Mode.DISCOVERY)
    assert d.allowed


def test_discovery_variable_key_unsupplied_is_residual() -> None:
    d = _decide({"StringEquals": {"s3:prefix": "${aws:PrincipalTag/team}"}}, {"s3:prefix": "blue"},
                mode=Mode.DISCOVERY)
    assert d.conditional


def test_for_all_values_on_empty_string_is_a_null_dataset() -> None:
    # "...or if the context key value resolves to a null dataset, such as an empty string"
    assert _matches("ForAllValues:StringEquals", KEYS, ["env"], "")
    assert not _matches("ForAnyValue:StringEquals", KEYS, ["env"], "")


def test_discovery_resource_variable_becomes_residual_on_its_key() -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:PrincipalTag/team}/*"}]}
    ps = PolicySet(identity=(named_policy(doc, "p", PolicyType.IDENTITY),))

    def run(resource: str, ctx: dict[str, Any]):
        req = Request(principal=USER, action="s3:GetObject", resource=resource, resource_account=ACCT, context=ctx)
        return authorize(req, ps, mode=Mode.DISCOVERY)

    d = run("arn:aws:s3:::home/blue/report", {})
    ((c,),) = d.conditions
    assert (c.operator, c.key.lower(), c.values) == ("StringEquals", "aws:principaltag/team", ("blue",))
    assert not run("arn:aws:s3:::elsewhere/blue/report", {}).possible
    assert run("arn:aws:s3:::home/blue/report", {TAG: "blue"}).allowed
    assert not run("arn:aws:s3:::home/blue/report", {TAG: "red"}).possible
