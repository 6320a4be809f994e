"""The parse's shared statements and templates give what a statement's own parse gives, result or error."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from iamgraph.errors import PolicyParseError
from iamgraph.model.policy import _parse_statement, parse_policy

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
