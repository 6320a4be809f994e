"""The aggregation on Amazon Athena, over the organization's CloudTrail table. Only the aggregate comes back.

The table is the one AWS documents (https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html), either
with partition projection on a ``timestamp`` partition (``yyyy/MM/dd``) or with ``year``/``month``/``day``
partitions; the date window becomes a predicate on those columns, so Athena reads only the days asked for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Any

from iamgraph.errors import IamGraphError, InputError
from iamgraph.usage.sql import OUTPUT_COLUMNS, Dialect, aggregation_sql

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AthenaError(IamGraphError):
    """The Athena query failed or was cancelled."""


class PartitionStyle(StrEnum):
    PROJECTION = "projection"
    """One ``timestamp`` partition column holding ``yyyy/MM/dd`` (the documented partition projection table)."""
    YMD = "ymd"
    """``year``, ``month`` and ``day`` partition columns (the documented manually partitioned table)."""


def partition_predicate(since: date | None, until: date | None, style: PartitionStyle) -> str | None:
    """A predicate on partition columns only, so the engine prunes partitions (same text for DuckDB and Trino)."""
    if since is None and until is None:
        return None
    col = '"timestamp"' if style is PartitionStyle.PROJECTION else "concat(year, '/', month, '/', day)"
    parts = []
    if since is not None:
        parts.append(f"{col} >= '{since:%Y/%m/%d}'")
    if until is not None:
        parts.append(f"{col} <= '{until:%Y/%m/%d}'")
    return " AND ".join(parts)


def athena_sql(
    *,
    database: str,
    table: str,
    since: date | None,
    until: date | None,
    style: PartitionStyle = PartitionStyle.PROJECTION,
    partition: str = "aws",
) -> str:
    for what, name in (("database", database), ("table", table)):
        if not _IDENT.match(name):
            raise InputError(f"{what} name {name!r} is not a plain identifier", source="--" + what)
    return aggregation_sql(
        f'"{database}"."{table}"',
        dialect=Dialect.TRINO,
        partition=partition,
        where=partition_predicate(since, until, style),
    )


_N = OUTPUT_COLUMNS.index("n")


class AthenaRunner:
    """Starts the query, waits for it, and reads the (aggregate) result pages."""

    def __init__(
        self,
        client: Any,
        *,
        workgroup: str | None,
        output: str | None,
        poll_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.workgroup = workgroup
        self.output = output
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def run(self, sql: str, *, database: str) -> list[tuple[Any, ...]]:
        kwargs: dict[str, Any] = {"QueryString": sql, "QueryExecutionContext": {"Database": database}}
        if self.workgroup:
            kwargs["WorkGroup"] = self.workgroup
        if self.output:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output}
        qid = self.client.start_query_execution(**kwargs)["QueryExecutionId"]
        while True:
            status = self.client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise AthenaError(f"Athena query {qid} {state.lower()}: {reason}")
            self.sleep(self.poll_seconds)
        return self._results(qid)

    def _results(self, qid: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        token: str | None = None
        header_seen = False
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": qid}
            if token:
                kwargs["NextToken"] = token
            page = self.client.get_query_results(**kwargs)
            for row in page["ResultSet"]["Rows"]:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                if not header_seen:
                    # The first row of the first page repeats the column names.
                    header_seen = True
                    if values == list(OUTPUT_COLUMNS):
                        continue
                if len(values) != len(OUTPUT_COLUMNS):
                    raise AthenaError(f"Athena query {qid}: expected {len(OUTPUT_COLUMNS)} columns, got {len(values)}")
                values[_N] = int(values[_N]) if values[_N] is not None else 0
                rows.append(tuple(values))
            token = page.get("NextToken")
            if not token:
                return rows
