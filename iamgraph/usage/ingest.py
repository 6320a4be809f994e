"""CloudTrail ingest: log files (local directory or S3) → the aggregation SQL in DuckDB → the store.

The work is done by DuckDB's JSON reader over the gzip files with the aggregation in SQL (see ``sql.py``);
Python only sees the aggregate. Files are skipped when already ingested (same path and size, or same content),
so re-running never double-counts. A file that cannot be read is recorded as bad with the reason; the others
are ingested.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from iamgraph.catalog import get_catalog
from iamgraph.errors import InputError
from iamgraph.usage.attribution import ResourceResolver, permission_set_of
from iamgraph.usage.mapping import EventMapper, MappingStatus
from iamgraph.usage.sql import OUTPUT_COLUMNS, Dialect, aggregation_sql, duckdb_files_relation
from iamgraph.usage.store import FileEntry, UsageStore, _ts
from iamgraph.usage.types import IngestStats, Source

# AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html
LOG_PATH = re.compile(
    r"AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+\.json\.gz$"
)

BATCH_BYTES = 64 * 1024 * 1024
"""Compressed bytes per DuckDB read (one transaction each)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFile:
    path: str
    """Local path, or ``s3://bucket/key``."""
    size: int
    mtime: str | None
    day: date | None
    local: str | None = None
    """Where the bytes are on disk (the path itself for local files; a download for S3)."""
    sha256: str | None = None


def day_of(path: str) -> date | None:
    m = LOG_PATH.search(path.replace(os.sep, "/"))
    if not m:
        return None
    try:
        return date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return None


def in_window(day: date | None, since: date | None, until: date | None) -> bool:
    """The window is on the delivery date in the path (inclusive). Undated files pass only an open window."""
    if since is None and until is None:
        return True
    if day is None:
        return False
    return (since is None or day >= since) and (until is None or day <= until)


def local_files(root: str | os.PathLike[str]) -> list[LogFile]:
    base = Path(root)
    if not base.exists():
        raise InputError("no such directory", source=str(base))
    if base.is_file():
        paths = [base]
    else:
        paths = sorted(p for p in base.rglob("*.json.gz") if p.is_file())
    out = []
    for p in paths:
        st = p.stat()
        out.append(
            LogFile(
                path=str(p.resolve()),
                size=st.st_size,
                mtime=datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
                day=day_of(str(p)),
                local=str(p),
            )
        )
    return out


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- aggregate → store rows


@dataclass(slots=True)
class _Tally:
    events: int = 0
    unattributed: int = 0
    unmapped: int = 0
    problems: dict[tuple[str, str], int] | None = None

    def problem(self, kind: str, detail: str, n: int) -> None:
        if self.problems is None:
            self.problems = {}
        self.problems[(kind, detail)] = self.problems.get((kind, detail), 0) + n


def _when(value: Any) -> Any:
    """CloudTrail's eventTime is UTC with a ``Z``: DuckDB reads it as is. Anything else is normalized here."""
    if isinstance(value, str) and value.endswith("Z"):
        return value
    return _ts(value)


def rows_from_aggregate(
    aggregate: Iterable[Sequence[Any]],
    mapper: EventMapper,
    resolver: ResourceResolver,
    tally: _Tally,
) -> list[dict[str, Any]]:
    """Map aggregate rows (``sql.OUTPUT_COLUMNS``) to usage rows; count what cannot be attributed or mapped."""
    out: list[dict[str, Any]] = []
    cloudtrail = Source.CLOUDTRAIL.value
    for raw in aggregate:
        (principal, identity_type, issuer_name, invoked_by, account_id, event_source, event_name, resource,
         hint_key, hint_value, region, outcome, first_seen, last_seen, n) = raw
        n = int(n)
        tally.events += n
        if not principal or not event_source or not event_name or not identity_type:
            tally.unattributed += n
            present = dict(zip(OUTPUT_COLUMNS, raw, strict=True))
            missing = [k for k in ("identity_type", "principal", "event_source", "event_name") if not present[k]]
            tally.problem("unattributed", "missing " + ", ".join(missing), n)
            continue
        mapping = mapper.map(event_source, event_name)
        if not mapping.mapped:
            kind = "no_action" if mapping.status is MappingStatus.NO_ACTION else "unmapped"
            if kind == "unmapped":
                tally.unmapped += n
            tally.problem(kind, f"{event_source} {event_name}", n)
            continue
        certain = mapping.status is MappingStatus.MAPPED
        pset = permission_set_of(issuer_name) if identity_type == "AssumedRole" else None
        first, last = _when(first_seen), _when(last_seen)
        for action in mapping.actions:
            arn = resolver.resolve(action, resource, hint_key, hint_value, region, account_id)
            out.append(
                {
                    "principal_arn": principal,
                    "identity_type": identity_type,
                    "action": action,
                    "resource": arn or "",
                    "source": cloudtrail,
                    "outcome": outcome,
                    "invoked_by": invoked_by or "",
                    "permission_set": pset,
                    "account_id": account_id,
                    "certain": certain,
                    "first_seen": first,
                    "last_seen": last,
                    "count": n,
                }
            )
    return out


# ---------------------------------------------------------------- the ingest


class Ingestor:
    """Ingests CloudTrail files into a store. One DuckDB read and one transaction per batch of files."""

    def __init__(
        self,
        store: UsageStore,
        *,
        mapper: EventMapper | None = None,
        partition: str = "aws",
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.store = store
        self.mapper = mapper or EventMapper()
        self.resolver = ResourceResolver(get_catalog(), partition)
        self.partition = partition
        self.batch_bytes = batch_bytes
        self._sql = aggregation_sql(duckdb_files_relation(), dialect=Dialect.DUCKDB, partition=partition)

    def aggregate_files(self, local_paths: list[str]) -> list[tuple[Any, ...]]:
        return self.store.con.execute(self._sql, {"files": local_paths}).fetchall()

    def ingest(
        self,
        files: Iterable[LogFile],
        *,
        since: date | None = None,
        until: date | None = None,
        fetch: Callable[[LogFile], LogFile] | None = None,
    ) -> IngestStats:
        """Ingest the files in the window that are not done yet. ``fetch`` makes an S3 object local."""
        stats = {"seen": 0, "done": 0, "outside": 0, "ingested": 0, "bad": 0, "written": 0}
        tally = _Tally()
        bad: list[tuple[str, str]] = []
        batch: list[LogFile] = []
        size = 0
        known_paths, known_shas = self.store.known_files()
        for f in files:
            stats["seen"] += 1
            if not in_window(f.day, since, until):
                stats["outside"] += 1
                continue
            if known_paths.get(f.path) == f.size:
                stats["done"] += 1
                continue
            if fetch is not None:
                f = fetch(f)
            assert f.local is not None
            sha = sha256_file(f.local)
            if sha in known_shas:
                # The same bytes under another name (a copied or re-delivered file): counting it would double.
                stats["done"] += 1
                self._cleanup([f], fetch)
                continue
            known_shas.add(sha)
            batch.append(replace(f, sha256=sha))
            size += f.size
            if size >= self.batch_bytes:
                self._run(batch, tally, stats, bad, fetch)
                batch, size = [], 0
        if batch:
            self._run(batch, tally, stats, bad, fetch)
        return IngestStats(
            files_seen=stats["seen"],
            files_ingested=stats["ingested"],
            files_skipped_done=stats["done"],
            files_outside_window=stats["outside"],
            files_bad=stats["bad"],
            events=tally.events,
            events_unattributed=tally.unattributed,
            events_unmapped=tally.unmapped,
            records_written=stats["written"],
            bad_files=tuple(bad),
        )

    @staticmethod
    def _cleanup(files: list[LogFile], fetch: Callable[[LogFile], LogFile] | None) -> None:
        if fetch is None:
            return
        for f in files:
            if f.local and f.local != f.path:
                Path(f.local).unlink(missing_ok=True)

    def _read(self, batch: list[LogFile]) -> Iterator[tuple[list[LogFile], list[tuple[Any, ...]] | str]]:
        """Aggregate a batch; when DuckDB refuses it, split it to find the files at fault."""
        try:
            yield batch, self.aggregate_files([f.local or f.path for f in batch])
        except (duckdb.Error, OSError) as exc:
            if len(batch) == 1:
                yield batch, str(exc).splitlines()[0][:500]
                return
            mid = len(batch) // 2
            yield from self._read(batch[:mid])
            yield from self._read(batch[mid:])

    def _run(
        self,
        batch: list[LogFile],
        tally: _Tally,
        stats: dict[str, int],
        bad: list[tuple[str, str]],
        fetch: Callable[[LogFile], LogFile] | None,
    ) -> None:
        for files, result in self._read(batch):
            part = _Tally()
            entries: list[FileEntry] = []
            rows: list[dict[str, Any]] = []
            if isinstance(result, str):
                f = files[0]
                stats["bad"] += 1
                bad.append((f.path, result))
                part.problem("bad_file", f.path, 1)
                entries.append(
                    FileEntry(path=f.path, size=f.size, mtime=f.mtime, sha256=f.sha256 or "", status="bad",
                              error=result)
                )
            else:
                rows = rows_from_aggregate(result, self.mapper, self.resolver, part)
                entries.extend(
                    FileEntry(path=f.path, size=f.size, mtime=f.mtime, sha256=f.sha256 or "", status="ok")
                    for f in files
                )
                stats["ingested"] += len(files)
            self.store.begin()
            try:
                stats["written"] += self.store.merge_usage(rows)
                self.store.add_problems(part.problems or {})
                self.store.record_files(entries)
                self.store.commit()
            except BaseException:
                self.store.rollback()
                raise
            tally.events += part.events
            tally.unattributed += part.unattributed
            tally.unmapped += part.unmapped
        self._cleanup(batch, fetch)

    def ingest_aggregate(self, aggregate: Iterable[Sequence[Any]]) -> IngestStats:
        """Store an aggregate computed elsewhere (Athena, LookupEvents) in one transaction."""
        tally = _Tally()
        rows = rows_from_aggregate(aggregate, self.mapper, self.resolver, tally)
        self.store.begin()
        try:
            written = self.store.merge_usage(rows)
            self.store.add_problems(tally.problems or {})
            self.store.commit()
        except BaseException:
            self.store.rollback()
            raise
        return IngestStats(
            events=tally.events,
            events_unattributed=tally.unattributed,
            events_unmapped=tally.unmapped,
            records_written=written,
        )


# ---------------------------------------------------------------- S3


def parse_s3_url(url: str) -> tuple[str, str]:
    m = re.match(r"^s3://([^/]+)/?(.*)$", url)
    if not m:
        raise InputError("expected s3://bucket/prefix", source=url)
    return m.group(1), m.group(2)


def s3_files(client: Any, url: str) -> Iterator[LogFile]:
    """CloudTrail objects under ``s3://bucket/prefix`` (listing only; bytes are fetched per file)."""
    bucket, prefix = parse_s3_url(url)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not key.endswith(".json.gz"):
                continue
            modified = obj.get("LastModified")
            yield LogFile(
                path=f"s3://{bucket}/{key}",
                size=int(obj["Size"]),
                mtime=modified.isoformat() if modified is not None else None,
                day=day_of(key),
            )


class S3Fetcher:
    """Downloads one object at a time into a private temporary directory."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._dir = tempfile.TemporaryDirectory(prefix="iamgraph-ct-")

    def __call__(self, f: LogFile) -> LogFile:
        bucket, key = parse_s3_url(f.path)
        local = os.path.join(self._dir.name, hashlib.sha1(f.path.encode()).hexdigest() + ".json.gz")
        self.client.download_file(bucket, key, local)
        return replace(f, local=local)

    def close(self) -> None:
        self._dir.cleanup()


def ingest_location(
    store: UsageStore,
    location: str,
    *,
    since: date | None = None,
    until: date | None = None,
    mapper: EventMapper | None = None,
    s3_client: Any = None,
    batch_bytes: int = BATCH_BYTES,
) -> IngestStats:
    """Ingest a local directory (or file) or an ``s3://bucket/prefix``."""
    ingestor = Ingestor(store, mapper=mapper, batch_bytes=batch_bytes)
    if location.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        fetcher = S3Fetcher(s3_client)
        try:
            return ingestor.ingest(s3_files(s3_client, location), since=since, until=until, fetch=fetcher)
        finally:
            fetcher.close()
    return ingestor.ingest(local_files(location), since=since, until=until)
