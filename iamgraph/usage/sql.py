"""The one aggregation query over CloudTrail, rendered for DuckDB (local ingest) and Athena (Trino).

The query reads a relation shaped like the CloudTrail table AWS documents for Athena
(https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html): lower-case columns, ``useridentity`` a
struct, ``requestparameters`` a JSON string, ``resources`` an array of ``(arn, accountid, type)``. It groups raw
events by who, what, where and outcome; mapping eventSource/eventName to IAM actions happens afterwards, in
Python, on the (small) aggregate, so both engines share it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Dialect(StrEnum):
    DUCKDB = "duckdb"
    TRINO = "trino"


@dataclass(frozen=True, slots=True)
class _Funcs:
    json_str: str
    first_arn: str


_FUNCS = {
    Dialect.DUCKDB: _Funcs(json_str="json_extract_string({doc}, '{path}')", first_arn="resources[1].arn"),
    # element_at returns NULL past the end of the array, where [] would fail the query in Trino.
    Dialect.TRINO: _Funcs(json_str="json_extract_scalar({doc}, '{path}')", first_arn="element_at(resources, 1).arn"),
}

# Error codes that mean authorization refused the call. Any other error came after authorization passed.
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
DENIED_ERROR_CODES: tuple[str, ...] = (
    "AccessDenied",
    "AccessDeniedException",
    "Client.UnauthorizedOperation",
    "UnauthorizedOperation",
    "Client.AccessDenied",
    "UnauthorizedAccess",
    "AuthorizationError",
    "AuthorizationErrorException",
    "NotAuthorized",
    "NotAuthorizedException",
)

# requestParameters fields that name a resource, with the ARN-format placeholder they fill.
RESOURCE_HINTS: tuple[tuple[str, str], ...] = (
    ("functionName", "FunctionName"),
    ("tableName", "TableName"),
    ("topicArn", "TopicArn"),
    ("queueUrl", "QueueUrl"),
    ("secretId", "SecretId"),
    ("keyId", "KeyId"),
    ("policyArn", "PolicyArn"),
    ("stateMachineArn", "StateMachineArn"),
    ("logGroupName", "LogGroupName"),
    ("repositoryName", "RepositoryName"),
    ("userName", "UserName"),
    ("groupName", "GroupName"),
    ("roleName", "RoleName"),
)

OUTPUT_COLUMNS: tuple[str, ...] = (
    "principal",
    "identity_type",
    "issuer_name",
    "invoked_by",
    "account_id",
    "event_source",
    "event_name",
    "resource",
    "hint_key",
    "hint_value",
    "region",
    "outcome",
    "first_seen",
    "last_seen",
    "n",
)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def aggregation_sql(
    source: str,
    *,
    dialect: Dialect,
    partition: str = "aws",
    where: str | None = None,
) -> str:
    """The aggregation over ``source`` (a table name or a parenthesized subquery).

    ``where`` is an extra predicate (the partition filter); everything else is identical across dialects.
    """
    f = _FUNCS[dialect]

    def js(path: str) -> str:
        return f.json_str.format(doc="requestparameters", path=path)

    bucket, key = js("$.bucketName"), js("$.key")
    s3_arn = _q(f"arn:{partition}:s3:::")
    hint_value = "coalesce(" + ", ".join(js(f"$.{field}") for field, _ in RESOURCE_HINTS) + ")"
    hint_key = (
        "CASE "
        + " ".join(f"WHEN {js(f'$.{field}')} IS NOT NULL THEN {_q(name)}" for field, name in RESOURCE_HINTS)
        + " END"
    )
    denied = ", ".join(_q(c) for c in DENIED_ERROR_CODES)
    issuer = "useridentity.sessioncontext.sessionissuer"
    principal = f"""CASE useridentity.type
      WHEN 'AssumedRole' THEN coalesce({issuer}.arn, useridentity.arn)
      WHEN 'FederatedUser' THEN coalesce({issuer}.arn, useridentity.arn)
      WHEN 'AWSService' THEN 'service:' || coalesce(useridentity.invokedby, 'unknown')
      WHEN 'AWSAccount' THEN 'account:' || useridentity.accountid
      ELSE coalesce(useridentity.arn, lower(useridentity.type) || ':' || useridentity.principalid)
    END"""
    resource = f"""CASE
      WHEN eventsource = 's3.amazonaws.com' AND {bucket} IS NOT NULL AND {key} IS NOT NULL
        THEN {s3_arn} || {bucket} || '/' || {key}
      WHEN eventsource = 's3.amazonaws.com' AND {bucket} IS NOT NULL THEN {s3_arn} || {bucket}
      ELSE {f.first_arn}
    END"""
    return f"""SELECT
    {principal} AS principal,
    useridentity.type AS identity_type,
    {issuer}.username AS issuer_name,
    useridentity.invokedby AS invoked_by,
    coalesce(recipientaccountid, useridentity.accountid) AS account_id,
    eventsource AS event_source,
    eventname AS event_name,
    {resource} AS resource,
    {hint_key} AS hint_key,
    {hint_value} AS hint_value,
    awsregion AS region,
    CASE WHEN errorcode IN ({denied}) THEN 'denied' ELSE 'allowed' END AS outcome,
    min(eventtime) AS first_seen,
    max(eventtime) AS last_seen,
    count(*) AS n
FROM {source}
{"WHERE " + where if where else ""}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"""


# The struct read from each CloudTrail record by DuckDB's JSON reader: the Athena table's columns.
DUCKDB_RECORD_TYPE = (
    "STRUCT("
    "eventTime VARCHAR, eventSource VARCHAR, eventName VARCHAR, awsRegion VARCHAR, errorCode VARCHAR, "
    "recipientAccountId VARCHAR, "
    "userIdentity STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR, invokedBy VARCHAR, "
    "userName VARCHAR, sessionContext STRUCT(sessionIssuer STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, "
    "accountId VARCHAR, userName VARCHAR))), "
    "requestParameters JSON, "
    "resources STRUCT(ARN VARCHAR, accountId VARCHAR, type VARCHAR)[]"
    ")"
)


def duckdb_files_relation(files_param: str = "$files") -> str:
    """A subquery over CloudTrail ``.json.gz`` files shaped like the Athena table (column names lower-cased)."""
    return f"""(SELECT
        r.eventTime AS eventtime, r.eventSource AS eventsource, r.eventName AS eventname,
        r.awsRegion AS awsregion, r.errorCode AS errorcode, r.recipientAccountId AS recipientaccountid,
        r.userIdentity AS useridentity, CAST(r.requestParameters AS VARCHAR) AS requestparameters,
        r.resources AS resources
    FROM (SELECT unnest(Records) AS r FROM read_json({files_param}, format = 'auto',
          columns = {{'Records': '{DUCKDB_RECORD_TYPE}[]'}}, compression = 'gzip', maximum_object_size = 1073741824))
    ) AS ct"""
