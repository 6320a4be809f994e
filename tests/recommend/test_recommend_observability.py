"""Evidence judged where it was collected: data-event observability per account, and Access Advisor's service
verdicts, in recommend (the judgement unused shares: tests/recommend/test_recommend_agreement.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence_scenario import ACCT, gaad, record, write_trail

from iamgraph.collect.files import load_paths
from iamgraph.recommend import ProposalStatus, RecommendConfig, parse_config, recommend_principal
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Activity, ServiceLastAccessed, Snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore

B = "444455556666"
NOW = datetime(2024, 3, 31, tzinfo=UTC)
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "sqs:ListQueues", "dynamodb:GetItem"],
     "Resource": "*"}]}


def _snapshot(root: Path, aa: list[ServiceLastAccessed]) -> Snapshot:
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.json").write_text(json.dumps(gaad({"a": POLICY, "c": POLICY, "d": POLICY})))
    (root / "b.json").write_text(json.dumps(gaad({"b": POLICY})).replace(ACCT, B))
    snap = load_paths([root / "a.json", root / "b.json"], collected_at="2024-03-31T00:00:00Z")
    return snap.model_copy(update={"activity": Activity(access_advisor=aa)})


def _trail(root: Path) -> Path:
    # Account A logs S3 data events (a GetObject is in its trail); account B logs management events only.
    a = record("a", "s3.amazonaws.com", "GetObject", {"bucketName": "data", "key": "k"},
               [("AWS::S3::Object", "arn:aws:s3:::data/k")])
    listing = [record(r, "sqs.amazonaws.com", "ListQueues", {}) for r in ("a", "c", "d")]
    write_trail(root, [a, *listing])
    b = record("b", "sqs.amazonaws.com", "ListQueues", {})
    b["userIdentity"] = json.loads(json.dumps(b["userIdentity"]).replace(ACCT, B))
    b["recipientAccountId"] = B
    write_trail(root, [b], account=B)
    return root


def _removed(tmp_path: Path, role: str, account: str, aa: list[ServiceLastAccessed],
             config: RecommendConfig | None = None) -> tuple[str, ...]:
    snapshot = _snapshot(tmp_path / "in", aa)
    with UsageStore(tmp_path / "u.duckdb") as store:
        ingest_location(store, str(_trail(tmp_path / "trail")))
        rec = recommend_principal(SnapshotIndex(snapshot), store, f"arn:aws:iam::{account}:role/{role}", days=90,
                                  now=NOW, config=config)
    (p,) = rec.proposals
    assert p.status in (ProposalStatus.EMITTED, ProposalStatus.UNCHANGED), (p.reason, p.coverage_gaps)
    return p.removed_actions


def test_data_events_are_judged_per_account(tmp_path: Path) -> None:
    # In A, S3 data events are logged: the unused PutObject goes, the used GetObject stays.
    assert "s3:PutObject" in _removed(tmp_path / "a", "a", ACCT, [])
    assert "s3:GetObject" not in _removed(tmp_path / "a2", "a", ACCT, [])
    # In B, nothing shows S3 data events are logged: B's role keeps both.
    removed_b = _removed(tmp_path / "b", "b", B, [])
    assert "s3:GetObject" not in removed_b and "s3:PutObject" not in removed_b


def test_configuration_says_which_account_logs_which_data_events(tmp_path: Path) -> None:
    cfg = parse_config({"recommend": {"data_events": {B: ["s3"], "*": []}}})
    removed_b = _removed(tmp_path / "b", "b", B, [], cfg)
    assert "s3:GetObject" in removed_b and "s3:PutObject" in removed_b  # configured as logged in B, and not seen
    assert "s3:PutObject" not in _removed(tmp_path / "a", "a", ACCT, [], cfg)  # A: "*" says none are logged


def _aa(role: str, service: str, last: str | None) -> ServiceLastAccessed:
    return ServiceLastAccessed(principal_arn=f"arn:aws:iam::{ACCT}:role/{role}", service_namespace=service,
                               last_authenticated=last)


def test_access_advisor_not_accessed_removes_the_service_unobservable_actions_included(tmp_path: Path) -> None:
    # No DynamoDB data events anywhere: dynamodb:GetItem is unobservable, kept without Access Advisor.
    assert "dynamodb:GetItem" not in _removed(tmp_path / "none", "c", ACCT, [])
    # Access Advisor: DynamoDB not accessed in the tracking period -> the whole service goes.
    assert "dynamodb:GetItem" in _removed(tmp_path / "never", "c", ACCT, [_aa("c", "dynamodb", None)])
    # Last accessed before the window: not accessed in the window either.
    assert "dynamodb:GetItem" in _removed(tmp_path / "old", "c", ACCT,
                                          [_aa("c", "dynamodb", "2023-01-01T00:00:00Z")])
    # Accessed in the window but no call observed: its unobservable actions stay.
    assert "dynamodb:GetItem" not in _removed(tmp_path / "used", "d", ACCT,
                                              [_aa("d", "dynamodb", "2024-03-10T00:00:00Z")])


def test_access_advisor_used_service_without_a_cloudtrail_call_keeps_observable_actions(tmp_path: Path) -> None:
    """S3 data events are logged in A, yet Access Advisor saw d use S3 while CloudTrail has no S3 call of d: the
    trail does not see that use, so none of S3 goes (without Access Advisor, the unused PutObject would)."""
    assert "s3:PutObject" in _removed(tmp_path / "plain", "d", ACCT, [])
    removed: Any = _removed(tmp_path / "aa", "d", ACCT, [_aa("d", "s3", "2024-03-10T00:00:00Z")])
    assert "s3:PutObject" not in removed and "s3:GetObject" not in removed
