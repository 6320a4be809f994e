"""``model.slots.maker``: the fast constructors of the parse's value types build what the classes build."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from iamgraph.model.policy import ConditionClause, Effect, Policy, PrincipalSpec, Statement, parse_policy
from iamgraph.model.slots import maker


def test_a_made_statement_is_the_statement_the_class_makes() -> None:
    values = {"index": 2, "sid": "S", "effect": Effect.DENY, "action": None, "not_action": ("s3:*",),
              "resource": ("*",), "not_resource": None, "principal": PrincipalSpec(aws=("111122223333",)),
              "not_principal": None,
              "conditions": (ConditionClause(operator="Bool", key="aws:SecureTransport", values=("false",)),)}
    made = maker(Statement)(**values)
    built = Statement(**values)  # type: ignore[arg-type]
    assert type(made) is Statement and made == built and hash(made) == hash(built)
    assert {f.name: getattr(made, f.name) for f in fields(Statement)} == values
    with pytest.raises(AttributeError):
        made.sid = "changed"  # type: ignore[misc]  # still frozen


def test_every_field_must_be_given() -> None:
    # No defaults: a field added to a class later fails at the call site instead of leaving a slot unset.
    with pytest.raises(TypeError):
        maker(ConditionClause)(operator="Bool", key="aws:SecureTransport")


def test_a_class_a_maker_cannot_build_faithfully_is_refused() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            raise ValueError("checked")

    @dataclass(slots=True, kw_only=True)
    class Mutable:
        n: int

    for cls in (Checked, Mutable):
        with pytest.raises(TypeError):
            maker(cls)


def test_the_parse_builds_the_documents_values_the_classes_would() -> None:
    doc = {"Version": "2012-10-17", "Id": "x", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::slots-parse/*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["blue", "green"]}}}]}
    parsed = parse_policy(doc, principal=True)
    assert parsed == Policy(version="2012-10-17", id="x", statements=(Statement(
        index=0, sid="A", effect=Effect.ALLOW, action=("s3:GetObject",), resource=("arn:aws:s3:::slots-parse/*",),
        principal=PrincipalSpec(aws=("arn:aws:iam::111122223333:root",)),
        conditions=(ConditionClause(operator="StringEquals", key="aws:PrincipalTag/team", values=("blue", "green")),),
    ),))
    assert parsed.source == "<policy>"
