"""No removal without coverage: a proposal is applicable only when the evidence covers the window for every
principal of the policy; otherwise its status says why, unless the override is given. Sessions count as use of
what issued them (an AssumeRole into a role; a GetFederationToken session)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence_scenario import ACCT, record, write_inputs, write_trail

from iamgraph.recommend import ProposalStatus, RecommendConfig, recommend_principal
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.usage.coverage import Gap
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore
from iamgraph.usage.unused import FindingKind, unused_report

NOW = datetime(2024, 3, 31, tzinfo=UTC)
APP = f"arn:aws:iam::{ACCT}:role/app"
IDLE = f"arn:aws:iam::{ACCT}:role/idle"
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sqs:ListQueues", "sqs:PurgeQueue", "sts:AssumeRole"], "Resource": "*"}]}
LIST = record("app", "sqs.amazonaws.com", "ListQueues", {})


def _run(tmp_path: Path, records: list[dict[str, Any]], *, covered: tuple[str, ...] = ("2024-01-01", "2024-03-31"),
         created: str = "2023-06-01T00:00:00Z", config: RecommendConfig | None = None,
         principal: str = APP) -> Any:
    snapshot = write_inputs(tmp_path / "in", {"app": POLICY, "idle": POLICY}, created=created)
    with UsageStore(tmp_path / "u.duckdb") as store:
        ingest_location(store, str(write_trail(tmp_path / "trail", records, covered=covered)))
        rec = recommend_principal(SnapshotIndex(snapshot), store, principal, days=90, now=NOW, config=config)
        report = unused_report(snapshot, store, days=90, now=NOW)
    (p,) = rec.proposals
    return p, report


def test_full_coverage_is_applicable(tmp_path: Path) -> None:
    p, _ = _run(tmp_path, [LIST])
    assert p.status is ProposalStatus.EMITTED and p.coverage_gaps == ()
    assert "sqs:PurgeQueue" in p.removed_actions


def test_ingest_that_starts_after_the_window_start_removes_nothing(tmp_path: Path) -> None:
    p, _ = _run(tmp_path, [LIST], covered=("2024-02-15", "2024-03-31"))
    assert p.status is ProposalStatus.INCOMPLETE_EVIDENCE and p.proposed == ()
    assert [g.kind for g in p.coverage_gaps] == [Gap.STARTS_LATE]
    assert "2024-02-15" in p.reason


def test_the_override_emits_and_still_reports_the_gap(tmp_path: Path) -> None:
    p, _ = _run(tmp_path, [LIST], covered=("2024-02-15", "2024-03-31"),
                config=RecommendConfig(accept_incomplete_evidence=True))
    assert p.status is ProposalStatus.EMITTED and [g.kind for g in p.coverage_gaps] == [Gap.STARTS_LATE]


def test_a_principal_younger_than_the_window(tmp_path: Path) -> None:
    p, _ = _run(tmp_path, [LIST], created="2024-03-30T00:00:00Z")
    assert p.status is ProposalStatus.INCOMPLETE_EVIDENCE
    assert [g.kind for g in p.coverage_gaps] == [Gap.PRINCIPAL_YOUNGER]


def test_an_account_the_principal_acts_in_without_evidence(tmp_path: Path) -> None:
    # (The store keeps one account per principal, action and resource: the call elsewhere is another action.)
    elsewhere = record("app", "sqs.amazonaws.com", "GetQueueUrl", {"queueName": "q"})
    elsewhere["recipientAccountId"] = "444455556666"
    p, _ = _run(tmp_path, [LIST, elsewhere])
    assert p.status is ProposalStatus.INCOMPLETE_EVIDENCE
    assert [(g.kind, "444455556666" in g.detail) for g in p.coverage_gaps] == [(Gap.ACCOUNT_NOT_COVERED, True)]


def test_a_role_assumed_without_recorded_calls_is_used_not_idle(tmp_path: Path) -> None:
    """AssumeRole names the role in resources[]
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html#cloudtrail-integration_examples-sts-api)."""
    assume = record("app", "sts.amazonaws.com", "AssumeRole", {"roleArn": IDLE, "roleSessionName": "s"},
                    [("AWS::IAM::Role", IDLE)])
    p, report = _run(tmp_path, [LIST, assume], principal=IDLE)
    assert p.status is ProposalStatus.INCOMPLETE_EVIDENCE
    assert [g.kind for g in p.coverage_gaps] == [Gap.SESSIONS_WITHOUT_CALLS]
    # unused agrees: the role was used (assumed), so it is not reported as never used.
    never = {f.principal_arn for f in report.findings if f.kind is FindingKind.NEVER_USED_ROLE}
    assert IDLE not in never


FED = f"arn:aws:iam::{ACCT}:user/fed"


def _federated(tmp_path: Path, actions: list[str], aa: list[Any]) -> Any:
    """The IAM user ``fed`` granted ``actions`` (with Access Advisor's ``aa``), and one ListQueues call of a federated
    session it issued; the recommendation for it and the unused report."""
    from iamgraph.collect.files import load_paths
    from iamgraph.snapshot.model import Activity

    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    gaad = {"UserDetailList": [{"Path": "/", "UserName": "fed", "UserId": "AIDAFEDEXAMPLE0000001", "Arn": FED,
                                "CreateDate": "2023-06-01T00:00:00Z", "GroupList": [], "AttachedManagedPolicies": [],
                                "UserPolicyList": [{"PolicyName": "fed", "PolicyDocument": policy}], "Tags": []}],
            "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "gaad.json").write_text(json.dumps(gaad))
    snapshot = load_paths([tmp_path / "in" / "gaad.json"], collected_at="2024-03-31T00:00:00Z")
    if aa:
        snapshot = snapshot.model_copy(update={"activity": Activity(access_advisor=aa)})
    call = record("app", "sqs.amazonaws.com", "ListQueues", {})
    call["userIdentity"] = {
        "type": "FederatedUser", "principalId": f"{ACCT}:bob", "arn": f"arn:aws:sts::{ACCT}:federated-user/bob",
        "accountId": ACCT, "sessionContext": {"sessionIssuer": {
            "type": "IAMUser", "principalId": "AIDAFEDEXAMPLE0000001", "arn": FED, "accountId": ACCT,
            "userName": "fed"}}}
    with UsageStore(tmp_path / "u.duckdb") as store:
        ingest_location(store, str(write_trail(tmp_path / "trail", [call])))
        rec = recommend_principal(SnapshotIndex(snapshot), store, FED, days=90, now=NOW)
        report = unused_report(snapshot, store, days=90, now=NOW)
    return rec, report


def test_federated_sessions_are_use_of_get_federation_token(tmp_path: Path) -> None:
    """A FederatedUser call names the IAM user that called GetFederationToken as sessionIssuer."""
    user = FED
    rec, report = _federated(tmp_path, ["sts:GetFederationToken", "sqs:ListQueues", "sqs:PurgeQueue"], [])
    (p,) = rec.proposals
    assert p.status is ProposalStatus.EMITTED
    assert p.removed_actions == ("sqs:PurgeQueue",)
    unused = {f.subject for f in report.findings if f.principal_arn == user and f.kind is FindingKind.UNUSED_ACTION}
    assert "sts:GetFederationToken" not in unused and "sqs:PurgeQueue" in unused


def test_a_federated_session_makes_sts_a_called_service_for_recommend_as_for_unused(tmp_path: Path) -> None:
    """Access Advisor shows STS not accessed, yet CloudTrail holds calls of the user's federated session, which exists
    only through the user's GetFederationToken: STS was called. ``unused`` then keeps the unobservable sts:TagSession
    (a permission checked when tags are passed to a session, never an API call of its own:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html#id_session-tags_permissions-required);
    ``recommend`` must judge the same and not remove it by Access Advisor's service verdict."""
    from iamgraph.snapshot.model import ServiceLastAccessed

    rec, report = _federated(
        tmp_path, ["sts:GetFederationToken", "sts:TagSession", "sqs:ListQueues", "sqs:PurgeQueue"],
        [ServiceLastAccessed(principal_arn=FED, service_namespace="sts", last_authenticated=None)])
    mine = [f for f in report.findings if f.principal_arn == FED]
    quiet = {a for f in mine if f.kind is FindingKind.UNOBSERVABLE_ACTION for a in f.actions}
    unused = {f.subject for f in mine if f.kind is FindingKind.UNUSED_ACTION}
    assert "sts:TagSession" in quiet and "sts:TagSession" not in unused
    (p,) = rec.proposals
    assert p.status is ProposalStatus.EMITTED
    assert p.removed_actions == ("sqs:PurgeQueue",)
