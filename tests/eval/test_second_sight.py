"""The caches that keep a parsed or compiled piece only from its second sight (model/memo.py)."""

from __future__ import annotations

import pytest

from iamgraph.errors import PolicyParseError
from iamgraph.model.memo import SecondSightCache
from iamgraph.model.policy import parse_policy


def test_a_value_is_kept_from_the_second_sight() -> None:
    made: list[str] = []

    def make(x: str) -> str:
        made.append(x)
        return x.upper()

    cache: SecondSightCache[str, str] = SecondSightCache(10)
    assert [cache.get("a", make, "a") for _ in range(4)] == ["A"] * 4
    assert made == ["a", "a"]  # first sight made and dropped, second made and kept, then hits


def test_a_shared_statement_keeps_its_own_index_and_validation() -> None:
    st = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-statement/*"}
    other = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}
    docs = [parse_policy({"Version": "2012-10-17", "Statement": [st]}) for _ in range(3)]
    assert docs[1].statements[0] is docs[2].statements[0]
    moved = parse_policy({"Version": "2012-10-17", "Statement": [other, st]})
    assert moved.statements[1].index == 1 and moved.statements[1].action == ("s3:GetObject",)
    # Validation options are part of the key: the same text is no resource-based statement.
    with pytest.raises(PolicyParseError, match="needs Principal"):
        parse_policy({"Version": "2012-10-17", "Statement": [st]}, principal=True)


def test_nan_is_not_taken_for_a_cached_null() -> None:
    # orjson writes NaN as null: a cached statement with "Sid": null must not answer for "Sid": NaN,
    # which IAM's grammar (and parse_policy) rejects.
    st = {"Sid": None, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::nan-sid/*"}
    for _ in range(3):
        assert parse_policy({"Statement": [st]}).statements[0].sid is None
    with pytest.raises(PolicyParseError, match="Sid must be a string"):
        parse_policy({"Statement": [{**st, "Sid": float("nan")}]})
