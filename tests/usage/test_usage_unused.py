"""The unused report over a small snapshot and store. Granted actions come from the real engine."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from usage_ct_logs import ACCT, event, log_path, role_identity, write_log

from iamgraph.snapshot.model import (
    Account,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    Role,
    RoleLastUsed,
    Snapshot,
    User,
)
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore
from iamgraph.usage.unused import FindingKind, Severity, sort_findings, unused_report

NOW = datetime(2024, 4, 1)
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


def _doc(*actions: str, resource: str = "*") -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}


def _role(name: str, doc: dict[str, object], **kw: object) -> Role:
    return Role(
        arn=f"arn:aws:iam::{ACCT}:role/{name}", name=name, role_id="AROA" + name.upper(), trust_policy=TRUST,
        inline_policies=[InlinePolicy(name="p", document=doc)], create_date="2023-01-01T00:00:00Z", **kw,  # type: ignore[arg-type]
    )


def _snapshot() -> Snapshot:
    boundary = ManagedPolicy(
        arn=f"arn:aws:iam::{ACCT}:policy/no-ec2", name="no-ec2", default_version_id="v1",
        versions=[PolicyVersion(version_id="v1", is_default=True, document=_doc("iam:*", "s3:*"))],
    )
    orphan = ManagedPolicy(
        arn=f"arn:aws:iam::{ACCT}:policy/orphan", name="orphan", default_version_id="v1", attachment_count=0,
        versions=[PolicyVersion(version_id="v1", is_default=True, document=_doc("sqs:ListQueues"))],
    )
    acct = Account(
        account_id=ACCT,
        roles=[
            _role("app", _doc("iam:ListRoles", "iam:GetRole", "iam:CreateUser", "s3:GetObject",
                              "ec2:DescribeInstances", "iam:PassRole")),
            # The boundary does not allow ec2: the engine must drop ec2 from what "bounded" can do.
            _role("bounded", _doc("ec2:DescribeInstances", "iam:ListRoles"), permissions_boundary=boundary.arn),
            _role("idle", _doc("iam:ListRoles"), last_used=RoleLastUsed(last_used_date=None)),
            _role("recent", _doc("iam:ListRoles"), last_used=RoleLastUsed(last_used_date="2024-03-30T00:00:00Z")),
        ],
        users=[User(arn=f"arn:aws:iam::{ACCT}:user/bob", name="bob", user_id="AIDABOB"),
               User(arn=f"arn:aws:iam::{ACCT}:user/carol", name="carol", user_id="AIDACAROL")],
        policies=[boundary, orphan],
        credential_report=[
            {"user": "bob", "arn": f"arn:aws:iam::{ACCT}:user/bob", "password_enabled": "true",
             "password_last_used": "no_information", "access_key_1_active": "true",
             "access_key_1_last_used_date": "2023-06-01T00:00:00+00:00", "access_key_2_active": "false",
             "access_key_2_last_used_date": "N/A"},
            {"user": "carol", "arn": f"arn:aws:iam::{ACCT}:user/carol", "password_enabled": "true",
             "password_last_used": "2024-03-31T00:00:00+00:00", "access_key_1_active": "true",
             "access_key_1_last_used_date": "2024-03-31T00:00:00+00:00", "access_key_2_active": "false"},
        ],
    )
    return Snapshot(collected_at="2024-04-01T00:00:00Z", accounts=[acct])


@pytest.fixture()
def store(tmp_path: Path) -> UsageStore:
    root = tmp_path / "logs"
    app, bounded = role_identity("app"), role_identity("bounded")
    write_log(log_path(root, "2023-10-01", "old"), [event(app, "iam.amazonaws.com", "GetRole",
                                                          time="2023-10-01T00:00:00Z")])
    write_log(log_path(root, "2024-03-05", "new"), [
        event(app, "iam.amazonaws.com", "ListRoles"),
        event(app, "iam.amazonaws.com", "CreateUser", error="AccessDenied"),  # denied: not a use
        event(bounded, "iam.amazonaws.com", "ListRoles"),
    ])
    s = UsageStore(tmp_path / "u.duckdb")
    ingest_location(s, str(root))
    return s


def _by(report: object) -> dict[tuple[str, str, str], object]:
    return {(f.kind.value, f.principal_arn.rsplit("/", 1)[-1], f.subject): f for f in report.findings}  # type: ignore[attr-defined]


def test_unused_report(store: UsageStore) -> None:
    report = unused_report(_snapshot(), store, days=90, now=NOW)
    got = _by(report)
    keys = set(got)
    # app: GetRole was used before the window, CreateUser only denied; ec2 never used; ListRoles used.
    assert ("unused-action", "app", "iam:GetRole") in keys
    assert ("unused-action", "app", "iam:CreateUser") in keys
    assert ("unused-service", "app", "ec2") in keys
    assert not any(k[1] == "app" and k[2] == "iam:ListRoles" for k in keys)
    # Not observable: never claimed unused, listed (per service) as unobservable.
    assert got[("unobservable-action", "app", "iam")].actions == ("iam:PassRole",)  # type: ignore[attr-defined]
    assert got[("unobservable-action", "app", "s3")].actions == ("s3:GetObject",)  # type: ignore[attr-defined]
    assert not any(k[0] in ("unused-action", "unused-service") and k[2] in ("iam:PassRole", "s3:GetObject", "s3")
                   for k in keys)
    assert got[("unused-service", "app", "ec2")].actions == ("ec2:DescribeInstances",)  # type: ignore[attr-defined]
    # The boundary removes ec2 from "bounded": nothing about ec2 is reported for it.
    assert not any(k[1] == "bounded" and "ec2" in k[2] for k in keys)
    assert ("never-used-role", "idle", "idle") in keys
    assert not any(k[1] == "idle" and k[0] != "never-used-role" for k in keys)  # one finding, not one per service
    # "recent" has no CloudTrail evidence but IAM says it was used lately: not never-used, its grants are listed.
    assert ("unused-service", "recent", "iam") in keys
    assert not any(k[1] == "recent" and k[0] == "never-used-role" for k in keys)
    assert ("unused-password", "bob", "password") in keys
    assert ("unused-access-key", "bob", "access_key_1") in keys
    assert not any(k[1] == "carol" for k in keys)
    assert ("unused-policy", "orphan", "orphan") in keys
    assert not any(k[2] == "no-ec2" for k in keys)
    assert got[("unused-action", "app", "iam:GetRole")].last_seen is None  # type: ignore[attr-defined]
    assert got[("unused-access-key", "bob", "access_key_1")].severity is Severity.HIGH  # type: ignore[attr-defined]


def test_data_events_flag_makes_s3_observable(store: UsageStore) -> None:
    report = unused_report(_snapshot(), store, days=90, now=NOW, data_events=["s3"])
    keys = set(_by(report))
    assert ("unused-service", "app", "s3") in keys
    assert ("unobservable-action", "app", "s3") not in keys


def test_filters_and_sorting(store: UsageStore) -> None:
    report = unused_report(_snapshot(), store, days=90, now=NOW, principals=["bob"], min_severity=Severity.HIGH)
    assert [(f.kind, f.subject) for f in report.findings if f.principal_arn.endswith("bob")] == [
        (FindingKind.UNUSED_ACCESS_KEY, "access_key_1")
    ]
    assert report.principals_checked == 1
    assert unused_report(_snapshot(), store, now=NOW, accounts=["999999999999"]).principals_checked == 0
    full = unused_report(_snapshot(), store, now=NOW)
    ranks = [f.severity.rank for f in sort_findings(full.findings)]
    assert ranks == sorted(ranks, reverse=True)


def test_short_evidence_lowers_confidence(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    write_log(log_path(root, "2024-03-25", "x"), [event(role_identity("app"), "iam.amazonaws.com", "ListRoles")])
    with UsageStore(tmp_path / "u.duckdb") as s:
        ingest_location(s, str(root))
        report = unused_report(_snapshot(), s, days=90, now=NOW)
    assert any("after the window start" in n for n in report.notes)
    assert {f.confidence.value for f in report.findings if f.kind is FindingKind.UNUSED_ACTION} == {"low"}


def test_access_advisor_in_the_snapshot_counts(store: UsageStore) -> None:
    from iamgraph.snapshot.model import Activity, ServiceLastAccessed, TrackedAction

    app = f"arn:aws:iam::{ACCT}:role/app"
    snap = _snapshot().model_copy(update={"activity": Activity(access_advisor=[
        # ec2 was accessed in the window per Access Advisor (CloudTrail in the store shows nothing).
        ServiceLastAccessed(principal_arn=app, service_namespace="ec2", last_authenticated="2024-03-20T00:00:00Z"),
        # s3 is tracked at action level: GetObject (a data event CloudTrail cannot show here) was never accessed.
        ServiceLastAccessed(principal_arn=app, service_namespace="s3", last_authenticated="2024-03-21T00:00:00Z",
                            tracked_actions=[TrackedAction(action_name="GetObject"),
                                             TrackedAction(action_name="PutObject",
                                                           last_accessed_time="2024-03-21T00:00:00Z")]),
    ])})
    got = _by(unused_report(snap, store, days=90, now=NOW))
    assert not any(k[1] == "app" and k[0].startswith("unused") and k[2] in ("ec2", "ec2:DescribeInstances")
                   for k in got)
    # CloudTrail has no ec2 call although Access Advisor saw one: its silence is not evidence of non-use.
    blind = got[("unobservable-action", "app", "ec2")]
    assert blind.actions == ("ec2:DescribeInstances",) and "not_in_cloudtrail" in blind.reason  # type: ignore[attr-defined]
    f = got[("unused-action", "app", "s3:GetObject")]
    assert f.source == "access_advisor" and f.confidence.value == "high"  # type: ignore[attr-defined]
    assert ("unobservable-action", "app", "s3") not in got


def test_accounts_without_any_cloudtrail_lower_confidence(store: UsageStore) -> None:
    other = "444455556666"
    snap = _snapshot()
    second = snap.accounts[0].model_copy(update={
        "account_id": other, "credential_report": [], "policies": [],
        "roles": [_role("app", _doc("iam:ListRoles")).model_copy(update={"arn": f"arn:aws:iam::{other}:role/app"})],
        "users": [],
    })
    snap = snap.model_copy(update={"accounts": [*snap.accounts, second]})
    report = unused_report(snap, store, days=90, now=NOW)
    assert any(other in n and "may not cover" in n for n in report.notes)
    theirs = [f for f in report.findings if f.account_id == other and f.kind is not FindingKind.UNUSED_POLICY]
    assert theirs and {f.confidence.value for f in theirs} == {"low"}
    ours = [f for f in report.findings if f.account_id == ACCT and f.kind is FindingKind.UNUSED_ACTION]
    assert ours and {f.confidence.value for f in ours} == {"medium"}


def test_admin_grant_is_summarised_and_detail_lists_everything(tmp_path: Path) -> None:
    """A `*` on `*` grant gives one admin-grant finding; --detail (summarize_admins=False) keeps every row, and
    the summary names the same unused services and actions."""
    root = tmp_path / "logs"
    admin = role_identity("admin")
    write_log(log_path(root, "2024-03-05", "a"), [event(admin, "iam.amazonaws.com", "ListRoles")])
    snap = _snapshot()
    snap.accounts[0].roles.append(_role("admin", _doc("*")))
    # Scoped to one resource it is not admin-equivalent: no summary.
    snap.accounts[0].roles.append(_role("scoped", _doc("*", resource="arn:aws:s3:::bucket")))
    with UsageStore(tmp_path / "u.duckdb") as s:
        ingest_location(s, str(root))
        short = unused_report(snap, s, days=90, now=NOW, principals=["admin", "scoped"])
        full = unused_report(snap, s, days=90, now=NOW, principals=["admin", "scoped"], summarize_admins=False)
    mine = [f for f in short.findings if f.principal_arn.endswith("/admin")]
    assert [f.kind for f in mine] == [FindingKind.ADMIN_GRANT]
    summary = mine[0]
    detail = [f for f in full.findings if f.principal_arn.endswith("/admin")]
    assert len(detail) > 100
    assert summary.services == tuple(sorted(f.subject for f in detail if f.kind is FindingKind.UNUSED_SERVICE))
    assert summary.actions == tuple(f.subject for f in detail if f.kind is FindingKind.UNUSED_ACTION)
    quiet = sum(len(f.actions) for f in detail if f.kind is FindingKind.UNOBSERVABLE_ACTION)
    assert quiet > 0 and f"{quiet} granted action(s) unobservable" in summary.reason
    assert "iam" not in summary.services and "iam:ListRoles" not in summary.actions
    assert "iam:CreateUser" in summary.actions and "ec2" in summary.services
    scoped_short = [f for f in short.findings if f.principal_arn.endswith("/scoped")]
    assert scoped_short and FindingKind.ADMIN_GRANT not in {f.kind for f in scoped_short}


def test_an_unused_services_severity_is_high_exactly_when_one_of_its_actions_writes(store: UsageStore) -> None:
    """An unused service is HIGH when one of its actions has the Write or Permissions management access level
    (the catalog's word), else MEDIUM. Every service of the catalog, whole, in its first and last halves, its first
    and last action alone, with a name the catalog lacks, and spelt in lower case, against the levels asked one by
    one (a guard for any shortcut taken there: one kept as sets per service was tried and measured slower)."""
    from iamgraph.catalog import AccessLevel, get_catalog
    from iamgraph.usage.unused import UnusedAnalyzer

    cat = get_catalog()
    hot = {AccessLevel.PERMISSIONS_MANAGEMENT, AccessLevel.WRITE}
    an = UnusedAnalyzer(_snapshot(), store, now=NOW)

    def want(actions: list[str]) -> Severity:
        return Severity.HIGH if any(cat.access_level(a) in hot for a in actions) else Severity.MEDIUM

    seen = set()
    for service in sorted({a.split(":", 1)[0] for a in cat.all_actions()}):
        names = list(cat.actions_of(service))
        half = len(names) // 2
        lower = [a.lower() for a in names]  # not the catalog's spelling: looked up one by one
        for actions in (names, names[:half], names[half:], names[:1], names[-1:], [*names[:half], f"{service}:NoSuch"],
                        lower):
            got = an._severity_of_service(actions)
            assert got is want(actions), (service, actions[:3])
            seen.add(got)
    assert seen == {Severity.HIGH, Severity.MEDIUM}
    assert an._severity_of_service([]) is Severity.MEDIUM
