"""The parse's shared statements and templates give what a statement's own parse gives, result or error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgraph.errors import PolicyParseError
from iamgraph.model.policy import _checked_statement, _parse_statement, _plain_statement, parse_policy

_ABSENT = object()
_RESOURCES = ["*", "arn:aws:s3:::tmpl/*", ["arn:aws:s3:::a", "arn:aws:s3:::b/*"], "", [], 5, ["ok", ""], None]
_ELEMENTS: dict[str, list[Any]] = {
    "Sid": [_ABSENT, "S1", 3],
    "Effect": ["Allow", "Deny", "allow"],
    "Action": [_ABSENT, "s3:GetObject", ["s3:Get*", "s3:List*"], "s3GetObject", []],
    "NotAction": [_ABSENT, _ABSENT, _ABSENT, "iam:*"],
    "Resource": [_ABSENT, *_RESOURCES],
    "NotResource": [_ABSENT, _ABSENT, _ABSENT, *_RESOURCES],
    "Principal": [_ABSENT, _ABSENT, "*", {"AWS": "111122223333"}, {"Bad": "x"}],
    "Condition": [_ABSENT, {"Bool": {"aws:SecureTransport": "true"}}, {"StringEquals": 5},
                  {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}],
}
_statements = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in _ELEMENTS.items()}).map(
    lambda d: {k: v for k, v in d.items() if v is not _ABSENT})


def _own_parse(stmt: dict[str, Any], index: int, rr: bool, principal: bool | None) -> Any:
    try:
        return _parse_statement(stmt, index, source="<policy>", require_resource=rr, principal=principal)
    except PolicyParseError as exc:
        return str(exc)


def _cached_parse(stmts: list[dict[str, Any]], rr: bool, principal: bool | None) -> Any:
    try:
        return parse_policy({"Version": "2012-10-17", "Statement": stmts}, require_resource=rr,
                            principal=principal).statements[-1]
    except PolicyParseError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(_statements, st.sampled_from(_RESOURCES), st.booleans(), st.sampled_from([True, False, None]),
       st.integers(0, 1))
def test_a_statement_parses_as_its_own_parse_whatever_the_caches_hold(
    stmt: dict[str, Any], other_resource: Any, rr: bool, principal: bool | None, index: int
) -> None:
    # A sibling that differs only in its Resource (or NotResource) shares the statement's template; each is
    # parsed several times so that the template and the whole text are kept, then compared with its own parse.
    sibling = dict(stmt)
    for key in ("Resource", "NotResource"):
        if key in sibling:
            sibling[key] = other_resource
    lead_st = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}
    lead = [lead_st if principal is False else {**lead_st, "Principal": "*"}] * index
    for _ in range(3):
        for one in (stmt, sibling):
            expected = _own_parse(one, index, rr, principal)
            assert _cached_parse([*lead, one], rr, principal) == expected, one


def test_an_invalid_resource_is_reported_before_an_invalid_principal_as_the_own_parse_does() -> None:
    base = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::order/*",
            "Principal": {"AWS": "111122223333"}}
    for _ in range(3):
        parse_policy({"Statement": [base]}, principal=True)  # the template is kept
    bad = {**base, "Resource": [], "Principal": {"Bad": "x"}}
    try:
        parse_policy({"Statement": [bad]}, principal=True)
    except PolicyParseError as exc:
        assert exc.location == "Statement[0].Resource" and "Resource is an empty list" in str(exc)
    else:  # pragma: no cover - the statement is invalid
        raise AssertionError("accepted")


# ------------------------------------------------------------------ the one-pass parse of a plain statement

_TEXTS = ["s3:GetObject", "*", ["s3:Get*", "s3:List*"], "s3GetObject", "s3:Get:Object", ":x", "s3:", "", [], ["ok", ""],
          ["ok", 5], 5, None, {"a": 1}]
_PRINCIPALS = ["*", "**", "", {"AWS": "111122223333"}, {"AWS": ["*", "arn:aws:iam::111122223333:root"]},
               {"Service": "s3.amazonaws.com", "Federated": "cognito-identity.amazonaws.com"},
               {"CanonicalUser": "abc"}, {"AWS": ""}, {"AWS": []}, {"Bad": "x"}, {}, None, ["*"], 3]
_CONDITIONS = [None, {}, {"Bool": {"aws:SecureTransport": "true"}}, {"Bool": {"aws:SecureTransport": True}},
               {"NumericLessThan": {"s3:max-keys": 10}}, {"NumericEquals": {"k": 1.5}}, {"NumericEquals": {"k": 1.0}},
               {"NumericEquals": {"k": float("nan")}}, {"StringEquals": {"k": ["a", 1, True]}},
               {"StringEquals": {"k": []}}, {"StringEquals": {"k": [None]}}, {"StringEquals": {"k": None}},
               {"StringEquals": {"k": {"x": 1}}}, {"StringEquals": {"k": [["a"]]}}, {"StringEquals": {}},
               {"StringEquals": 5}, {"": {"k": "v"}},
               {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}, "StringLike": {"aws:userid": "AID*", "s3:prefix": "x/"}},
               "Bool", ["Bool"]]
_ANY_ELEMENTS: dict[str, list[Any]] = {
    "Sid": [_ABSENT, "S1", "", None, 3, ["S"]],
    "Effect": ["Allow", "Deny", "allow", None, _ABSENT, ["Allow"]],
    "Action": [_ABSENT, *_TEXTS],
    "NotAction": [_ABSENT, _ABSENT, _ABSENT, *_TEXTS],
    "Resource": [_ABSENT, *_RESOURCES, ["arn:aws:s3:::x", 5]],
    "NotResource": [_ABSENT, _ABSENT, _ABSENT, *_RESOURCES],
    "Principal": [_ABSENT, _ABSENT, *_PRINCIPALS],
    "NotPrincipal": [_ABSENT, _ABSENT, _ABSENT, *_PRINCIPALS],
    "Condition": [_ABSENT, *_CONDITIONS],
    "Extra": [_ABSENT, _ABSENT, _ABSENT, _ABSENT, "x"],
}
_VALID_ELEMENTS: dict[str, list[Any]] = {
    "Sid": [_ABSENT, "S1", ""],
    "Effect": ["Allow", "Deny"],
    "Action": ["s3:GetObject", "*", ["s3:Get*", "s3:List*"]],
    "NotAction": [_ABSENT],
    "Resource": ["*", "arn:aws:s3:::tmpl/*", ["arn:aws:s3:::a", "arn:aws:s3:::b/*"]],
    "NotResource": [_ABSENT],
    "Principal": [_ABSENT, "*", {"AWS": "111122223333"}],
    "NotPrincipal": [_ABSENT],
    "Condition": [_ABSENT, None, {"Bool": {"aws:SecureTransport": "true"}}, {"NumericLessThan": {"s3:max-keys": 10}}],
    "Extra": [_ABSENT],
}


@st.composite
def _near_plain_statements(draw: st.DrawFn) -> dict[str, Any]:
    """A statement valid in every element but one or two, drawn from anything (the one pass must refuse exactly
    what makes a statement other than plain, one element at a time)."""
    odd = set(draw(st.lists(st.sampled_from(sorted(_ANY_ELEMENTS)), min_size=1, max_size=2)))
    made = {k: draw(st.sampled_from(_ANY_ELEMENTS[k] if k in odd else v)) for k, v in _VALID_ELEMENTS.items()}
    return {k: v for k, v in made.items() if v is not _ABSENT}


_any_statements = st.one_of(
    _near_plain_statements(),
    st.fixed_dictionaries({k: st.sampled_from(v) for k, v in _ANY_ELEMENTS.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not _ABSENT}))


def _checked(stmt: Any, index: int, rr: bool, principal: bool | None) -> str:
    try:
        made = _checked_statement(stmt, index, source="<policy>", require_resource=rr, principal=principal)
    except PolicyParseError as exc:
        return f"refused: {exc}"
    return repr(made)  # repr tells a JSON true from a 1 (Statement equality does not)


@settings(max_examples=2000, deadline=None)
@given(_any_statements, st.booleans(), st.sampled_from([True, False, None]), st.integers(0, 3))
def test_the_one_pass_parse_makes_what_the_element_by_element_parse_makes(
    stmt: dict[str, Any], rr: bool, principal: bool | None, index: int
) -> None:
    fast = _plain_statement(stmt, index, rr, principal)
    expected = _checked(stmt, index, rr, principal)
    if fast is not None:
        # Whatever the one pass accepts, the checked parse accepts as the same statement.
        assert repr(fast) == expected, stmt
    # And the parse (one pass, else checked) answers as the checked parse, result or refusal.
    try:
        got = repr(_parse_statement(stmt, index, source="<policy>", require_resource=rr, principal=principal))
    except PolicyParseError as exc:
        got = f"refused: {exc}"
    assert got == expected, stmt


@pytest.mark.parametrize(("stmt", "rr", "principal"), [
    ({"Sid": "Ip7", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data-7/*",
      "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "172.16.7.0/24"]}}}, True, False),
    ({"Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "NotResource": "*",
      "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": False}, "NumericLessThan": {"k": 3}}}, True, False),
    ({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/analyst", "*"], "Service": "s3.amazonaws.com"},
      "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}, False, True),
    ({"Effect": "Deny", "NotPrincipal": "*", "Action": "*", "Condition": {"StringEquals": {"k": []}}}, False, None),
    ({"Effect": "Allow", "Action": "*", "Resource": "*"}, False, False),
])
def test_plain_statements_take_the_one_pass(stmt: dict[str, Any], rr: bool, principal: bool | None) -> None:
    # The differential test above would pass with a one pass that accepts nothing: these shapes (the ones batches
    # of distinct documents carry) must take it.
    made = _plain_statement(stmt, 2, rr, principal)
    assert made is not None
    assert repr(made) == _checked(stmt, 2, rr, principal)
