"""CloudTrail ingest under bad input: bad records are counted per reason and skipped, the rest is ingested, and an
event delivered twice (an organization trail and an account trail, a second run) is counted once.

CloudTrail's record fields (eventID, eventTime as UTC ``YYYY-MM-DDTHH:MM:SSZ``):
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
An organization trail delivers member accounts' events under ``AWSLogs/<org-id>/<account>/``, while an account's
own trail delivers the same events (same eventID) under ``AWSLogs/<account>/``:
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usage_ct_logs import ACCT, event, log_path, role_identity, write_log

from iamgraph.usage.ingest import (
    BAD_EVENT_TIME,
    BAD_FILE_ERRORS,
    BAD_JSON,
    NO_EVENT_TIME,
    NOT_AN_OBJECT,
    TOO_DEEP,
    CloudTrailReader,
    event_time_problem,
    ingest_location,
)
from iamgraph.usage.store import UsageStore

ROLE = f"arn:aws:iam::{ACCT}:role/app"
APP = role_identity("app")


def _events(n: int, *, day: str = "2024-03-05", keys: int = 7) -> list[dict[str, Any]]:
    """n distinct events (each its own eventID), GetObject calls spread over one day's seconds."""
    return [
        event(APP, "s3.amazonaws.com", "GetObject", params={"bucketName": "data", "key": f"k{i % keys}"},
              time=f"{day}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z", event_id=str(uuid.UUID(int=i + 1)))
        for i in range(n)
    ]


def _get_object(store: UsageStore) -> tuple[int, datetime | None, datetime | None]:
    recs = [r for r in store.usage_for(ROLE) if r.action == "s3:GetObject"]
    firsts = [r.first_seen for r in recs if r.first_seen is not None]
    lasts = [r.last_seen for r in recs if r.last_seen is not None]
    return sum(r.count for r in recs), min(firsts, default=None), max(lasts, default=None)


# ---------------------------------------------------------------- bad records


def test_bad_event_times_are_counted_per_reason_and_the_rest_is_ingested(tmp_path: Path) -> None:
    good = _events(5)
    no_time = {k: v for k, v in good[0].items() if k != "eventTime"} | {"eventID": "no-time"}
    bad_times = [
        good[0] | {"eventID": f"bad-{i}", "eventTime": t}
        for i, t in enumerate(["2024-13-45T99:00:00Z", "yesterday", "2024-02-30T00:00:00Z", "", 1709632800])
    ]
    write_log(log_path(tmp_path / "logs", "2024-03-05", "a"), [*good[:3], no_time, *bad_times])
    write_log(log_path(tmp_path / "logs", "2024-03-05", "b"), good[3:])
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, str(tmp_path / "logs"))
        assert stats.files_ingested == 2 and stats.files_bad == 0
        assert dict(stats.bad_records) == {NO_EVENT_TIME: 1, BAD_EVENT_TIME: 5}
        assert stats.events == 5
        count, first, last = _get_object(store)
        assert (count, first, last) == (5, datetime(2024, 3, 5, 0, 0, 0), datetime(2024, 3, 5, 0, 0, 4))
        problems = {(p.kind, p.detail): p.count for p in store.problems() if p.kind == "bad_record"}
        assert problems == {("bad_record", NO_EVENT_TIME): 1, ("bad_record", BAD_EVENT_TIME): 5}


def test_event_times_with_digits_of_another_script_or_out_of_range_are_bad() -> None:
    """The record format's ``YYYY-MM-DDTHH:MM:SSZ`` is ASCII digits and a real clock: DuckDB reads nothing else,
    and a time it cannot read would fail the whole batch's SQL instead of one record."""
    assert event_time_problem("2024-03-05T23:59:59Z") is None
    assert event_time_problem("2024-03-05T23:59:59.123456Z") is None
    assert event_time_problem("2024-02-29T00:00:00Z") is None  # a leap day
    for bad in ["2024-03-05T0\u0663:00:00Z", "2024-03-05T00:00:00.\u0663Z", "\u0662\u0660\u0662\u0664-03-05T00:00:00Z",
                "2024-03-05T24:00:00Z", "2024-03-05T23:60:00Z", "2024-03-05T23:59:60Z", "2023-02-29T00:00:00Z",
                "0000-01-01T00:00:00Z", "2024-03-05T00:00:00Z\n", "2024-03-05 00:00:00Z", "2024-03-05T00:00:00+00:00"]:
        assert event_time_problem(bad) == BAD_EVENT_TIME, bad


def test_a_record_nested_too_deeply_to_keep_as_text_costs_only_itself(tmp_path: Path) -> None:
    """orjson reads 1,024 levels of nesting and writes 254: such a value in a field the reader keeps (here the
    event name, read as Athena's text of any JSON value) used to stop the whole ingest with a TypeError."""
    good = _events(3)
    deep = good[0] | {"eventID": "deep", "eventName": orjson.loads(b"[" * 300 + b"]" * 300)}
    write_log(log_path(tmp_path / "logs", "2024-03-05", "a"), [good[0], deep, *good[1:]])
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, str(tmp_path / "logs"))
        assert stats.files_ingested == 1 and stats.files_bad == 0
        assert dict(stats.bad_records) == {TOO_DEEP: 1}
        assert stats.events == 3 and _get_object(store)[0] == 3


def test_one_broken_record_costs_only_itself_and_a_bad_gzip_only_its_file(tmp_path: Path) -> None:
    good = _events(4)
    pieces = [orjson.dumps(good[0]), b'{"eventTime": "2024-03-05T00:00:09Z", "eventName": tru}',
              orjson.dumps(good[1]), b'{"eventID": "x", "eventTime": "\xff\xfe"}', orjson.dumps(good[2]),
              b'"just a string"', orjson.dumps(good[3])]
    path = log_path(tmp_path / "logs", "2024-03-05", "broken")
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b'{"Records": [' + b", ".join(pieces) + b"]}"))
    gz_bad = log_path(tmp_path / "logs", "2024-03-05", "gzbad")
    gz_bad.write_bytes(gzip.compress(orjson.dumps({"Records": _events(3)}))[:-12])
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, str(tmp_path / "logs"))
        assert stats.files_ingested == 1 and stats.files_bad == 1
        assert [Path(p).name for p, _ in stats.bad_files] == [gz_bad.name]
        assert dict(stats.bad_records) == {BAD_JSON: 2, NOT_AN_OBJECT: 1}
        assert stats.events == 4 and _get_object(store)[0] == 4


def test_cli_ingest_with_a_bad_event_time_exits_0_and_reports_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from iamgraph.cli import app

    good = _events(3)
    write_log(log_path(tmp_path / "logs", "2024-03-05", "a"), [*good, good[0] | {"eventID": "z", "eventTime": "x"}])
    db = tmp_path / "u.duckdb"
    r = CliRunner().invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(tmp_path / "logs"), "--json"])
    assert r.exit_code == 0, r.output
    ct = json.loads(r.stdout)["cloudtrail"]
    assert ct["events"] == 3 and ct["bad_records"] == [[BAD_EVENT_TIME, 1]]
    r = CliRunner().invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(tmp_path / "logs")])
    assert r.exit_code == 0 and "Traceback" not in r.output


# ---------------------------------------------------------------- deduplication by eventID


@pytest.mark.parametrize("batch_bytes", [1, 1 << 30], ids=["a-batch-per-file", "one-batch"])
def test_organization_and_account_trails_count_each_event_once(tmp_path: Path, batch_bytes: int) -> None:
    events = _events(731)
    logs = tmp_path / "logs"
    write_log(log_path(logs, "2024-03-05", "org", org="o-abc123def4"), events)
    # The account trail splits the same events over two files, one of them holding one event twice.
    write_log(log_path(logs, "2024-03-05", "acct1"), [*events[:400], events[17]])
    write_log(log_path(logs, "2024-03-05", "acct2"), events[400:])
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, str(logs), batch_bytes=batch_bytes)
        assert stats.files_ingested == 3
        assert stats.events == 731 and stats.events_duplicate == 732
        assert _get_object(store) == (731, datetime(2024, 3, 5, 0, 0, 0), datetime(2024, 3, 5, 0, 12, 10))


def test_a_later_run_never_counts_an_event_again(tmp_path: Path) -> None:
    events = _events(50)
    logs = tmp_path / "logs"
    write_log(log_path(logs, "2024-03-05", "acct"), events[:30])
    with UsageStore(tmp_path / "u.duckdb") as store:
        first = ingest_location(store, str(logs))
        assert (first.events, first.events_duplicate) == (30, 0)
        # The organization trail's file arrives later: 30 of its 50 events were counted already.
        write_log(log_path(logs, "2024-03-05", "org", org="o-abc123def4"), events)
        second = ingest_location(store, str(logs))
        assert second.files_ingested == 1 and second.files_skipped_done == 1
        assert (second.events, second.events_duplicate) == (20, 30)
        assert _get_object(store) == (50, datetime(2024, 3, 5, 0, 0, 0), datetime(2024, 3, 5, 0, 0, 49))


def test_taking_back_a_stored_event_narrows_its_group_span() -> None:
    reader = CloudTrailReader()
    events = _events(3, keys=1)
    reader.add_file(gzip.compress(orjson.dumps({"Records": events})))
    assert reader.drop([events[0]["eventID"], "never-seen"]) == 1
    ((first, last, n),) = [g for g in reader.groups.values() if g[2]]
    assert (first, last, n) == ("2024-03-05T00:00:01Z", "2024-03-05T00:00:02Z", 2)
    assert reader.drop([events[1]["eventID"], events[2]["eventID"]]) == 2
    assert reader.groups == {}


# ---------------------------------------------------------------- fuzz of the reader


def _counted(reader: CloudTrailReader) -> int:
    return sum(g[2] for g in reader.groups.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_reader_fuzz_random_bytes_never_crash(data: bytes, compress: bool) -> None:
    reader = CloudTrailReader()
    try:
        reader.add_file(gzip.compress(data) if compress else data)
    except BAD_FILE_ERRORS as exc:  # the file is bad: recorded as such by the ingest
        assert str(exc) or type(exc).__name__
    assert _counted(reader) == len(reader.events) + len(reader._no_id)


_junk = st.text(alphabet=st.characters(blacklist_characters='"[]{},\\', blacklist_categories=("Cs",)), max_size=30)
_bad_time = st.one_of(st.text(max_size=25), st.integers(-(2**63), 2**63 - 1), st.none()).filter(lambda t: event_time_problem(t) is not None)


@st.composite
def _bad_record(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["json", "utf8", "time", "object"]))
    if kind == "json":
        return b'{"eventName": ' + draw(_junk).encode() + b" x}", BAD_JSON
    if kind == "utf8":
        return b'{"eventTime": "' + draw(st.binary(min_size=1, max_size=5)).replace(b'"', b"").replace(
            b"\\", b"") + b'\xff"}', BAD_JSON
    if kind == "time":
        t = draw(_bad_time)
        rec = {"eventID": str(uuid.uuid4()), "eventName": "GetObject"} | ({} if t is None else {"eventTime": t})
        return orjson.dumps(rec), NO_EVENT_TIME if t is None else BAD_EVENT_TIME
    return orjson.dumps(draw(st.one_of(st.integers(0, 2**53), st.text(max_size=10), st.lists(st.integers(0, 9), max_size=3)))), (
        NOT_AN_OBJECT
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.integers(0, 10**6).map(lambda i: ("good", i)), _bad_record()), max_size=30),
       st.booleans())
def test_reader_fuzz_mutated_records_keep_every_good_record(items: list[Any], pretty: bool) -> None:
    pieces: list[bytes] = []
    good_ids: set[str] = set()
    bad: dict[str, int] = {}
    for item in items:
        if item[0] == "good":
            rec = _events(1)[0] | {"eventID": f"good-{item[1]}"}
            good_ids.add(rec["eventID"])
            pieces.append(orjson.dumps(rec, option=orjson.OPT_INDENT_2 if pretty else 0))
        else:
            raw, reason = item
            pieces.append(raw)
            bad[reason] = bad.get(reason, 0) + 1
    reader = CloudTrailReader()
    reader.add_file(gzip.compress(b'{"Records": [' + b",\n".join(pieces) + b"]}"))
    assert set(reader.events) >= good_ids
    assert _counted(reader) == len(good_ids)
    assert reader.duplicates == sum(1 for i in items if i[0] == "good") - len(good_ids)
    assert reader.bad == bad


# ---------------------------------------------------------------- file modes


def test_a_new_usage_database_and_its_log_are_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)  # the common default, under which DuckDB would create 0644 files
    try:
        write_log(log_path(tmp_path / "logs", "2024-03-05", "a"), _events(3))
        db = tmp_path / "u.duckdb"
        with UsageStore(db) as store:
            ingest_location(store, str(tmp_path / "logs"))
            wal = tmp_path / "u.duckdb.wal"
            assert stat.S_IMODE(db.stat().st_mode) == 0o600
            if wal.exists():
                assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        leftovers = [p.name for p in tmp_path.iterdir() if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077]
        assert leftovers == []
    finally:
        os.umask(old)


def test_cli_writes_owner_only_files_whatever_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    from typer.testing import CliRunner

    from iamgraph.cli import app

    old = os.umask(0o022)
    try:
        write_log(log_path(tmp_path / "logs", "2024-03-05", "a"), _events(3))
        db = tmp_path / "cli.duckdb"
        r = CliRunner().invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(tmp_path / "logs")])
        assert r.exit_code == 0, r.output
        batch = tmp_path / "in.jsonl"
        batch.write_text('{"id": 1, "request": {"principal": "anonymous", "action": "s3:GetObject", "resource": "*"}}\n')
        r = CliRunner().invoke(app, ["simulate", "--batch", str(batch), "--out", str(tmp_path / "out.jsonl")])
        assert r.exit_code == 0, r.output
        for path in (db, tmp_path / "out.jsonl"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(old)
