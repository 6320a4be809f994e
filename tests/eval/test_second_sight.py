"""The caches that keep a parsed or compiled piece only from its second sight (model/memo.py)."""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.errors import PolicyParseError
from iamgraph.eval import batch
from iamgraph.eval.batch import evaluate_line, parse_line
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


# ------------------------------------------------------------------ batch lines: the whole policy set, from its second sight

_ALICE = "arn:aws:iam::111122223333:user/alice"
_READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::second-sight-set/*"}]}


def _batch_line(policies: dict[str, Any], resource: str = "arn:aws:s3:::second-sight-set/k",
                action: str = "s3:GetObject") -> dict[str, Any]:
    return {"id": 1, "request": {"principal": _ALICE, "action": action, "resource": resource},
            "policies": policies}


def test_lines_with_the_same_policies_share_one_parsed_policy_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "_set_cache", batch._Asking())  # earlier tests' distinct sets do not count
    sets = [parse_line(_batch_line({"identity": [_READ]}))[1] for _ in range(3)]
    assert sets[1] is sets[2] and sets[0] == sets[1]
    # Another set of documents is its own.
    other = parse_line(_batch_line({"identity": [_READ, _READ]}))[1]
    assert len(other.identity) == 2


def test_a_nan_where_a_document_belongs_is_never_taken_for_a_cached_null() -> None:
    # orjson writes NaN as null: "resource": null (no resource policy) must not answer for "resource": NaN.
    for _ in range(3):
        assert evaluate_line(_batch_line({"identity": [_READ], "resource": None}))["decision"] == "Allowed"
    out = evaluate_line(_batch_line({"identity": [_READ], "resource": float("nan")}))
    assert out["decision"] == "ImplicitlyDenied" and "policies.resource" in out["error"]


def test_kms_grants_are_read_for_each_lines_own_key() -> None:
    # A grant becomes a policy named after the line's key (kms_grants.py): lines with the same grants on
    # different keys must each name their own key.
    grants = [{"GrantId": "g-1", "GranteePrincipal": _ALICE, "Operations": ["Decrypt"]}]
    for n in range(3):
        key = f"arn:aws:kms:us-east-1:111122223333:key/0000000{n}-aaaa-bbbb-cccc-dddddddddddd"
        out = evaluate_line(_batch_line({"identity": [], "kmsGrants": grants}, resource=key, action="kms:Decrypt"))
        assert out["decision"] == "Allowed"
        assert [r["policyId"] for r in out["reasons"]] == [f"{key}:grant/g-1"]


def test_after_many_distinct_sets_a_repeated_set_is_found_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch of distinct documents stops looking every line up (batch._Asking); lines that repeat again are
    # shared again within a few dozen lines, and the answers never depend on it.
    monkeypatch.setattr(batch, "_set_cache", batch._Asking())
    for n in range(100):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                       "Resource": f"arn:aws:s3:::distinct-{n}/*"}]}
        assert evaluate_line(_batch_line({"identity": [doc]}))["decision"] == "ImplicitlyDenied"
    assert batch._set_cache.misses >= 64
    again = [parse_line(_batch_line({"identity": [_READ, _READ, _READ]}))[1] for _ in range(40)]
    assert again[-1] is again[-2]
    assert batch._set_cache.misses == 0
