"""The Athena path: the very SQL text sent to Athena, run on DuckDB over an Athena-shaped table, equals the
local ingest; the boto3 Athena calls are checked with botocore's Stubber (moto server has no Athena query
engine that could run it)."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import boto3
import duckdb
import pytest
from botocore.stub import Stubber
from usage_ct_logs import ACCT, event, log_path, role_identity, user_identity, write_log

from iamgraph.usage.athena import AthenaError, AthenaRunner, PartitionStyle, athena_sql, partition_predicate
from iamgraph.usage.ingest import LOG_PATH, Ingestor, ingest_location
from iamgraph.usage.sql import OUTPUT_COLUMNS
from iamgraph.usage.store import UsageStore

# The CloudTrail table of the Athena documentation, with partition projection on "timestamp".
ATHENA_TABLE_DDL = """
CREATE TABLE cloudtrail_logs (
    eventversion VARCHAR,
    useridentity STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, invokedby VARCHAR,
        accesskeyid VARCHAR, username VARCHAR,
        sessioncontext STRUCT(attributes STRUCT(mfaauthenticated VARCHAR, creationdate VARCHAR),
            sessionissuer STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, username VARCHAR))),
    eventtime VARCHAR, eventsource VARCHAR, eventname VARCHAR, awsregion VARCHAR, sourceipaddress VARCHAR,
    useragent VARCHAR, errorcode VARCHAR, errormessage VARCHAR, requestparameters VARCHAR,
    responseelements VARCHAR, additionaleventdata VARCHAR, requestid VARCHAR, eventid VARCHAR,
    resources STRUCT(arn VARCHAR, accountid VARCHAR, type VARCHAR)[],
    eventtype VARCHAR, apiversion VARCHAR, readonly VARCHAR, recipientaccountid VARCHAR,
    "timestamp" VARCHAR
)"""


def _athena_table(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Load the logs the way Athena's CloudTrail SerDe presents them: one row per record."""
    con.execute(ATHENA_TABLE_DDL)
    # Trino's functions, defined on DuckDB so that the identical query text runs here.
    # Trino writes a key with a hyphen as $["x-amz-copy-source"], DuckDB as $."x-amz-copy-source".
    con.execute("""CREATE MACRO json_extract_scalar(j, p) AS
        json_extract_string(j, replace(replace(p, '["', '."'), '"]', '"'))""")
    con.execute("CREATE MACRO element_at(l, i) AS l[i]")
    con.execute("CREATE MACRO cardinality(l) AS len(l)")
    con.execute("CREATE MACRO transform(l, f) AS list_transform(l, f)")
    con.execute("CREATE MACRO json_format(j) AS CAST(j AS VARCHAR)")
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")  # Trino's lambdas are r -> r.arn
    for path in sorted(root.rglob("*.json.gz")):
        m = LOG_PATH.search(str(path))
        assert m
        ts = f"{m['y']}/{m['m']}/{m['d']}"
        for rec in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            ui = rec.get("userIdentity") or {}
            sc = ui.get("sessionContext") or {}
            si = sc.get("sessionIssuer")
            con.execute(
                "INSERT INTO cloudtrail_logs (useridentity, eventtime, eventsource, eventname, awsregion, errorcode, "
                "requestparameters, resources, recipientaccountid, \"timestamp\") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    {
                        "type": ui.get("type"), "principalid": ui.get("principalId"), "arn": ui.get("arn"),
                        "accountid": ui.get("accountId"), "invokedby": ui.get("invokedBy"), "accesskeyid": None,
                        "username": ui.get("userName"),
                        "sessioncontext": {
                            "attributes": None,
                            "sessionissuer": None if si is None else {
                                "type": si.get("type"), "principalid": si.get("principalId"), "arn": si.get("arn"),
                                "accountid": si.get("accountId"), "username": si.get("userName"),
                            },
                        },
                    },
                    rec.get("eventTime"), rec.get("eventSource"), rec.get("eventName"), rec.get("awsRegion"),
                    rec.get("errorCode"),
                    None if rec.get("requestParameters") is None else json.dumps(rec["requestParameters"]),
                    None if rec.get("resources") is None else [
                        {"arn": r.get("ARN"), "accountid": r.get("accountId"), "type": r.get("type")}
                        for r in rec["resources"]
                    ],
                    rec.get("recipientAccountId"), ts,
                ],
            )


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    app = role_identity("app")
    for day, key in (("2024-03-04", "a"), ("2024-03-05", "b"), ("2024-03-06", "c")):
        write_log(
            log_path(root, day, key),
            [
                event(app, "s3.amazonaws.com", "GetObject", time=f"{day}T01:00:00Z",
                      params={"bucketName": "data", "key": f"{key}.csv"}),
                event(app, "s3.amazonaws.com", "ListBuckets", time=f"{day}T02:00:00Z"),
                event(app, "kms.amazonaws.com", "Decrypt", time=f"{day}T03:00:00Z",
                      resources=[{"ARN": f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                  "accountId": ACCT, "type": "AWS::KMS::Key"}]),
                event(user_identity("alice"), "iam.amazonaws.com", "DeleteRole", time=f"{day}T04:00:00Z",
                      error="AccessDenied", params={"roleName": "x"}),
                event(app, "dynamodb.amazonaws.com", "TransactWriteItems", time=f"{day}T05:00:00Z"),
                event(app, "made-up.amazonaws.com", "Nothing", time=f"{day}T06:00:00Z"),
            ],
        )
    return root


def _dump(store: UsageStore) -> list[tuple[object, ...]]:
    return [
        (r.principal_arn, r.identity_type, r.action, r.resource, r.outcome, r.invoked_by, r.first_seen, r.last_seen,
         r.count, r.certain)
        for r in store.records()
    ]


@pytest.mark.parametrize("window", [(None, None), (date(2024, 3, 5), date(2024, 3, 6))])
def test_athena_sql_on_duckdb_equals_local_ingest(
    logs: Path, tmp_path: Path, window: tuple[date | None, date | None]
) -> None:
    since, until = window
    with UsageStore(tmp_path / "local.duckdb") as local:
        ingest_location(local, str(logs), since=since, until=until)
        expected = _dump(local)
        expected_problems = local.problems()
    con = duckdb.connect()
    _athena_table(con, logs)
    sql = athena_sql(database="main", table="cloudtrail_logs", since=since, until=until)
    rows = con.execute(sql).fetchall()
    assert rows, "the query returned nothing"
    with UsageStore(tmp_path / "athena.duckdb") as other:
        Ingestor(other).ingest_aggregate(rows)
        assert _dump(other) == expected
        assert other.problems() == expected_problems
    assert len(expected) >= 5


def test_partition_predicates() -> None:
    assert partition_predicate(None, None, PartitionStyle.PROJECTION) is None
    assert partition_predicate(date(2024, 1, 2), None, PartitionStyle.PROJECTION) == "\"timestamp\" >= '2024/01/02'"
    assert partition_predicate(date(2024, 1, 2), date(2024, 2, 3), PartitionStyle.YMD) == (
        "concat(year, '/', month, '/', day) >= '2024/01/02' AND concat(year, '/', month, '/', day) <= '2024/02/03'"
    )
    with pytest.raises(Exception, match="identifier"):
        athena_sql(database="x; DROP", table="t", since=None, until=None)


def _athena_client() -> object:
    return boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
    )


def _cells(values: list[str | None]) -> dict[str, object]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def test_athena_runner_with_stubber() -> None:
    client = _athena_client()
    sql = athena_sql(database="ct", table="cloudtrail_logs", since=date(2024, 3, 1), until=date(2024, 3, 31))
    row1 = ["arn:aws:iam::111122223333:role/app", "AssumedRole", "app", None, ACCT, "s3.amazonaws.com",
            "ListBuckets", None, None, None, "us-east-1", "allowed", "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", "7",
            None, None, None, None]
    with Stubber(client) as stub:
        stub.add_response(
            "start_query_execution", {"QueryExecutionId": "q-1"},
            {"QueryString": sql, "QueryExecutionContext": {"Database": "ct"}, "WorkGroup": "wg",
             "ResultConfiguration": {"OutputLocation": "s3://results/"}},
        )
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}},
                          {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
                          {"QueryExecutionId": "q-1"})
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": [_cells(list(OUTPUT_COLUMNS))]}, "NextToken": "t2"},
            {"QueryExecutionId": "q-1"},
        )
        stub.add_response(
            "get_query_results", {"ResultSet": {"Rows": [_cells(row1)]}},
            {"QueryExecutionId": "q-1", "NextToken": "t2"},
        )
        sleeps: list[float] = []
        rows = AthenaRunner(client, workgroup="wg", output="s3://results/", sleep=sleeps.append).run(sql, database="ct")
        stub.assert_no_pending_responses()
    assert sleeps == [1.0]
    assert rows == [(*row1[:14], 7, *row1[15:])]
    assert "\"timestamp\" >= '2024/03/01'" in sql and "\"timestamp\" <= '2024/03/31'" in sql


def test_athena_failure_is_reported() -> None:
    client = _athena_client()
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND"}}},
        )
        with pytest.raises(AthenaError, match="TABLE_NOT_FOUND"):
            AthenaRunner(client, workgroup=None, output=None, sleep=lambda s: None).run("SELECT 1", database="d")
