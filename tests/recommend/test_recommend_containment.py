"""The structural proof of no new access: patterns contained as patterns, never as today's catalog."""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.recommend import Call, RecommendConfig, trim_document
from iamgraph.recommend.containment import pattern_contains, prove_contained

REPLICATE = ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags", "s3:ReplicateObjectVersion"]


@pytest.mark.parametrize(("outer", "inner", "expected"), [
    ("s3:Get*", "s3:GetObject*", True),
    ("s3:Get*", "s3:GetObject", True),
    ("s3:GetObject", "s3:Get*", False),
    ("s3:ReplicateObject", "s3:Replicate*", False),
    ("*", "s3:*", True),
    ("s3:*", "*", False),
    ("s3:Get?bject", "s3:GetObject", True),
    ("s3:Get?bject", "s3:Get*", False),
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/*", True),
    ("arn:aws:s3:::b/x/*", "arn:aws:s3:::b/*", False),
    ("arn:aws:s3:::b/?", "arn:aws:s3:::b/*", False),
    ("a*b", "a*c*b", True),
    ("a*c*b", "a*b", False),
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/${aws:username}/*", True),
    ("arn:aws:s3:::b/alice/*", "arn:aws:s3:::b/${aws:username}/*", False),
])
def test_pattern_inclusion(outer: str, inner: str, expected: bool) -> None:
    assert pattern_contains(outer, inner) is expected


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_wildcard_is_never_contained_in_an_explicit_list() -> None:
    original = _doc({"Effect": "Allow", "Action": REPLICATE, "Resource": "*"})
    widened = _doc({"Effect": "Allow", "Action": "s3:Replicate*", "Resource": "*"})
    proof = prove_contained(original, [widened])
    assert not proof.contained and proof.uncovered == ("Statement[0]: s3:Replicate* on *",)
    # The trim keeps the list as a list, so its proposal is contained.
    t = trim_document(original, [Call(principal_arn="p", action=a, resource=None) for a in REPLICATE],
                      keep_action=lambda a: False, config=RecommendConfig())
    assert prove_contained(original, [t.document]).contained


def test_conditions_must_be_at_least_as_strict_and_denies_kept() -> None:
    cond = {"Bool": {"aws:SecureTransport": "true"}}
    original = _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": cond},
                    {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::secret/*"})
    looser = _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                  original["Statement"][1])
    assert not prove_contained(original, [looser]).contained
    stricter = _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": cond})
    proof = prove_contained(original, [stricter])
    assert not proof.contained and "Deny" in proof.uncovered[0]  # the Deny went missing
    assert prove_contained(original, [_doc(*stricter["Statement"], original["Statement"][1])]).contained


def test_not_action_covers_only_explicit_actions_outside_it() -> None:
    original = _doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert prove_contained(original, [_doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})]).contained
    assert not prove_contained(original, [_doc({"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"})]).contained
    assert not prove_contained(original, [_doc({"Effect": "Allow", "Action": ["iam:PassRole"],
                                                "Resource": "*"})]).contained
