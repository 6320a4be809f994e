"""Policies shared by several principals, AWS managed policies, configured exclusions, on a small snapshot and a
real usage store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iamgraph.recommend import (
    PolicyKind,
    ProposalStatus,
    RecommendConfig,
    Recommender,
    parse_config,
    recommend_principal,
)
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.store import FileEntry, UsageStore

ACCT = "111122223333"
A = f"arn:aws:iam::{ACCT}:role/a"
B = f"arn:aws:iam::{ACCT}:role/b"
U = f"arn:aws:iam::{ACCT}:user/carol"
SHARED = f"arn:aws:iam::{ACCT}:policy/shared"
RO = "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"
NOW = datetime(2026, 11, 15, tzinfo=UTC)
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


def _policy(arn: str, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"arn": arn, "name": name, "default_version_id": "v1",
            "versions": [{"version_id": "v1", "is_default": True, "document": doc}]}


def _snapshot() -> Snapshot:
    shared = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"], "Resource": "*"}]}
    ro = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueues"],
         "Resource": "*"}]}
    role = {"role_id": "AROA", "trust_policy": TRUST, "attached_managed_policies": [SHARED, RO]}
    return Snapshot.model_validate({
        "collected_at": "2026-11-15T00:00:00Z",
        "aws_managed_policies": [_policy(RO, "AmazonSQSReadOnlyAccess", ro)],
        "accounts": [{"account_id": ACCT, "policies": [_policy(SHARED, "shared", shared)],
                      "roles": [{"arn": A, "name": "a", **role}, {"arn": B, "name": "b", **role,
                                                                    "tags": {"team": "sec"}}],
                      "users": [{"arn": U, "name": "carol", "user_id": "AIDA", "inline_policies": [
                          {"name": "own", "document": {"Version": "2012-10-17", "Statement": [
                              {"Sid": "KeepAudit", "Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"},
                              {"Effect": "Allow", "Action": "sqs:PurgeQueue", "Resource": "*"}]}}]}]}],
    })


def _row(who: str, action: str) -> dict[str, Any]:
    return {"principal_arn": who, "identity_type": "AssumedRole", "action": action, "resource": "",
            "source": "cloudtrail", "outcome": "allowed", "invoked_by": "", "permission_set": None,
            "account_id": ACCT, "certain": True, "first_seen": "2026-11-01T00:00:00Z",
            "last_seen": "2026-11-02T00:00:00Z", "count": 3}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SnapshotIndex, UsageStore]]:
    path: Path = tmp_path_factory.mktemp("shared") / "usage.duckdb"
    store = UsageStore(path)
    store.merge_usage([_row(A, "sqs:SendMessage"), _row(B, "sqs:DeleteMessage"), _row(A, "sqs:ListQueues")])
    # The trail covered the whole window (its first and last day's files were ingested).
    store.record_files([
        FileEntry(path=f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{d}/{ACCT}_CloudTrail_us-east-1_x.json.gz", size=1,
                  mtime=None, sha256=d, status="ok") for d in ("2026/08/17", "2026/11/15")])
    yield SnapshotIndex(_snapshot()), store
    store.close()


def _proposal(rec: Any, policy_id: str) -> Any:
    (p,) = [p for p in rec.proposals if p.policy_id == policy_id]
    return p


def test_customer_managed_policy_is_trimmed_against_the_union_of_its_principals(env: Any) -> None:
    index, store = env
    rec = recommend_principal(index, store, A, days=90, now=NOW)
    p = _proposal(rec, SHARED)
    assert p.status is ProposalStatus.EMITTED and set(p.principals) == {A, B}
    (st,) = p.proposed[0]["Statement"]
    # a used SendMessage, b used DeleteMessage (data events are observed for sqs, since some were recorded);
    # PurgeQueue is a management event nobody used.
    assert set(st["Action"]) == {"sqs:SendMessage", "sqs:DeleteMessage"}
    assert p.removed_actions == ("sqs:PurgeQueue",)
    assert p.verification is not None and p.verification.passed


def test_aws_managed_policy_is_replaced_by_a_customer_managed_proposal(env: Any) -> None:
    index, store = env
    p = _proposal(recommend_principal(index, store, A, days=90, now=NOW), RO)
    assert p.kind is PolicyKind.AWS_MANAGED and p.status is ProposalStatus.EMITTED
    assert p.principals == (A,) and p.proposed_names == ("AmazonSQSReadOnlyAccess-trimmed",)
    assert "sqs:ListQueues" in p.proposed[0]["Statement"][0]["Action"]
    assert "sqs:GetQueueUrl" in p.removed_actions


def test_exclusion_by_tag_of_any_principal_leaves_a_shared_policy_alone(env: Any) -> None:
    index, store = env
    cfg = parse_config({"recommend": {"exclude": {"tags": {"team": "sec"}}}})
    rec = Recommender(index, store, days=90, now=NOW, config=cfg).recommend(A)
    assert _proposal(rec, SHARED).status is ProposalStatus.LEFT_ALONE
    assert _proposal(rec, RO).status is ProposalStatus.EMITTED  # replaced for a only: b's tag does not apply


def test_exclusion_by_account_and_keep_marker(env: Any) -> None:
    index, store = env
    rec = Recommender(index, store, days=90, now=NOW,
                      config=RecommendConfig(exclude_accounts=frozenset({ACCT}))).recommend(A)
    assert {p.status for p in rec.proposals} == {ProposalStatus.LEFT_ALONE}
    user = recommend_principal(index, store, U, days=90, now=NOW)
    p = _proposal(user, f"{U}:inline/own")
    assert p.status is ProposalStatus.EMITTED
    assert p.proposed[0]["Statement"] == [{"Sid": "KeepAudit", "Effect": "Allow", "Action": "sqs:ListQueues",
                                           "Resource": "*"}]
    assert any("no recorded use" in n for n in user.notes)


def test_unknown_principal_is_a_clear_error(env: Any) -> None:
    from iamgraph.errors import NotFoundError

    index, store = env
    with pytest.raises(NotFoundError, match="role/nobody"):
        recommend_principal(index, store, f"arn:aws:iam::{ACCT}:role/nobody", now=NOW)
