"""AWS quotas enforced on the final documents (after Sid renames, measured as AWS counts them), per policy and per
identity, and Sid collisions renamed. Limits from the IAM quotas page
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): a managed policy 6,144 characters; all
inline policies of a user together 2,048, of a group 5,120, of a role 10,240 (whitespace not counted); 10 managed
policies attached per identity by default (adjustable to 20)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iamgraph.catalog import get_catalog
from iamgraph.recommend import Call, PolicyKind, ProposalStatus, RecommendConfig, Recommender, trim_document
from iamgraph.recommend.containment import prove_contained
from iamgraph.recommend.split import (
    MANAGED_LIMIT,
    USER_INLINE_LIMIT,
    policy_size,
    split_document,
    unique_sids,
)
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.store import FileEntry, UsageStore

ACCT = "111122223333"
USER = f"arn:aws:iam::{ACCT}:user/dave"
ROLE = f"arn:aws:iam::{ACCT}:role/batch"
BIG = f"arn:aws:iam::{ACCT}:policy/big"
SMALL = f"arn:aws:iam::{ACCT}:policy/small"
NOW = datetime(2026, 11, 15, tzinfo=UTC)
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
EC2 = sorted(a for a in get_catalog().actions_of("ec2") if a.startswith("ec2:Describe"))


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# -- per document: measured after the Sid rename --------------------------------------------------------------------


def test_every_part_fits_after_its_sid_is_renamed() -> None:
    # Sweep statement sizes across the limit: the pieces of a cut statement carry <Sid>Part<k>, which must be counted.
    for n in range(230, 330, 7):
        d = doc({"Sid": "ReadEverythingWeNeed", "Effect": "Allow", "Action": EC2[:n], "Resource": "*"})
        parts = split_document(d, MANAGED_LIMIT)
        assert parts == split_document(d, MANAGED_LIMIT)  # deterministic
        for p in parts:
            assert policy_size(p) <= MANAGED_LIMIT, (n, policy_size(p))
        sids = [st["Sid"] for p in parts for st in p["Statement"]]
        assert len(sids) == len(set(sids))
        assert [a for p in parts for st in p["Statement"] for a in st["Action"]] == EC2[:n]


def test_policy_size_is_the_minified_document() -> None:
    d = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert policy_size(d) == len('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",'
                                 '"Resource":"*"}]}')


def test_sid_collisions_are_renamed_deterministically() -> None:
    statements = [{"Sid": "Read", "Effect": "Allow"}, {"Sid": "Read", "Effect": "Deny"},
                  {"Sid": "Read2", "Effect": "Allow"}, {"Effect": "Allow"}, {"Sid": "Read", "Effect": "Allow"}]
    out = unique_sids(statements)
    assert [st.get("Sid") for st in out] == ["Read", "Read3", "Read2", None, "Read4"]
    assert out == unique_sids(statements)


def test_a_derived_sid_that_collides_with_an_existing_one_is_renamed() -> None:
    b = "arn:aws:s3:::bucket"
    # Statement "Read" splits into two (ListBucket keeps its original resource, GetObject narrows to the key): the
    # derived Sid would be "Read2", which the original's second statement already uses.
    original = doc({"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [b, f"{b}/*"]},
                   {"Sid": "Read2", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
    calls = [Call(principal_arn=USER, action="s3:GetObject", resource=f"{b}/k"),
             Call(principal_arn=USER, action="s3:ListBucket", resource=None),
             Call(principal_arn=USER, action="sqs:SendMessage", resource=None)]
    t = trim_document(original, calls, keep_action=lambda a: False, config=RecommendConfig())
    sids = [st["Sid"] for st in t.document["Statement"]]
    assert sorted(sids) == ["Read", "Read2", "Read3"] and len(t.document["Statement"]) == 3
    assert prove_contained(original, [t.document]).contained


# -- per identity ----------------------------------------------------------------------------------------------------


def _policy(arn: str, name: str, document: dict[str, Any]) -> dict[str, Any]:
    return {"arn": arn, "name": name, "default_version_id": "v1",
            "versions": [{"version_id": "v1", "is_default": True, "document": document}]}


def _row(who: str, action: str) -> dict[str, Any]:
    return {"principal_arn": who, "identity_type": "IAMUser" if ":user/" in who else "AssumedRole", "action": action,
            "resource": "", "source": "cloudtrail", "outcome": "allowed", "invoked_by": "", "permission_set": None,
            "account_id": ACCT, "certain": True, "first_seen": "2026-11-01T00:00:00Z",
            "last_seen": "2026-11-02T00:00:00Z", "count": 3}


# Two inline policies of ~1,300 characters each: each fits the user's 2,048 alone, together they do not.
INLINE_A = EC2[:50]
INLINE_B = EC2[50:100]
# A managed policy of ~300 listed actions: over 6,144 characters, so its proposal has two parts.
BIG_ACTIONS = EC2[:300]


def _snapshot() -> Snapshot:
    def own(name: str, actions: list[str]) -> dict[str, Any]:
        return {"name": name, "document": doc({"Effect": "Allow", "Action": [*actions, "ec2:RunInstances"],
                                               "Resource": "*"})}

    return Snapshot.model_validate({
        "collected_at": "2026-11-15T00:00:00Z",
        "accounts": [{"account_id": ACCT,
                      "policies": [_policy(BIG, "big", doc({"Effect": "Allow", "Action": [*BIG_ACTIONS,
                                                                                           "ec2:RunInstances"],
                                                            "Resource": "*"})),
                                   _policy(SMALL, "small", doc({"Effect": "Allow", "Action": "sqs:ListQueues",
                                                                "Resource": "*"}))],
                      "roles": [{"arn": ROLE, "name": "batch", "role_id": "AROA", "trust_policy": TRUST,
                                 "attached_managed_policies": [BIG, SMALL]}],
                      "users": [{"arn": USER, "name": "dave", "user_id": "AIDA",
                                 "inline_policies": [own("a", INLINE_A), own("b", INLINE_B)]}]}],
    })


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SnapshotIndex, UsageStore]]:
    path: Path = tmp_path_factory.mktemp("quotas") / "usage.duckdb"
    store = UsageStore(path)
    store.merge_usage([_row(USER, a) for a in INLINE_A + INLINE_B] + [_row(ROLE, a) for a in BIG_ACTIONS]
                      + [_row(ROLE, "sqs:ListQueues")])
    store.record_files([
        FileEntry(path=f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{d}/{ACCT}_CloudTrail_us-east-1_x.json.gz", size=1,
                  mtime=None, sha256=d, status="ok") for d in ("2026/08/17", "2026/11/15")])
    yield SnapshotIndex(_snapshot()), store
    store.close()


def test_inline_policies_over_the_identity_aggregate_become_managed(env: tuple[SnapshotIndex, UsageStore]) -> None:
    index, store = env
    r = Recommender(index, store, days=90, now=NOW).recommend(USER)
    props = {p.name: p for p in r.proposals}
    assert {p.status for p in props.values()} == {ProposalStatus.EMITTED}
    sizes = {n: sum(policy_size(d) for d in p.proposed) for n, p in props.items()}
    assert all(s <= USER_INLINE_LIMIT for s in sizes.values()) and sum(sizes.values()) > USER_INLINE_LIMIT
    moved = [p for p in props.values() if p.emit_as is PolicyKind.CUSTOMER_MANAGED]
    stay = [p for p in props.values() if p.emit_as is None]
    assert len(moved) == 1 and len(stay) == 1  # moving the larger one is enough
    assert sum(policy_size(d) for d in stay[0].proposed) <= USER_INLINE_LIMIT
    (note,) = moved[0].notes
    assert f"over the {USER_INLINE_LIMIT}" in note and "customer managed policy" in note
    assert all(policy_size(d) <= MANAGED_LIMIT for d in moved[0].proposed)
    assert prove_contained(moved[0].original, moved[0].proposed).contained


def test_a_split_managed_policy_over_the_attachment_quota_is_not_emitted(
        env: tuple[SnapshotIndex, UsageStore]) -> None:
    index, store = env
    ok = Recommender(index, store, days=90, now=NOW).recommend(ROLE)
    (big,) = [p for p in ok.proposals if p.policy_id == BIG]
    assert big.status is ProposalStatus.EMITTED and len(big.proposed) == 2
    assert all(policy_size(d) <= MANAGED_LIMIT for d in big.proposed)
    # With a quota of 2 attached managed policies, the split (2 parts + "small") would make 3.
    tight = Recommender(index, store, days=90, now=NOW, config=RecommendConfig(managed_policy_quota=2)).recommend(ROLE)
    (big2,) = [p for p in tight.proposals if p.policy_id == BIG]
    assert big2.status is ProposalStatus.FAILED and not big2.proposed
    assert "quota of 2" in big2.reason and "3 attached" in big2.reason


ROLE2 = f"arn:aws:iam::{ACCT}:role/batch-two"


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SnapshotIndex, UsageStore]]:
    # "big" is attached to two roles: "batch" holds it beside "small", "batch-two" holds it alone.
    data = _snapshot().model_dump(mode="json")
    roles = data["accounts"][0]["roles"]
    roles.append({**roles[0], "arn": ROLE2, "name": "batch-two", "role_id": "AROB", "attached_managed_policies": [BIG]})
    path: Path = tmp_path_factory.mktemp("quotas-shared") / "usage.duckdb"
    store = UsageStore(path)
    store.merge_usage([_row(ROLE, a) for a in BIG_ACTIONS] + [_row(ROLE, "sqs:ListQueues")]
                      + [_row(ROLE2, a) for a in BIG_ACTIONS[:10]])
    store.record_files([
        FileEntry(path=f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{d}/{ACCT}_CloudTrail_us-east-1_x.json.gz", size=1,
                  mtime=None, sha256=d, status="ok") for d in ("2026/08/17", "2026/11/15")])
    yield SnapshotIndex(Snapshot.model_validate(data)), store
    store.close()


@pytest.mark.parametrize("first", [ROLE, ROLE2])
def test_a_shared_split_policy_is_fitted_to_every_identity_holding_it(
        shared_env: tuple[SnapshotIndex, UsageStore], first: str) -> None:
    # Attaching the two parts of "big" in place of it gives "batch" 3 managed policies and "batch-two" 2. With a
    # quota of 2, the proposal cannot be applied to the policy (one document shared by both roles), so it is not
    # emitted, whichever role is asked about first and whether the run asks about one role or both.
    index, store = shared_env
    loose = Recommender(index, store, days=90, now=NOW)
    assert {len(p.proposed) for r in (ROLE, ROLE2) for p in loose.recommend(r).proposals if p.policy_id == BIG} == {2}
    rec = Recommender(index, store, days=90, now=NOW, config=RecommendConfig(managed_policy_quota=2))
    second = ROLE2 if first == ROLE else ROLE
    for who in (first, second):
        (big,) = [p for p in rec.recommend(who).proposals if p.policy_id == BIG]
        assert big.status is ProposalStatus.FAILED and not big.proposed, who
        assert f"bring {ROLE} to 3 attached managed policies" in big.reason and "quota of 2" in big.reason
    alone = Recommender(index, store, days=90, now=NOW, config=RecommendConfig(managed_policy_quota=2))
    (big,) = [p for p in alone.recommend(ROLE2).proposals if p.policy_id == BIG]
    assert big.status is ProposalStatus.FAILED
