"""Local CloudTrail ingest into the DuckDB store: attribution, resources, bad input, re-ingest."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest
from usage_ct_logs import ACCT, event, log_path, role_identity, user_identity, write_log

from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import Outcome

ROLE = f"arn:aws:iam::{ACCT}:role/app"


def _logs(root: Path) -> None:
    app = role_identity("app")
    write_log(
        log_path(root, "2024-03-05", "a"),
        [
            event(app, "s3.amazonaws.com", "GetObject", params={"bucketName": "data", "key": "x/1.csv"},
                  resources=[{"ARN": "arn:aws:s3:::data/x/1.csv", "type": "AWS::S3::Object"}]),
            event(app, "s3.amazonaws.com", "GetObject", time="2024-03-05T12:00:00Z",
                  params={"bucketName": "data", "key": "x/1.csv"}),
            event(app, "lambda.amazonaws.com", "GetFunction20150331v2", params={"functionName": "fn"}),
            event(app, "iam.amazonaws.com", "ListRoles", error="AccessDenied"),
            event(role_identity("app", invoked_by="cloudformation.amazonaws.com"), "sqs.amazonaws.com", "CreateQueue"),
        ],
    )
    write_log(
        log_path(root, "2024-03-06", "b", org="o-abc123def4"),
        [
            event(role_identity("AWSReservedSSO_DataReaders_0123456789abcdef", path="/aws-reserved/sso.amazonaws.com/"),
                  "dynamodb.amazonaws.com", "DescribeTable", params={"tableName": "orders"}),
            event(user_identity("alice"), "sts.amazonaws.com", "GetCallerIdentity"),
            event({"type": "Root", "principalId": ACCT, "arn": f"arn:aws:iam::{ACCT}:root", "accountId": ACCT},
                  "iam.amazonaws.com", "ListUsers"),
            event({"type": "FederatedUser", "principalId": f"{ACCT}:bob",
                   "arn": f"arn:aws:sts::{ACCT}:federated-user/bob", "accountId": ACCT,
                   "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/bob",
                                                        "userName": "bob", "accountId": ACCT}}},
                  "ec2.amazonaws.com", "DescribeInstances"),
            event({"type": "SAMLUser", "principalId": "abc=:jane", "userName": "jane", "identityProvider": "abc="},
                  "sts.amazonaws.com", "AssumeRoleWithSAML"),
            event({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "sts.amazonaws.com", "AssumeRole"),
            event(app, "nosuch.amazonaws.com", "DoThing"),
            {"eventTime": "2024-03-06T00:00:00Z", "eventName": "Broken"},
        ],
    )


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    _logs(root)
    return root


def test_ingest_attribution_and_resources(logs: Path, tmp_path: Path) -> None:
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, str(logs))
        assert stats.files_ingested == 2 and stats.files_bad == 0
        assert stats.events == 13
        assert stats.events_unattributed == 1  # the record without identity or source
        assert stats.events_unmapped == 1  # nosuch.amazonaws.com
        recs = store.usage_for(ROLE)
        by = {(r.action, r.outcome, r.invoked_by): r for r in recs}
        get = by[("s3:GetObject", Outcome.ALLOWED, None)]
        # Both events name the same object: once from resources[], once from requestParameters.
        assert get.count == 2 and get.resource == "arn:aws:s3:::data/x/1.csv"
        assert get.first_seen is not None and get.last_seen is not None and get.first_seen < get.last_seen
        fn = by[("lambda:GetFunction", Outcome.ALLOWED, None)]
        assert fn.resource == f"arn:aws:lambda:us-east-1:{ACCT}:function:fn"
        assert by[("iam:ListRoles", Outcome.DENIED, None)].count == 1
        assert by[("sqs:CreateQueue", Outcome.ALLOWED, "cloudformation.amazonaws.com")].count == 1
        assert store.resources_for(ROLE, "s3:GetObject") == ["arn:aws:s3:::data/x/1.csv"]

        sso = store.usage_for(f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/"
                              "AWSReservedSSO_DataReaders_0123456789abcdef")
        assert [(r.action, r.permission_set, r.resource) for r in sso] == [
            ("dynamodb:DescribeTable", "DataReaders", f"arn:aws:dynamodb:us-east-1:{ACCT}:table/orders")
        ]
        assert [r.action for r in store.usage_for(f"arn:aws:iam::{ACCT}:user/alice")] == ["sts:GetCallerIdentity"]
        assert [r.action for r in store.usage_for(f"arn:aws:iam::{ACCT}:root")] == ["iam:ListUsers"]
        fed = store.usage_for(f"arn:aws:iam::{ACCT}:user/bob")
        assert [(r.action, r.identity_type) for r in fed] == [("ec2:DescribeInstances", "FederatedUser")]
        assert [r.action for r in store.usage_for("samluser:abc=:jane")] == ["sts:AssumeRoleWithSAML"]
        assert [r.action for r in store.usage_for("service:ec2.amazonaws.com")] == ["sts:AssumeRole"]
        kinds = {(p.kind, p.detail): p.count for p in store.problems()}
        assert kinds[("unmapped", "nosuch.amazonaws.com DoThing")] == 1
        assert sum(n for (k, _), n in kinds.items() if k == "unattributed") == 1


def test_reingest_does_not_double_count(logs: Path, tmp_path: Path) -> None:
    db = tmp_path / "u.duckdb"
    with UsageStore(db) as store:
        ingest_location(store, str(logs))
    with UsageStore(db) as store:
        again = ingest_location(store, str(logs))
        assert again.files_skipped_done == 2 and again.files_ingested == 0 and again.events == 0
        assert [r.count for r in store.usage_for(ROLE) if r.action == "s3:GetObject"] == [2]
        # A new file is picked up incrementally; a copy of a done file under another name is not.
        write_log(log_path(logs, "2024-03-07", "c"), [event(role_identity("app"), "s3.amazonaws.com", "GetObject",
                                                              params={"bucketName": "data", "key": "x/1.csv"})])
        copy = log_path(logs, "2024-03-08", "copy")
        copy.parent.mkdir(parents=True)
        copy.write_bytes(log_path(logs, "2024-03-05", "a").read_bytes())
        third = ingest_location(store, str(logs))
        assert third.files_ingested == 1 and third.files_skipped_done == 3
        assert [r.count for r in store.usage_for(ROLE) if r.action == "s3:GetObject"] == [3]


def test_bad_files_are_counted_and_the_rest_ingested(logs: Path, tmp_path: Path) -> None:
    good = log_path(logs, "2024-03-05", "a").read_bytes()
    trunc = log_path(logs, "2024-03-09", "truncated")
    trunc.parent.mkdir(parents=True)
    trunc.write_bytes(good[: len(good) // 2])
    corrupt = log_path(logs, "2024-03-09", "corrupt")
    corrupt.write_bytes(b"this is not gzip at all")
    notjson = log_path(logs, "2024-03-09", "notjson")
    notjson.write_bytes(gzip.compress(b"{\"Records\": [ {\"eventName\": "))
    with UsageStore(tmp_path / "u.duckdb", ) as store:
        stats = ingest_location(store, str(logs), batch_bytes=1 << 30)
        # The gzip stream that ends early and the bytes that are no gzip are bad files; the JSON that ends inside
        # its first record is a readable file with one bad record (tests/usage/test_usage_faults.py).
        assert stats.files_bad == 2 and stats.files_ingested == 3
        assert {Path(p).name for p, _ in stats.bad_files} == {trunc.name, corrupt.name}
        # The reason says what is wrong with the file in words, not zlib's error number.
        assert dict((Path(p).name, why) for p, why in stats.bad_files)[corrupt.name] == (
            "not gzip (a CloudTrail log file is gzip-compressed JSON; this file does not start with gzip's bytes 1f 8b)")
        assert stats.bad_records == (("invalid JSON", 1),)
        assert stats.events == 13
        assert sum(1 for f in store.files() if f.status == "bad") == 2
        assert sum(p.count for p in store.problems() if p.kind == "bad_file") == 2


def test_window_from_the_path(logs: Path, tmp_path: Path) -> None:
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, str(logs), since=date(2024, 3, 6), until=date(2024, 3, 6))
        assert stats.files_ingested == 1 and stats.files_outside_window == 1
        assert store.usage_for(ROLE) == []  # the app role's calls are all on 2024-03-05
        later = ingest_location(store, str(logs))
        assert later.files_ingested == 1 and later.files_skipped_done == 1


def test_store_refuses_newer_schema(tmp_path: Path) -> None:
    from iamgraph.usage.store import UsageStoreError

    db = tmp_path / "u.duckdb"
    with UsageStore(db) as store:
        store.set_meta("schema_version", "99")
    with pytest.raises(UsageStoreError, match="newer"):
        UsageStore(db)


def test_incremental_ingest_equals_one_ingest(logs: Path, tmp_path: Path) -> None:
    """Counts add up and first/last seen widen: two ingests of halves give the store one ingest gives."""

    def dump(store: UsageStore) -> list[tuple[object, ...]]:
        return [(r.principal_arn, r.action, r.resource, r.outcome, r.invoked_by, r.first_seen, r.last_seen, r.count)
                for r in store.records()]

    write_log(log_path(logs, "2024-03-07", "c"), [
        event(role_identity("app"), "s3.amazonaws.com", "GetObject", time="2024-03-07T09:00:00Z",
              params={"bucketName": "data", "key": "x/1.csv"}),
        event(role_identity("app"), "iam.amazonaws.com", "ListRoles", time="2024-03-01T00:00:00Z",
              error="AccessDenied"),
    ])
    with UsageStore(tmp_path / "one.duckdb") as one:
        ingest_location(one, str(logs))
        whole = dump(one)
    with UsageStore(tmp_path / "two.duckdb") as two:
        ingest_location(two, str(logs), until=date(2024, 3, 5))
        ingest_location(two, str(logs), since=date(2024, 3, 6))
        assert dump(two) == whole
    get = [r for r in whole if r[1] == "s3:GetObject"]
    assert get == [(ROLE, "s3:GetObject", "arn:aws:s3:::data/x/1.csv", Outcome.ALLOWED, None,
                    get[0][5], get[0][6], 3)]
    assert str(get[0][5]) == "2024-03-05 10:00:00" and str(get[0][6]) == "2024-03-07 09:00:00"
    denied = [r for r in whole if r[1] == "iam:ListRoles"]
    assert [(str(r[5]), str(r[6]), r[7]) for r in denied] == [("2024-03-01 00:00:00", "2024-03-05 10:00:00", 2)]


@pytest.mark.parametrize("was_on", [True, False], ids=["collector-on", "collector-off"])
def test_the_cyclic_collector_is_off_during_an_ingest_and_as_it_was_after(logs: Path, tmp_path: Path,
                                                                          was_on: bool) -> None:
    """The ingest switches Python's cyclic garbage collector off while it runs (docs/usage.md) and leaves it as
    it found it, also when an ingest fails."""
    import gc

    from iamgraph.usage import ingest

    seen: list[bool] = []
    original = ingest.Ingestor._flush

    def flush(self: ingest.Ingestor, *args: object) -> None:
        seen.append(gc.isenabled())
        original(self, *args)  # type: ignore[arg-type]

    before = gc.isenabled()
    (gc.enable if was_on else gc.disable)()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ingest.Ingestor, "_flush", flush)
            with UsageStore(tmp_path / "u.duckdb") as store:
                stats = ingest_location(store, str(logs), workers=1)
            assert stats.events > 0 and seen == [False]
            assert gc.isenabled() is was_on

            def broken(self: ingest.Ingestor, *args: object) -> None:
                raise RuntimeError("disk full")

            mp.setattr(ingest.Ingestor, "_flush", broken)
            with UsageStore(tmp_path / "v.duckdb") as store, pytest.raises(RuntimeError):
                ingest_location(store, str(logs), workers=1)
            assert gc.isenabled() is was_on
    finally:
        (gc.enable if before else gc.disable)()
