"""The one aggregation query over CloudTrail, rendered for DuckDB (local ingest) and Athena (Trino).

The query reads a relation shaped like the CloudTrail table AWS documents for Athena
(https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html): lower-case columns, ``useridentity`` a
struct, ``requestparameters`` a JSON string, ``resources`` an array of ``(arn, accountid, type)``. It groups raw
events by who, what, where and outcome; mapping eventSource/eventName to IAM actions happens afterwards, in
Python, on the (small) aggregate, so both engines share it exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum


class Dialect(StrEnum):
    DUCKDB = "duckdb"
    TRINO = "trino"


def _json_path(dialect: Dialect, field: str) -> str:
    """The JSON path of a top-level field; names such as ``x-amz-copy-source`` need the quoted form."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field):
        return f"$.{field}"
    return f'$."{field}"' if dialect is Dialect.DUCKDB else f'$["{field}"]'


def _extract_many(dialect: Dialect, doc: str, fields: Sequence[str]) -> str:
    """All ``fields`` of the JSON string ``doc`` as one array (1-based), parsing ``doc`` once where the engine can."""
    paths = [_json_path(dialect, f) for f in fields]
    quoted = ", ".join(_q(p) for p in paths)
    if dialect is Dialect.DUCKDB:
        return f"json_extract_string({doc}, [{quoted}])"
    return "ARRAY[" + ", ".join(f"json_extract_scalar({doc}, {_q(p)})" for p in paths) + "]"


def _first_arn(dialect: Dialect) -> str:
    # element_at returns NULL past the end of the array, where [] would fail the query in Trino.
    return "resources[1].arn" if dialect is Dialect.DUCKDB else "element_at(resources, 1).arn"


def _all_arns(dialect: Dialect) -> str:
    """Every ``resources[].arn`` in CloudTrail's order, as JSON text (NULL when the event names none): batch calls
    name one resource per table, KMS ReEncrypt the source key then the destination key."""
    if dialect is Dialect.DUCKDB:
        return "CASE WHEN len(resources) > 0 THEN CAST(to_json(list_transform(resources, lambda r: r.arn)) AS VARCHAR) END"
    return ("CASE WHEN cardinality(resources) > 0 THEN json_format(CAST(transform(resources, r -> r.arn) AS JSON)) "
            "END")


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

# requestParameters fields that name a further resource or pick the resource an action applies to, each its own
# output column (``iamgraph.usage.evidence`` reads them).
# S3 logs request headers among the requestParameters (x-amz-create-session-mode in
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-express-log-files.html); CopyObject and UploadPartCopy name
# their source in the x-amz-copy-source header (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
# DynamoDB Query/Scan name the index in indexName; CloudWatch Logs stream calls name logStreamName.
EVIDENCE_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("x-amz-copy-source", "copy_source"),
    ("indexName", "index_name"),
    ("logStreamName", "log_stream_name"),
)

REQUEST_PARAMETER_FIELDS: tuple[str, ...] = (
    "bucketName", "key", *(field for field, _ in RESOURCE_HINTS), *(field for field, _ in EVIDENCE_PARAMETERS)
)
"""The only ``requestParameters`` fields the aggregation reads (the local reader keeps just these)."""

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
    "resource_arns",
    *(column for _, column in EVIDENCE_PARAMETERS),
)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def aggregation_sql(
    source: str,
    *,
    dialect: Dialect,
    partition: str = "aws",
    where: str | None = None,
    weighted: bool = False,
) -> str:
    """The aggregation over ``source`` (a table name or a parenthesized subquery).

    ``where`` is an extra predicate (the partition filter); everything else is identical across dialects.
    ``weighted``: each source row stands for ``n`` identical events (columns ``n`` and ``eventtime_last``
    besides ``eventtime``, the earliest), as the local reader stages them; only the three aggregates change.
    """
    rp = _extract_many(dialect, "requestparameters", REQUEST_PARAMETER_FIELDS)
    bucket, key = "rp[1]", "rp[2]"
    hints = [(f"rp[{i + 3}]", name) for i, (_, name) in enumerate(RESOURCE_HINTS)]
    first_evidence = 3 + len(RESOURCE_HINTS)
    evidence = ",\n    ".join(f"rp[{first_evidence + i}] AS {column}" for i, (_, column) in enumerate(EVIDENCE_PARAMETERS))
    s3_arn = _q(f"arn:{partition}:s3:::")
    hint_value = "coalesce(" + ", ".join(col for col, _ in hints) + ")"
    hint_key = "CASE " + " ".join(f"WHEN {col} IS NOT NULL THEN {_q(name)}" for col, name in hints) + " END"
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
      ELSE {_first_arn(dialect)}
    END"""
    sql = f"""SELECT
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
    count(*) AS n,
    {_all_arns(dialect)} AS resource_arns,
    {evidence}
FROM (
    SELECT useridentity, eventsource, eventname, awsregion, errorcode, recipientaccountid, eventtime, resources,
        {rp} AS rp
    FROM {source}
    {"WHERE " + where if where else ""}
) AS e
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, {", ".join(str(16 + i) for i in range(1 + len(EVIDENCE_PARAMETERS)))}"""
    if weighted:
        # The source's rows stand for ``n`` identical events seen from ``eventtime`` to ``eventtime_last``.
        sql = sql.replace("eventtime, resources,", "eventtime, eventtime_last, n, resources,", 1)
        sql = sql.replace("max(eventtime) AS last_seen,\n    count(*) AS n,",
                          "max(eventtime_last) AS last_seen,\n    sum(n) AS n,", 1)
    return sql


# Top-level fields of a CloudTrail record read by the local relation, in one JSON pass per record.
_RECORD_PATHS = (
    "$.eventTime",
    "$.eventSource",
    "$.eventName",
    "$.awsRegion",
    "$.errorCode",
    "$.recipientAccountId",
    "$.userIdentity.type",
    "$.userIdentity.principalId",
    "$.userIdentity.arn",
    "$.userIdentity.accountId",
    "$.userIdentity.invokedBy",
    "$.userIdentity.userName",
    "$.userIdentity.sessionContext.sessionIssuer.type",
    "$.userIdentity.sessionContext.sessionIssuer.principalId",
    "$.userIdentity.sessionContext.sessionIssuer.arn",
    "$.userIdentity.sessionContext.sessionIssuer.accountId",
    "$.userIdentity.sessionContext.sessionIssuer.userName",
)


def duckdb_files_relation(files_param: str = "$files") -> str:
    """A subquery over CloudTrail ``.json.gz`` files shaped like the Athena table, read by DuckDB itself.

    Each file is one JSON object whose ``Records`` array holds the events. The ingest no longer uses it (the
    Python reader and ``staged_relation`` are faster and cope with odd files one by one); it stays as the
    independent reading that tests/usage/test_usage_reader.py compares the reader against.
    """
    paths = "[" + ", ".join(_q(p) for p in _RECORD_PATHS) + "]"
    return f"""(SELECT
        v[1] AS eventtime, v[2] AS eventsource, v[3] AS eventname, v[4] AS awsregion, v[5] AS errorcode,
        v[6] AS recipientaccountid,
        struct_pack(type := v[7], principalid := v[8], arn := v[9], accountid := v[10], invokedby := v[11],
            username := v[12],
            sessioncontext := struct_pack(sessionissuer := struct_pack(type := v[13], principalid := v[14],
                arn := v[15], accountid := v[16], username := v[17]))) AS useridentity,
        CAST(j[1] AS VARCHAR) AS requestparameters,
        json_transform(j[2], '[{{"ARN": "VARCHAR", "accountId": "VARCHAR", "type": "VARCHAR"}}]') AS resources
    FROM (SELECT json_extract_string(r, {paths}) AS v, json_extract(r, ['$.requestParameters', '$.resources']) AS j
          FROM (SELECT unnest(json_extract(json, '$.Records[*]')) AS r
                FROM read_json_objects({files_param}, format = 'auto', compression = 'gzip',
                                       maximum_object_size = 1073741824)))
    ) AS ct"""


# The local reader's staging rows (see ``ingest.CloudTrailReader``): the fields of a CloudTrail record the
# Athena table exposes, flattened, plus how many identical records the row stands for and their time span.
# ``requestParameters`` is staged as a JSON object of only the fields the aggregation reads.
STAGED_COLUMNS: tuple[str, ...] = (
    "eventtime",
    "eventtime_last",
    "n",
    "eventsource",
    "eventname",
    "awsregion",
    "errorcode",
    "recipientaccountid",
    "ui_type",
    "ui_principalid",
    "ui_arn",
    "ui_accountid",
    "ui_invokedby",
    "ui_username",
    "si_type",
    "si_principalid",
    "si_arn",
    "si_accountid",
    "si_username",
    "resource_arn",
    "requestparameters",
)


def staged_relation(path_param: str = "$staged") -> str:
    """A subquery over the reader's staging file (CSV of ``STAGED_COLUMNS``) shaped like the Athena table.

    Strings are quoted, NULL is an unquoted ``0`` (counts are never 0). ``resource_arn`` is the JSON array of every
    resource's ARN (``resources`` holds only their ARNs) and ``requestparameters`` only the fields the aggregation
    reads: it reads nothing else of either.
    """
    spec = ", ".join(f"'{c}': '{'BIGINT' if c == 'n' else 'VARCHAR'}'" for c in STAGED_COLUMNS)
    return f"""(SELECT
        eventtime, eventtime_last, n, eventsource, eventname, awsregion, errorcode, recipientaccountid,
        struct_pack(type := ui_type, principalid := ui_principalid, arn := ui_arn, accountid := ui_accountid,
            invokedby := ui_invokedby, username := ui_username,
            sessioncontext := struct_pack(sessionissuer := struct_pack(type := si_type,
                principalid := si_principalid, arn := si_arn, accountid := si_accountid,
                username := si_username))) AS useridentity,
        requestparameters,
        CASE WHEN resource_arn IS NULL THEN NULL
             ELSE list_transform(CAST(json_transform(resource_arn, '["VARCHAR"]') AS VARCHAR[]),
                                 lambda a: struct_pack(arn := a, accountid := NULL::VARCHAR, type := NULL::VARCHAR)) END
            AS resources
    FROM read_csv({path_param}, header = false, delim = ',', quote = '"', escape = '"', nullstr = '0',
                  allow_quoted_nulls = false, auto_detect = false, columns = {{{spec}}})
    ) AS ct"""
