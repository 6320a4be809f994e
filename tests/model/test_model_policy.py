"""Policy parsing: the grammar's forms, errors that name the place, and Hypothesis round trips.

Grammar and elements: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.errors import PolicyParseError
from iamgraph.model import Arn, ConditionClause, Effect, PrincipalSpec, account_of, parse_policy
from iamgraph.model.policy import load_document

# ---------------------------------------------------------------- forms from the grammar


def test_string_or_list_and_single_statement_object() -> None:
    pol = parse_policy(
        {
            "Version": "2012-10-17",
            "Id": "x",
            "Statement": {
                "Sid": "1",
                "Effect": "Deny",
                "NotAction": "iam:*",
                "NotResource": "arn:aws:s3:::b",
            },
        }
    )
    [s] = pol.statements
    assert (s.sid, s.effect, s.not_action, s.not_resource, s.action, s.resource) == (
        "1", Effect.DENY, ("iam:*",), ("arn:aws:s3:::b",), None, None,
    )  # fmt: skip
    assert pol.id == "x"


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("*", PrincipalSpec(wildcard=True)),
        # {"AWS": "*"} is everyone too, but stays as written
        ({"AWS": "*"}, PrincipalSpec(aws=("*",))),
        ({"AWS": ["arn:aws:iam::111122223333:root", "444455556666"]}, PrincipalSpec(aws=("arn:aws:iam::111122223333:root", "444455556666"))),
        ({"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]}, PrincipalSpec(service=("ec2.amazonaws.com", "lambda.amazonaws.com"))),
        ({"Federated": "cognito-identity.amazonaws.com"}, PrincipalSpec(federated=("cognito-identity.amazonaws.com",))),
        ({"CanonicalUser": "79a59df900b949e55d96a1e698fbaced"}, PrincipalSpec(canonical_user=("79a59df900b949e55d96a1e698fbaced",))),
        ({"AWS": "arn:aws:iam::111122223333:role/r", "Service": "sns.amazonaws.com"}, PrincipalSpec(aws=("arn:aws:iam::111122223333:role/r",), service=("sns.amazonaws.com",))),
    ],
)  # fmt: skip
def test_principal_forms(principal: Any, expected: PrincipalSpec) -> None:
    doc = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    [s] = parse_policy(doc, principal=True).statements
    assert s.principal == expected
    assert parse_policy(parse_policy(doc).to_json()).statements[0].principal == expected
    not_doc = {
        "Statement": [{"Effect": "Deny", "NotPrincipal": principal, "Action": "s3:*", "Resource": "*"}]
    }
    assert parse_policy(not_doc, principal=True).statements[0].not_principal == expected


def test_conditions_keep_operators_and_types() -> None:
    doc = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {
                    "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["env*", "team"]},
                    "Bool": {"aws:MultiFactorAuthPresent": True},
                    "NumericLessThan": {"s3:max-keys": 10},
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                },
            }
        ]
    }
    [s] = parse_policy(doc).statements
    assert s.conditions == (
        ConditionClause(
            operator="ForAnyValue:StringLikeIfExists", key="aws:TagKeys", values=("env*", "team")
        ),
        ConditionClause(operator="Bool", key="aws:MultiFactorAuthPresent", values=(True,)),
        ConditionClause(operator="NumericLessThan", key="s3:max-keys", values=(10,)),
        ConditionClause(operator="IpAddress", key="aws:SourceIp", values=("10.0.0.0/8",)),
    )


def test_url_encoded_text_is_decoded() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/a b+c"}],
    }
    assert load_document(quote(json.dumps(doc), safe="")) == doc
    assert load_document(json.dumps(doc)) == doc
    # whitespace is encoded too: a document stored with a leading newline
    assert load_document(quote("\n  " + json.dumps(doc, indent=2) + "\n", safe="")) == doc


ERRORS: list[tuple[Any, dict[str, Any], str, str]] = [
    ("not json {", {}, "", r"invalid JSON at line 1 column 1"),
    ([], {}, "", r"must be a JSON object, not a list"),
    ({"Statement": [], "Version": "2012-10-17"}, {}, "Statement", r"0 statements"),
    ({"Version": "2012-10-17"}, {}, "", r"has no Statement"),
    ({"Statement": {"Effect": "Allow", "Action": "s3:*"}, "Foo": 1}, {}, "", r"unknown top-level key\(s\) 'Foo'"),
    ({"Version": "2020-01-01", "Statement": []}, {}, "Version", r"Version must be one of"),
    ({"Statement": "x"}, {}, "Statement", r"must be an object or a list"),
    ({"Statement": ["x"]}, {}, r"Statement\[0\]", r"a statement must be an object"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Bogus": 1}]}, {}, r"Statement\[0\]", r"unknown key\(s\) 'Bogus'"),
    ({"Statement": [{"Effect": "allow", "Action": "s3:*"}]}, {}, r"Statement\[0\]\.Effect", r"Effect must be"),
    ({"Statement": [{"Effect": "Allow"}]}, {}, r"Statement\[0\]", r"neither Action nor NotAction"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:*"}]}, {}, r"Statement\[0\]", r"both Action and NotAction"),
    ({"Statement": [{"Effect": "Allow", "Action": ["s3:*", 3]}]}, {}, r"Statement\[0\]\.Action\[1\]", r"must be strings, not a number"),
    ({"Statement": [{"Effect": "Allow", "Action": []}]}, {}, r"Statement\[0\]\.Action", r"empty list"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3GetObject"}]}, {}, r"Statement\[0\]\.Action\[0\]", r"is not an action"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}, {"require_resource": True}, r"Statement\[0\]", r"neither Resource nor NotResource"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Principal": "*"}]}, {"principal": False}, r"Statement\[0\]", r"cannot have Principal"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}, {"principal": True}, r"Statement\[0\]", r"needs Principal"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Principal": "arn:aws:iam::1:root"}]}, {}, r"Statement\[0\]\.Principal", r'must be "\*" or an object'),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Principal": {"User": "x"}}]}, {}, r"Statement\[0\]\.Principal", r"unknown principal type"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Principal": {"AWS": []}}]}, {}, r"Statement\[0\]\.Principal\.AWS", r"empty list"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": []}]}, {}, r"Statement\[0\]\.Condition", r"must be an object"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": {"StringEquals": "x"}}]}, {}, r"Statement\[0\]\.Condition\.StringEquals", r"needs an object"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": {"StringEquals": {"k": [{"a": 1}]}}}]}, {}, r"Statement\[0\]\.Condition\.StringEquals\.k\[0\]", r"strings, numbers or booleans"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": {"NumericEquals": {"k": float("nan")}}}]}, {}, r"Statement\[0\]\.Condition\.NumericEquals\.k", r"not a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "kwargs", "location", "message"), ERRORS)
def test_errors_name_the_place(doc: Any, kwargs: dict[str, Any], location: str, message: str) -> None:
    where = f"{location}: " if location else ""
    with pytest.raises(PolicyParseError, match=rf"^p\.json: {where}.*{message}"):
        parse_policy(doc, source="p.json", **kwargs)


def test_arns() -> None:
    a = Arn.parse("arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/x:*")
    assert (a.service, a.region, a.account, a.resource) == (
        "logs",
        "us-east-1",
        "111122223333",
        "log-group:/aws/lambda/x:*",
    )
    assert a.resource_type == "log-group"
    assert Arn.parse("arn:aws:iam::111122223333:role/path/to/R").resource_name == "R"
    assert str(Arn.parse("arn:aws-cn:s3:::bucket")) == "arn:aws-cn:s3:::bucket"
    assert account_of("arn:aws:iam::aws:policy/ReadOnlyAccess") is None
    assert account_of("arn:aws:s3:::bucket") is None
    assert account_of("arn:aws:iam::111122223333:user/u") == "111122223333"
    with pytest.raises(PolicyParseError.__mro__[1], match=r"is not an ARN"):
        Arn.parse("arn:aws:s3")


# ---------------------------------------------------------------- Hypothesis

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789*?-_", min_size=1, max_size=8)
actions = st.one_of(
    st.just("*"), st.builds(lambda a, b: f"{a}:{b}", names.filter(lambda s: ":" not in s), names)
)
resources = st.one_of(st.just("*"), st.builds(lambda n: f"arn:aws:s3:::{n}", names), names)
scalars = st.one_of(
    st.text(max_size=6),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)


def one_or_many(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.lists(values, min_size=1, max_size=4))


principals = st.one_of(
    st.just("*"),
    st.dictionaries(
        st.sampled_from(["AWS", "Service", "Federated", "CanonicalUser"]), one_or_many(names), min_size=1
    ),
)
operators = st.sampled_from(
    [
        "StringEquals",
        "StringLike",
        "ForAllValues:StringEquals",
        "ForAnyValue:StringLikeIfExists",
        "Bool",
        "NumericLessThan",
        "Null",
        "ArnLikeIfExists",
    ]
)
conditions = st.dictionaries(
    operators, st.dictionaries(names, one_or_many(scalars), min_size=1, max_size=3), max_size=3
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    if draw(st.booleans()):
        s["Sid"] = draw(st.text(max_size=5))
    s[draw(st.sampled_from(["Action", "NotAction"]))] = draw(one_or_many(actions))
    if draw(st.booleans()):
        s[draw(st.sampled_from(["Resource", "NotResource"]))] = draw(one_or_many(resources))
    if draw(st.booleans()):
        s[draw(st.sampled_from(["Principal", "NotPrincipal"]))] = draw(principals)
    if draw(st.booleans()):
        s["Condition"] = draw(conditions)
    return s


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if draw(st.booleans()):
        d["Version"] = draw(st.sampled_from(["2012-10-17", "2008-10-17"]))
    if draw(st.booleans()):
        d["Id"] = draw(st.text(max_size=5))
    stmts = draw(st.lists(statements(), min_size=1, max_size=4))
    d["Statement"] = stmts[0] if len(stmts) == 1 and draw(st.booleans()) else stmts
    return d


def _as_set(value: Any) -> set[Any] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _typed(v: Any) -> tuple[str, Any]:
    # True == 1 in Python; a policy's true and 1 are different JSON values
    return (type(v).__name__, v)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_normalized_documents_reserialize_to_equivalent_ones(doc: dict[str, Any]) -> None:
    pol = parse_policy(doc)
    again = parse_policy(pol.to_json())
    assert again == pol
    assert parse_policy(json.dumps(pol.to_json())) == pol  # through JSON text as well
    assert parse_policy(quote(json.dumps(doc), safe="")) == pol  # and IAM's URL-encoded form

    # semantics: the same actions, resources, principals and conditions, as sets, per statement
    raw = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    assert len(again.statements) == len(raw)
    for st_raw, st_norm in zip(raw, again.statements, strict=True):
        assert st_norm.effect.value == st_raw["Effect"]
        for key, got in (
            ("Action", st_norm.action),
            ("NotAction", st_norm.not_action),
            ("Resource", st_norm.resource),
            ("NotResource", st_norm.not_resource),
        ):
            assert _as_set(st_raw.get(key)) == _as_set(got)
        for key, spec in (("Principal", st_norm.principal), ("NotPrincipal", st_norm.not_principal)):
            if key not in st_raw:
                assert spec is None
            elif st_raw[key] == "*":
                assert spec is not None and spec.wildcard
            else:
                assert spec is not None
                for ptype, got in (
                    ("AWS", spec.aws),
                    ("Service", spec.service),
                    ("Federated", spec.federated),
                    ("CanonicalUser", spec.canonical_user),
                ):
                    assert (_as_set(st_raw[key].get(ptype)) or set()) == set(got)
        expected = {
            (op, k, frozenset(_typed(v) for v in (vals if isinstance(vals, list) else [vals])))
            for op, block in st_raw.get("Condition", {}).items()
            for k, vals in block.items()
        }
        assert {
            (c.operator, c.key, frozenset(_typed(v) for v in c.values)) for c in st_norm.conditions
        } == expected


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        documents().flatmap(
            lambda d: st.sampled_from(["Statement", "Version", "Id"]).flatmap(
                lambda k: json_values.map(lambda v: {**d, k: v})
            )
        ),
        statements().flatmap(
            lambda s: st.sampled_from(sorted(s)).flatmap(
                lambda k: json_values.map(lambda v: {"Statement": [{**s, k: v}]})
            )
        ),
    )
)
def test_any_input_is_parsed_or_refused_never_crashes(doc: Any) -> None:
    try:
        pol = parse_policy(doc if isinstance(doc, dict) else json.dumps(doc), source="x")
    except PolicyParseError as exc:
        assert str(exc).startswith("x: ")
    else:
        assert parse_policy(pol.to_json()) == pol
