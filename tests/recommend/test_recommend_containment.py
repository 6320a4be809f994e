"""The structural proof of no new access: patterns contained as patterns, never as today's catalog."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(("outer", "inner", "expected"), [
    ("s3:GetObject", "s3:GetObject", True),
    ("s3:GetObject", "s3:getobject", False),  # resources compare case-sensitively
    ("s3:GetObject", "s3:GetObjects", False),
    ("s3:GetObject", "s3:GetObjec?", False),
    ("${aws:username}", "${aws:username}", True),
    ("${aws:username}", "alice", False),
    ("alice", "${aws:username}", False),
    ("*", "", True),
    ("*", "${aws:username}", True),
])
def test_literals_and_the_lone_star(outer: str, inner: str, expected: bool) -> None:
    assert pattern_contains(outer, inner) is expected


def test_actions_compare_without_case() -> None:
    assert pattern_contains("s3:GetObject", "s3:getobject", case_sensitive=False)
    assert pattern_contains("S3:GET*", "s3:getobjectacl", case_sensitive=False)
    assert not pattern_contains("s3:GetObject", "s3:getobjectacl", case_sensitive=False)


_PIECES = st.sampled_from(["a", "b", "A", "*", "?", "$", "{", "}", "${aws:username}", "${x}"])


def _matches(pattern: str, text: str) -> bool:
    """IAM's wildcards over plain text (``*`` any run, ``?`` one character), a variable standing for itself."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


@settings(max_examples=400, deadline=None)
@given(outer=st.lists(_PIECES, max_size=6).map("".join), inner=st.lists(_PIECES, max_size=6).map("".join),
       fill=st.lists(st.sampled_from(["", "a", "b", "ab", "?", "*", "z"]), min_size=6, max_size=6))
def test_contained_means_every_text_the_inner_pattern_matches_the_outer_matches_too(
    outer: str, inner: str, fill: list[str],
) -> None:
    """Sound: when the outer pattern contains the inner one, any text made from the inner pattern by filling its
    wildcards (``*`` with any run, ``?`` with one character) is matched by the outer pattern. Variables are left
    as written on both sides (the same value)."""
    if not pattern_contains(outer, inner):
        return
    runs = iter(fill)
    text = "".join(next(runs, "") if c == "*" else (next(runs, "a") or "a")[:1] if c == "?" else c
                   for c in _literal_wildcards(inner))
    assert _matches(outer, text), (outer, inner, text)


def _literal_wildcards(pattern: str) -> list[str]:
    """The pattern's characters, a variable as one piece (never a wildcard)."""
    out: list[str] = []
    pos = 0
    while pos < len(pattern):
        if pattern.startswith("${", pos) and "}" in pattern[pos:]:
            end = pattern.index("}", pos) + 1
            out.append(pattern[pos:end])
            pos = end
        else:
            out.append(pattern[pos])
            pos += 1
    return out


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
