"""The Python reader that stages CloudTrail records for the aggregation SQL: its fast path (msgspec, strings
only) and its general path (any JSON) give the same aggregate, odd text survives the staging file, and the
reductions it makes stay ones the SQL cannot see."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from usage_ct_logs import ACCT, event, role_identity, user_identity

from iamgraph.usage.ingest import BAD_JSON, READ_IDENTITY_FIELDS, CloudTrailReader, Ingestor
from iamgraph.usage.sql import Dialect, aggregation_sql, duckdb_files_relation
from iamgraph.usage.store import UsageStore

ODD_BUCKET = 'we,ird"bucket\nname'


def _records() -> list[dict[str, Any]]:
    app = role_identity("app")
    return [
        event(app, "s3.amazonaws.com", "GetObject", params={"bucketName": ODD_BUCKET, "key": "0"}),
        event(app, "s3.amazonaws.com", "GetObject", params={"bucketName": ODD_BUCKET, "key": "0"},
              time="2024-03-05T11:00:00Z"),
        event(app, "s3.amazonaws.com", "GetObject", params={"bucketName": ODD_BUCKET, "key": ""},
              time="2024-03-05T09:00:00Z"),
        # Two sessions of one user: principalId differs, the aggregation cannot tell them apart.
        event({**user_identity("alice"), "principalId": "AIDAONE"}, "sts.amazonaws.com", "GetCallerIdentity"),
        event({**user_identity("alice"), "principalId": "AIDATWO"}, "sts.amazonaws.com", "GetCallerIdentity",
              time="2024-03-05T08:00:00Z"),
        # No ARN: the principalId names the caller, so it must be kept.
        event({"type": "SAMLUser", "principalId": "p=:jane"}, "sts.amazonaws.com", "GetCallerIdentity"),
        event({"type": "SAMLUser", "principalId": "p=:joe"}, "sts.amazonaws.com", "GetCallerIdentity"),
        event(app, "lambda.amazonaws.com", "GetFunction20150331v2", params={"functionName": "fn", "other": [1]},
              resources=[{"ARN": f"arn:aws:lambda:us-east-1:{ACCT}:function:fn"}, {"ARN": "ignored"}]),
        event(app, "iam.amazonaws.com", "ListRoles", error="AccessDenied"),
        event(app, "iam.amazonaws.com", "ListRoles", error=""),
    ]


def _gz(records: list[Any]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def _aggregate(tmp_path: Path, *files: bytes) -> list[tuple[Any, ...]]:
    with UsageStore(tmp_path / f"u{len(list(tmp_path.iterdir()))}.duckdb") as store:
        ingestor = Ingestor(store)
        reader = CloudTrailReader()
        for data in files:
            reader.add_file(data)
        return sorted(ingestor.aggregate_reader(reader), key=repr)


def _reference(tmp_path: Path, *files: bytes) -> list[tuple[Any, ...]]:
    """The same SQL over DuckDB's own JSON reading of the files (the relation the reader replaced)."""
    paths = []
    for i, data in enumerate(files):
        p = tmp_path / f"ref{i}.json.gz"
        p.write_bytes(data)
        paths.append(str(p))
    with UsageStore(tmp_path / "ref.duckdb") as store:
        sql = aggregation_sql(duckdb_files_relation(), dialect=Dialect.DUCKDB)
        return sorted(store.con.execute(sql, {"files": paths}).fetchall(), key=repr)


def test_fast_path_equals_duckdb_json_reading(tmp_path: Path) -> None:
    data = _gz(_records())
    got = _aggregate(tmp_path, data)
    assert got == _reference(tmp_path, data)
    s3 = [r for r in got if r[6] == "GetObject"]
    assert {(r[7], r[14]) for r in s3} == {(f"arn:aws:s3:::{ODD_BUCKET}/0", 2), (f"arn:aws:s3:::{ODD_BUCKET}/", 1)}
    assert {r[0] for r in got if r[1] == "SAMLUser"} == {"samluser:p=:jane", "samluser:p=:joe"}
    alice = [r for r in got if r[1] == "IAMUser"]
    assert len(alice) == 1 and alice[0][12:15] == ("2024-03-05T08:00:00Z", "2024-03-05T10:00:00Z", 2)
    assert {r[11] for r in got if r[6] == "ListRoles"} == {"denied", "allowed"}


def test_general_path_equals_fast_path(tmp_path: Path) -> None:
    """A file with one record msgspec's string-only schema refuses is read by the general path in full."""
    odd: list[Any] = [
        "not an object",
        {**event(role_identity("app"), "sqs.amazonaws.com", "CreateQueue"), "requestParameters": "text"},
        {**event(role_identity("app"), "kms.amazonaws.com", "Decrypt"), "errorCode": 5},
    ]
    plain = _gz(_records())
    mixed = _gz(_records() + odd)
    fast = _aggregate(tmp_path, plain)
    general = _aggregate(tmp_path, mixed)
    # A record that is not an object is skipped and counted as a bad record (DuckDB's reading makes it a row
    # of NULLs): test_usage_faults.py.
    nulls = [r for r in _reference(tmp_path, mixed) if r[5] is None]
    assert len(nulls) == 1 and general == [r for r in _reference(tmp_path, mixed) if r[5] is not None]
    extra = [r for r in general if r not in fast]
    assert len(general) == len(fast) + 2 and len(extra) == 2
    assert {r[5] for r in extra} == {"sqs.amazonaws.com", "kms.amazonaws.com"}
    assert [r[11] for r in extra if r[5] == "kms.amazonaws.com"] == ["allowed"]


def test_bad_gzip_and_json_raise(tmp_path: Path) -> None:
    reader = CloudTrailReader()
    with pytest.raises((OSError, EOFError)):
        reader.add_file(_gz(_records())[:-20])
    with pytest.raises(ValueError):
        reader.add_file(gzip.compress(b'{"Recor'))
    # JSON that ends inside a record: the file is read, that record is one bad record.
    assert reader.add_file(gzip.compress(b'{"Records": [ {"eventName": ')) == 1
    assert reader.bad == {BAD_JSON: 1}
    assert reader.groups == {}


def test_principal_id_is_read_only_when_there_is_no_arn() -> None:
    """The reader drops userIdentity.principalId when userIdentity.arn is set; that is sound only while the SQL
    reads principalId nowhere but as the fallback of a missing ARN."""
    sql = aggregation_sql("t", dialect=Dialect.TRINO)
    uses = re.findall(r"[^\n]*principalid[^\n]*", sql)
    assert uses == ["      ELSE coalesce(useridentity.arn, lower(useridentity.type) || ':' || useridentity.principalid)"]
    # The reader stages only the resources' ARNs: the SQL may read nothing else of them.
    select = sql.split("FROM (")[0]
    for arn_only in ("element_at(resources, 1).arn", "transform(resources, r -> r.arn)", "cardinality(resources)"):
        select = select.replace(arn_only, "")
    assert "resources" not in select


def test_the_sql_reads_exactly_the_identity_fields_the_reader_keeps() -> None:
    """The reader decodes only ``READ_IDENTITY_FIELDS`` of userIdentity and of its session issuer and stages the
    others as NULL; that is sound only while the SQL reads no other field of either."""
    sql = aggregation_sql("t", dialect=Dialect.TRINO)
    issuer = set(re.findall(r"sessionissuer\.(\w+)", sql))
    identity = set(re.findall(r"useridentity\.(\w+)", sql)) - {"sessioncontext"}
    kept_identity, kept_issuer = READ_IDENTITY_FIELDS
    assert identity == {f.lower() for f in kept_identity} == {"type", "arn", "accountid", "invokedby", "principalid"}
    assert issuer == {f.lower() for f in kept_issuer} == {"arn", "username"}


def test_principal_of_agrees_with_the_sql(tmp_path: Path) -> None:
    from iamgraph.usage.attribution import principal_of

    identities: list[Any] = [
        role_identity("app"),
        role_identity("AWSReservedSSO_Admin_0123456789abcdef", path="/aws-reserved/sso.amazonaws.com/"),
        {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/x/s", "principalId": "AROA:s"},
        user_identity("alice"),
        {"type": "Root", "principalId": ACCT, "arn": f"arn:aws:iam::{ACCT}:root", "accountId": ACCT},
        {"type": "FederatedUser", "principalId": f"{ACCT}:bob", "arn": f"arn:aws:sts::{ACCT}:federated-user/bob",
         "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/bob"}}},
        {"type": "SAMLUser", "principalId": "abc=:jane", "userName": "jane"},
        {"type": "WebIdentityUser", "principalId": "accounts.google.com:app:sub"},
        {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
        {"type": "AWSService"},
        {"type": "AWSAccount", "accountId": "444455556666", "principalId": "AIDAX"},
        {"type": "AWSAccount"},
        {"type": "IdentityCenterUser", "principalId": "u-1", "onBehalfOf": {"userId": "u-1"}},
        {"type": "Unknown"},
        {"principalId": "no-type"},
        {},
    ]
    records = [event(ui, "sts.amazonaws.com", f"Call{i}") for i, ui in enumerate(identities)]
    got = {r[6]: r[0] for r in _aggregate(tmp_path, _gz(records))}
    assert len(got) == len(identities)
    for i, ui in enumerate(identities):
        assert principal_of(ui) == got[f"Call{i}"], ui


def test_gunzip_reads_every_member_whatever_the_trailer_says() -> None:
    """``_gunzip`` limits ISA-L's output to the size the gzip trailer gives (RFC 1952 ISIZE): a file whose trailer
    says less than the data holds (a second member's trailer, a forged one) must still be read whole, as
    ``gzip.decompress`` reads it, and a truncated file or trailing garbage must still fail as it does."""
    from iamgraph.usage.ingest import _gunzip

    one = json.dumps({"Records": _records()[:2]}).encode()
    two = b" " * 5000
    single = gzip.compress(one)
    assert _gunzip(single) == one
    assert _gunzip(single + gzip.compress(two)) == one + two  # the second member's trailer says 5000
    forged = single[:-4] + (len(one) // 2).to_bytes(4, "little")  # ISIZE too small: gzip.decompress reads it
    with pytest.raises(gzip.BadGzipFile):  # ... and says the length is wrong, as for any corrupt trailer
        _gunzip(forged)
    with pytest.raises(EOFError):
        _gunzip(single[:-10])
    with pytest.raises(gzip.BadGzipFile):
        _gunzip(single + b"garbage!")


def test_a_file_that_is_not_gzip_is_named_so() -> None:
    """Bytes that do not start with gzip's magic 1f 8b (RFC 1952, section 2.3.1) -- plain JSON, an empty file -- are
    refused with a reason in words (recorded as the bad file's error), and nothing is read from them."""
    from iamgraph.usage.ingest import BAD_FILE_ERRORS, _gunzip

    plain = json.dumps({"Records": _records()[:1]}).encode()
    with pytest.raises(BAD_FILE_ERRORS, match=r"^not gzip \(a CloudTrail log file is gzip-compressed JSON"):
        _gunzip(plain)
    with pytest.raises(BAD_FILE_ERRORS, match=r"^an empty file, not gzip$"):
        _gunzip(b"")
    reader = CloudTrailReader()
    with pytest.raises(BAD_FILE_ERRORS, match="not gzip"):
        reader.add_file(plain)
    assert not reader.groups and reader.event_ids() == []
