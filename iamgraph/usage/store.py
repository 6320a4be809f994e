"""The activity store: one DuckDB file. Versioned schema; every write is one transaction."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from iamgraph.errors import IamGraphError, InputError
from iamgraph.usage.mapping import EventMapper
from iamgraph.usage.observability import DATA_EVENT_ACTIONS, NOT_LOGGED, ObservabilityModel
from iamgraph.usage.types import Observability, Outcome, ProblemCount, Source, UsageRecord

SCHEMA_VERSION = 3
"""2: CloudTrail eventIDs that are UUIDs in their canonical text are kept as UUIDs (``event_uuids``), the others as
text (``event_ids``). 3: the others are kept with a 128-bit hash of their text beside it (``event_texts``), which the
lookup compares instead of the text. A store of version 1 or 2 is moved over when it is first opened for writing."""

TEXT_ID_HASH = "md5_number({})"
"""The hash of an eventID that is not a canonical UUID (SQL, ``{}`` the text): the 16 bytes of its MD5 read as a
little-endian unsigned 128-bit integer, which is what DuckDB's ``md5_number`` returns
(https://duckdb.org/docs/stable/sql/functions/text#md5_numberstring). It is stored, so it must never change: a store
opened for writing checks it against ``hashlib`` first (``_check_text_hash``). Two IDs that share it are still told
apart by their text (kept beside it and compared whenever a hash is found)."""

_IDS_BY_FILE = 4096
"""A batch of at least this many eventIDs hands them to DuckDB in a file (``UsageStore._given_ids``)."""

BULK_AFTER = 16
"""Distinct principals asked about one window before ``UsageStore.records`` reads the whole window at once."""


class UsageStoreError(IamGraphError):
    """The usage database cannot be opened or is of an incompatible version."""


_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    principal_arn VARCHAR NOT NULL,
    identity_type VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    resource VARCHAR NOT NULL,          -- '' when unknown
    source VARCHAR NOT NULL,            -- cloudtrail | access_advisor
    outcome VARCHAR NOT NULL,           -- allowed | denied
    invoked_by VARCHAR NOT NULL,        -- '' for direct calls
    permission_set VARCHAR,
    account_id VARCHAR,
    certain BOOLEAN NOT NULL,           -- false when the event could have needed one of several actions
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    count BIGINT NOT NULL,
    PRIMARY KEY (principal_arn, identity_type, action, resource, source, outcome, invoked_by)
);
CREATE TABLE IF NOT EXISTS ingested_files (
    path VARCHAR PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime VARCHAR,
    sha256 VARCHAR NOT NULL,
    status VARCHAR NOT NULL,            -- ok | bad
    error VARCHAR,
    ingested_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
    kind VARCHAR NOT NULL,              -- unmapped | no_action | unattributed | bad_file | bad_record
    detail VARCHAR NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (kind, detail)
);
CREATE TABLE IF NOT EXISTS access_advisor_coverage (service VARCHAR PRIMARY KEY);
-- CloudTrail eventIDs already counted: an event delivered again (another trail, another file) counts once.
-- No index: each ingest batch looks its IDs up in one join. An ID whose text is a UUID as DuckDB writes one (lower
-- case, hyphens; CloudTrail's are) is kept as a UUID: 16 bytes to store, write and compare instead of 36 characters.
-- Any other ID is kept as text (its UUID would not give the same text back, and two such IDs are two events), with
-- a 128-bit hash of it (TEXT_ID_HASH) that the lookup reads instead of the text; the text is read only where a
-- hash is found, to tell two IDs that share one apart. (Schemas 1 and 2 had ``event_ids (event_id VARCHAR)``.)
CREATE TABLE IF NOT EXISTS event_texts (h UHUGEINT NOT NULL, event_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS event_uuids (event_id UUID NOT NULL);
-- What was logged where (iamgraph/usage/logged.py): a kind of event recorded in an account and region shows that
-- a trail logs that kind there. Added after schema 1 without a version change: older stores gain it empty.
CREATE TABLE IF NOT EXISTS logged (
    account_id VARCHAR NOT NULL,
    region VARCHAR NOT NULL,            -- '' when unknown
    service VARCHAR NOT NULL,
    category VARCHAR NOT NULL,          -- management | data
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    count BIGINT NOT NULL,              -- authorizations derived from the events, not events
    PRIMARY KEY (account_id, region, service, category)
);
"""

USAGE_COLUMNS = (
    "principal_arn",
    "identity_type",
    "action",
    "resource",
    "source",
    "outcome",
    "invoked_by",
    "permission_set",
    "account_id",
    "certain",
    "first_seen",
    "last_seen",
    "count",
)
_KEY = USAGE_COLUMNS[:7]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    path: str
    size: int
    mtime: str | None
    sha256: str
    status: str
    error: str | None = None


def _write_json_lines(fh: Any, rows: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line, each written as soon as it is made.

    Not ``b"\\n".join`` over the rows: orjson's buffers for 100,000 rows kept at once came from fresh memory
    pages each time, and the page faults made it eight times slower (1.06 s against 0.13 s for 170,000 usage
    rows on the build machine)."""
    write = fh.write
    for r in rows:
        write(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE))


@contextlib.contextmanager
def _owner_only() -> Iterator[None]:
    """Files created in the block are owner-only. The umask is the process's: only ever tightened here."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


class UsageStore:
    """``UsageStore(path)`` opens (or creates) the DuckDB file. Use as a context manager or call ``close()``."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._bulk: dict[tuple[Any, ...], dict[str, list[UsageRecord]]] = {}
        self._asked: dict[tuple[Any, ...], set[str]] = {}
        self._fetched: dict[tuple[Any, ...], dict[str, list[UsageRecord]]] = {}
        if read_only and not self.path.exists():
            raise InputError("no such usage database (run `iamgraph usage ingest` first)", source=str(self.path))
        created = not read_only and not self.path.exists()
        try:
            # Who called what is as sensitive as a snapshot: a new database (and its write-ahead log) is
            # owner-only (0600), whatever the umask; an existing file keeps the mode its owner gave it.
            with _owner_only() if created else contextlib.nullcontext():
                self.con = duckdb.connect(str(self.path), read_only=read_only)
                if created:
                    os.chmod(self.path, 0o600)
        except duckdb.Error as exc:
            raise UsageStoreError(f"{self.path}: cannot open the usage database: {exc}") from None
        if not read_only:
            with _owner_only():
                self.con.execute(_DDL)
            self._private_wal()
        row = self._meta("schema_version")
        if row is None:
            if read_only:
                raise UsageStoreError(f"{self.path}: not an iamgraph usage database (no schema_version)")
            self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        elif int(row) > SCHEMA_VERSION:
            raise UsageStoreError(
                f"{self.path}: usage database schema {row} is newer than this iamgraph understands "
                f"({SCHEMA_VERSION}); upgrade iamgraph"
            )
        elif int(row) < SCHEMA_VERSION and not read_only:
            self._event_ids_moved(int(row))
        if not read_only:
            try:
                self._check_text_hash()
            except UsageStoreError:
                self.con.close()
                raise

    def _event_ids_moved(self, version: int) -> None:
        """Schemas 1 and 2 to 3, in one transaction: the eventIDs of ``event_ids`` that are canonical UUIDs move to
        ``event_uuids`` (schema 1 kept them all as text), the others to ``event_texts`` with their hash, and
        ``event_ids`` goes. The version says it is done, so an older iamgraph (which reads ``event_ids``) refuses the
        store instead of counting those events again."""
        canonical = "CAST(TRY_CAST(event_id AS UUID) AS VARCHAR) = event_id"
        # A store written before ``event_ids`` existed has none (it holds no IDs of the events it counted).
        had_ids = self.con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'event_ids' "
                                   "AND schema_name = 'main' AND NOT temporary").fetchone() is not None
        self.begin()
        try:
            if had_ids and version < 2:
                self.con.execute(
                    f"INSERT INTO event_uuids SELECT CAST(event_id AS UUID) FROM event_ids WHERE {canonical}")
                self.con.execute(f"DELETE FROM event_ids WHERE {canonical}")
            if had_ids:
                self.con.execute(f"INSERT INTO event_texts SELECT {TEXT_ID_HASH.format('event_id')}, event_id "
                                 "FROM event_ids")
                self.con.execute("DROP TABLE event_ids")
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.commit()
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def _check_text_hash(self) -> None:
        """The stored hashes of text eventIDs are only worth anything while DuckDB computes the same one: checked
        against ``hashlib``'s MD5 before anything is written (a DuckDB that changed it would count again every event
        delivered twice)."""
        probe = "iamgraph eventID check"
        row = self.con.execute(f"SELECT {TEXT_ID_HASH.format('$1')}", [probe]).fetchone()
        expected = int.from_bytes(hashlib.md5(probe.encode(), usedforsecurity=False).digest(), "little")
        if row is None or int(row[0]) != expected:
            raise UsageStoreError(
                f"{self.path}: this DuckDB hashes eventIDs differently from the one that wrote the store "
                "(md5_number); use the DuckDB version iamgraph pins")

    # -- lifecycle

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str) -> str | None:
        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        except duckdb.CatalogException:
            return None
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value]
        )

    def get_meta(self, key: str) -> str | None:
        return self._meta(key)

    @contextlib.contextmanager
    def one_thread(self) -> Iterator[None]:
        """DuckDB on one thread for the block (an ingest), then as it was. A batch's statements run over a few
        hundred thousand rows each; on DuckDB's threads they cost more CPU than on one (the 500 benchmark files, one
        process, at load 7: 5.2-5.8 CPU-s against 5.6-6.4 in four of five runs back to back, docs/benchmarks.md)
        for a wall time about 0.6-1 s longer, still well under a plain Python read of the files."""
        row = self.con.execute("SELECT current_setting('threads')").fetchone()
        self.con.execute("SET threads = 1")
        try:
            yield
        finally:
            self.con.execute(f"SET threads = {int(row[0]) if row else 1}")

    # -- files

    def file_done(self, path: str, size: int, sha256: str | None = None) -> FileEntry | None:
        """The earlier record of this file (same path and size, or same content), if any."""
        row = self.con.execute(
            "SELECT path, size, mtime, sha256, status, error FROM ingested_files "
            "WHERE (path = ? AND size = ?) OR sha256 = ? LIMIT 1",
            [path, size, sha256 or "-"],
        ).fetchone()
        if row is None:
            return None
        return FileEntry(path=row[0], size=row[1], mtime=row[2], sha256=row[3], status=row[4], error=row[5])

    def known_files(self) -> tuple[dict[str, int], set[str]]:
        """Every recorded file: path → size, and the content hashes of those that were read (one query, for big
        ingests). A bad file's hash is not among them: the same bytes under another name are read, and recorded
        as bad, again, not skipped as done."""
        rows = self.con.execute("SELECT path, size, sha256, status FROM ingested_files").fetchall()
        return {r[0]: int(r[1]) for r in rows}, {r[2] for r in rows if r[3] == "ok"}

    def files(self) -> list[FileEntry]:
        rows = self.con.execute(
            "SELECT path, size, mtime, sha256, status, error FROM ingested_files ORDER BY path"
        ).fetchall()
        return [FileEntry(path=r[0], size=r[1], mtime=r[2], sha256=r[3], status=r[4], error=r[5]) for r in rows]

    # -- writes (callers wrap them in ``transaction()``)

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        with _owner_only():  # DuckDB creates the write-ahead log (``<file>.wal``) when it first writes to it
            self.con.execute("COMMIT")
        self._private_wal()

    def _private_wal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            wal = self.path.with_name(self.path.name + ".wal")
            if wal.stat().st_mode & 0o077:
                os.chmod(wal, 0o600)

    def rollback(self) -> None:
        self._written()
        self.con.execute("ROLLBACK")

    def record_files(self, entries: Iterable[FileEntry]) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [
            {"path": e.path, "size": e.size, "mtime": e.mtime, "sha256": e.sha256, "status": e.status,
             "error": e.error, "ingested_at": now}
            for e in entries
        ]
        if not rows:
            return
        fd, tmp = tempfile.mkstemp(suffix=".jsonl", prefix="iamgraph-files-")
        try:
            with os.fdopen(fd, "wb") as fh:
                _write_json_lines(fh, rows)
            self.con.execute(
                "INSERT INTO ingested_files SELECT path, size, mtime, sha256, status, error, ingested_at FROM "
                "read_json(?, format = 'newline_delimited', columns = {'path': 'VARCHAR', 'size': 'BIGINT', "
                "'mtime': 'VARCHAR', 'sha256': 'VARCHAR', 'status': 'VARCHAR', 'error': 'VARCHAR', "
                "'ingested_at': 'TIMESTAMP'}) "
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, "
                "sha256 = excluded.sha256, status = excluded.status, error = excluded.error, "
                "ingested_at = excluded.ingested_at",
                [tmp],
            )
        finally:
            os.unlink(tmp)

    def _given_ids(self, ids: list[str]) -> tuple[str, list[Any], str | None]:
        """A relation of ``ids`` (column ``e``), its parameters and the temporary file it reads, if any.

        Many IDs go through a file of one ID per line read by DuckDB's CSV reader, with no quoting, escapes or
        separator it could find in an ID (for 838,000 UUIDs: 0.30 CPU-s with the classification below, against 0.42-0.52
        for one string split by ``string_split``, whose list of strings DuckDB builds whole first). An ID that the
        file could not keep as it is (a line break, a carriage return, a NUL or \\x01, an empty ID, text that is not
        UTF-8) sends the batch to one string split by DuckDB, or to a list of strings when an ID holds a line break."""
        joined = "\n".join(ids)
        if len(ids) >= _IDS_BY_FILE and not (
                "\r" in joined or "\x00" in joined or "\x01" in joined or "\n\n" in joined
                or joined.startswith("\n") or joined.endswith("\n") or joined.count("\n") != len(ids) - 1):
            try:
                data = (joined + "\n").encode()
            except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800"): not UTF-8
                pass
            else:
                fd, tmp = tempfile.mkstemp(suffix=".txt", prefix="iamgraph-ids-")  # 0600
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                except BaseException:
                    os.unlink(tmp)
                    raise
                return ("SELECT e FROM read_csv($1, header = false, columns = {'e': 'VARCHAR'}, delim = chr(1), "
                        "quote = '', escape = '', auto_detect = false)", [tmp], tmp)
        # One string, split by DuckDB, costs less than a list of strings, which the client converts one by one; an
        # ID with a line break in it (CloudTrail's are UUIDs) needs the list.
        if joined.count("\n") != len(ids) - 1:
            return "SELECT unnest($1::VARCHAR[]) AS e", [ids], None
        return "SELECT unnest(string_split($1, chr(10))) AS e", [joined], None

    def claim_event_ids(self, event_ids: Iterable[str]) -> list[str]:
        """Record ``event_ids`` as counted, in the caller's transaction, and return those an earlier ingest batch
        had counted already (the caller takes them back before aggregating).

        The IDs go to DuckDB once (``_given_ids``: a file of one ID per line, or one string parameter; no per-ID
        conversion in the client), into a temporary table that the lookup and the insert both read, as UUIDs where their text is a canonical UUID (``event_uuids``) and as
        a 128-bit hash with the text otherwise (``event_texts``). The lookup reads 16 bytes per stored ID either way
        (the UUIDs, the hashes); the stored texts are read only when one of the batch's hashes is found."""
        ids = list(event_ids)
        if not ids:
            return []
        given, arg, tmp = self._given_ids(ids)
        # ``u``: the ID as a UUID when that UUID's text is the ID itself (else NULL); ``e`` and ``h``: the ID as text
        # and its hash otherwise. Only IDs of a UUID's length are tried as one (a failed cast costs more than the
        # length).
        try:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE batch_event_ids AS SELECT u, CASE WHEN u IS NULL THEN e END AS e, "
                f"CASE WHEN u IS NULL THEN {TEXT_ID_HASH.format('e')} END AS h "
                "FROM (SELECT e, CASE WHEN CAST(v AS VARCHAR) = e THEN v END AS u FROM (SELECT e, CASE WHEN "
                f"length(e) = 36 THEN TRY_CAST(e AS UUID) END AS v FROM ({given})))", arg)
        finally:
            if tmp is not None:
                os.unlink(tmp)
        # The stored IDs are read once, by the lookup; the inserts leave out only what the lookup found (a join against
        # the few IDs counted before, not a second pass over the whole table: that pass grew with the store).
        known_uuids = [r[0] for r in self.con.execute(
            "SELECT CAST(b.u AS VARCHAR) FROM batch_event_ids AS b SEMI JOIN event_uuids AS k "
            "ON k.event_id = b.u").fetchall()]
        known_texts: list[str] = []
        self.con.execute("CREATE OR REPLACE TEMP TABLE batch_hashes_found AS SELECT DISTINCT b.h FROM batch_event_ids "
                         "AS b SEMI JOIN event_texts AS k ON k.h = b.h")
        if self.con.execute("SELECT 1 FROM batch_hashes_found LIMIT 1").fetchone() is not None:
            # A hash counted before: the ID is known only if its text is the stored one (two texts can share a hash).
            # Only then are stored texts read (a batch with no ID counted before reads the hashes alone).
            known_texts = [r[0] for r in self.con.execute(
                "SELECT b.e FROM batch_event_ids AS b SEMI JOIN (SELECT k.h, k.event_id FROM event_texts AS k "
                "SEMI JOIN batch_hashes_found AS f ON f.h = k.h) AS k ON k.h = b.h AND k.event_id = b.e").fetchall()]
        if known_uuids:
            self.con.execute("INSERT INTO event_uuids SELECT b.u FROM batch_event_ids AS b ANTI JOIN "
                             "(SELECT CAST(unnest($1::VARCHAR[]) AS UUID) AS k) AS f ON f.k = b.u "
                             "WHERE b.u IS NOT NULL", [known_uuids])
        else:
            self.con.execute("INSERT INTO event_uuids SELECT u FROM batch_event_ids WHERE u IS NOT NULL")
        if known_texts:
            self.con.execute("INSERT INTO event_texts SELECT b.h, b.e FROM batch_event_ids AS b ANTI JOIN "
                             "(SELECT unnest($1::VARCHAR[]) AS k) AS f ON f.k = b.e "
                             "WHERE b.e IS NOT NULL", [known_texts])
        else:
            self.con.execute("INSERT INTO event_texts SELECT h, e FROM batch_event_ids WHERE e IS NOT NULL")
        # On an error the caller's rollback takes the temporary table away with the rest.
        self.con.execute("DROP TABLE batch_event_ids; DROP TABLE batch_hashes_found")
        return known_uuids + known_texts

    def counted_event_ids(self) -> list[str]:
        """Every eventID counted so far, as its text (for checks; an ingest asks ``claim_event_ids``)."""
        return [r[0] for r in self.con.execute(
            "SELECT CAST(event_id AS VARCHAR) FROM event_uuids UNION ALL SELECT event_id FROM event_texts").fetchall()]

    def add_problems(self, counts: dict[tuple[str, str], int]) -> None:
        rows = [[k, d, n] for (k, d), n in counts.items() if n]
        if rows:
            self.con.executemany(
                "INSERT INTO problems VALUES (?, ?, ?) ON CONFLICT (kind, detail) DO UPDATE SET "
                "count = problems.count + excluded.count",
                rows,
            )

    def merge_usage(self, rows: Sequence[dict[str, Any]]) -> int:
        """Add aggregated rows (keys: USAGE_COLUMNS): counts add up, first/last seen widen.

        Timestamps are naive UTC datetimes or ISO strings ending in ``Z``. The rows go through a JSON-lines file
        (much faster than executemany) and are grouped by key in SQL before the upsert.
        """
        if not rows:
            return 0
        self._written()
        fd, tmp = tempfile.mkstemp(suffix=".jsonl", prefix="iamgraph-usage-")
        try:
            with os.fdopen(fd, "wb") as fh:
                _write_json_lines(fh, rows)
            types = {
                c: ("BIGINT" if c == "count" else "BOOLEAN" if c == "certain" else
                    "TIMESTAMP" if c in ("first_seen", "last_seen") else "VARCHAR")
                for c in (*USAGE_COLUMNS, "region")
            }
            spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in types.items()) + "}"
            # The file is read once, into a temporary table both upserts read (usage, then logged).
            self.con.execute("CREATE OR REPLACE TEMP TABLE usage_batch AS "
                             f"SELECT * FROM read_json(?, format = 'newline_delimited', columns = {spec})", [tmp])
        finally:
            os.unlink(tmp)
        return self._upsert_batch()

    def merge_usage_query(self, select: str, params: Sequence[Any] = ()) -> int:
        """``merge_usage`` of the rows of a query on this connection (columns: USAGE_COLUMNS and ``region``, typed
        as ``usage``'s), for rows that are already in DuckDB (``Ingestor``'s aggregate): no file between."""
        self._written()
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE usage_batch AS {select}", list(params))
        return self._upsert_batch()

    def _upsert_batch(self) -> int:
        """The rows of the temporary table ``usage_batch`` into ``usage`` and ``logged``; how many usage rows are new."""
        key = ", ".join(_KEY)
        before = self._count()
        self.con.execute(
            f"INSERT INTO usage ({', '.join(USAGE_COLUMNS)}) "
            f"SELECT {key}, any_value(permission_set), any_value(account_id), bool_or(certain), "
            "min(first_seen), max(last_seen), sum(count) "
            f"FROM usage_batch GROUP BY {key} "
            f"ON CONFLICT ({key}) "
            "DO UPDATE SET count = usage.count + excluded.count, "
            "certain = usage.certain OR excluded.certain, "
            "first_seen = least(usage.first_seen, excluded.first_seen), "
            "last_seen = greatest(usage.last_seen, excluded.last_seen), "
            "permission_set = coalesce(usage.permission_set, excluded.permission_set), "
            "account_id = coalesce(usage.account_id, excluded.account_id)"
        )
        self._merge_logged()
        # On an error the caller's rollback takes the temporary table away with the rest.
        self.con.execute("DROP TABLE usage_batch")
        return self._count() - before

    def _merge_logged(self) -> None:
        """What the rows of ``usage_batch`` show was logged, per account and region (a row's optional ``region`` key:
        the event's ``awsRegion``). Actions no event of their own shows (``NOT_LOGGED``) say nothing about what was
        logged."""
        data = sorted(a for acts in DATA_EVENT_ACTIONS.values() for a in acts)
        self.con.execute(
            "INSERT INTO logged SELECT account_id, coalesce(region, ''), split_part(action, ':', 1), "
            "CASE WHEN list_contains(?, action) THEN 'data' ELSE 'management' END AS category, min(first_seen), "
            "max(last_seen), sum(count) FROM usage_batch WHERE source = 'cloudtrail' AND account_id IS NOT NULL "
            "AND NOT list_contains(?, action) GROUP BY 1, 2, 3, 4 "
            "ON CONFLICT (account_id, region, service, category) DO UPDATE SET count = logged.count + excluded.count, "
            "first_seen = least(logged.first_seen, excluded.first_seen), "
            "last_seen = greatest(logged.last_seen, excluded.last_seen)",
            [data, sorted(NOT_LOGGED)],
        )

    def logged_rows(self) -> list[tuple[str, str, str, str]]:
        """(account, region, service, category) of what was logged (``iamgraph.usage.logged``). A store filled
        before regions were kept shows its CloudTrail evidence per account, region unknown (``''``), for the
        accounts the ``logged`` table does not know."""
        try:
            rows = self.con.execute("SELECT account_id, region, service, category FROM logged").fetchall()
        except duckdb.CatalogException:  # an older store opened read-only: no such table
            rows = []
        out = [(str(a), str(r), str(s), str(c)) for a, r, s, c in rows]
        known = {r[0] for r in out}
        data = sorted(a for acts in DATA_EVENT_ACTIONS.values() for a in acts)
        older = self.con.execute(
            "SELECT DISTINCT account_id, split_part(action, ':', 1), CASE WHEN list_contains(?, action) THEN 'data' "
            "ELSE 'management' END FROM usage WHERE source = 'cloudtrail' AND account_id IS NOT NULL AND NOT "
            "list_contains(?, action)", [data, sorted(NOT_LOGGED)]).fetchall()
        return out + [(str(a), "", str(s), str(c)) for a, s, c in older if str(a) not in known]

    def _count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM usage").fetchone()
        return int(row[0]) if row else 0

    def replace_access_advisor(self, rows: Sequence[dict[str, Any]], covered_services: Iterable[str]) -> int:
        """Access Advisor is a snapshot of last-access dates: it replaces the earlier one instead of adding up."""
        self._written()
        self.con.execute("DELETE FROM usage WHERE source = ?", [Source.ACCESS_ADVISOR.value])
        self.con.execute("DELETE FROM access_advisor_coverage")
        svcs = sorted(set(covered_services))
        if svcs:
            self.con.executemany("INSERT INTO access_advisor_coverage VALUES (?)", [[s] for s in svcs])
        return self.merge_usage(rows)

    # -- reads

    def usage_for(
        self,
        principal_arn: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        outcome: Outcome | None = None,
    ) -> list[UsageRecord]:
        """Records of one principal whose last use falls in [since, until] (naive datetimes are UTC)."""
        return self.records(principal_arn=principal_arn, since=since, until=until, outcome=outcome)

    def records(
        self,
        *,
        principal_arn: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: Outcome | None = None,
    ) -> list[UsageRecord]:
        """Records matching the filters, in ARN, action, resource order.

        Asked for many principals with the same window (``recommend --all``, ``unused`` over an organization), one
        query per principal costs more than the work done with its answer: after ``BULK_AFTER`` principals, the
        window's records of every principal are read in one query and served from memory until the next write."""
        if principal_arn is not None:
            key = (since, until, outcome)
            bulk = self._bulk.get(key)
            if bulk is None:
                asked = self._asked.setdefault(key, set())
                asked.add(principal_arn)
                if len(asked) > BULK_AFTER:
                    bulk = self._bulk[key] = defaultdict(list)
                    for rec in self._select(None, since, until, outcome):
                        bulk[rec.principal_arn].append(rec)
            if bulk is not None:
                return list(bulk.get(principal_arn, ()))
            fetched = self._fetched.get((since, until))
            if fetched is not None and principal_arn in fetched:
                return [r for r in fetched[principal_arn] if outcome is None or r.outcome is outcome]
        return self._select(principal_arn, since, until, outcome)

    def prefetch(self, principal_arns: Iterable[str], since: datetime | None = None,
                 until: datetime | None = None) -> None:
        """Read the window's records of these principals in one query, for :meth:`records` to serve (any outcome)
        until the next write: a policy shared by 34 roles asked about them one query each, twice (0.1 s of a
        one-principal ``recommend``)."""
        fetched = self._fetched.setdefault((since, until), {})
        todo = sorted(set(principal_arns) - set(fetched))
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            got: dict[str, list[UsageRecord]] = {arn: [] for arn in chunk}
            for rec in self._select(None, since, until, None, among=chunk):
                got[rec.principal_arn].append(rec)
            fetched.update(got)

    def _written(self) -> None:
        """The usage table changed: what ``records`` keeps in memory is stale."""
        self._bulk.clear()
        self._asked.clear()
        self._fetched.clear()

    def _select(self, principal_arn: str | None, since: datetime | None, until: datetime | None,
                outcome: Outcome | None, *, among: Sequence[str] = ()) -> list[UsageRecord]:
        sql = f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage WHERE true"
        args: list[Any] = []
        if principal_arn is not None:
            sql += " AND principal_arn = ?"
            args.append(principal_arn)
        if among:
            sql += f" AND principal_arn IN ({', '.join('?' * len(among))})"
            args.extend(among)
        if since is not None:
            sql += " AND last_seen >= ?"
            args.append(_ts(since.isoformat()))
        if until is not None:
            sql += " AND (first_seen IS NULL OR first_seen <= ?)"
            args.append(_ts(until.isoformat()))
        if outcome is not None:
            sql += " AND outcome = ?"
            args.append(outcome.value)
        sql += " ORDER BY principal_arn, action, resource, source, outcome, invoked_by"
        return [self._record(r) for r in self.con.execute(sql, args).fetchall()]

    @staticmethod
    def _record(r: tuple[Any, ...]) -> UsageRecord:
        d = dict(zip(USAGE_COLUMNS, r, strict=True))
        return UsageRecord(
            principal_arn=d["principal_arn"],
            identity_type=d["identity_type"],
            action=d["action"],
            resource=d["resource"] or None,
            source=Source(d["source"]),
            outcome=Outcome(d["outcome"]),
            first_seen=d["first_seen"],
            last_seen=d["last_seen"],
            count=int(d["count"]),
            invoked_by=d["invoked_by"] or None,
            permission_set=d["permission_set"],
            account_id=d["account_id"],
            certain=bool(d["certain"]),
        )

    def latest_activity(self) -> datetime | None:
        """The newest recorded activity (``last_seen``) in the store, or None when it holds none."""
        row = self.con.execute("SELECT max(last_seen) FROM usage").fetchone()
        return row[0] if row is not None and row[0] is not None else None

    def principals(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT principal_arn FROM usage ORDER BY 1").fetchall()]

    def resources_for(self, principal_arn: str, action: str) -> list[str]:
        """Resource ARNs observed for one principal and action (allowed calls only)."""
        rows = self.con.execute(
            "SELECT DISTINCT resource FROM usage WHERE principal_arn = ? AND action = ? AND resource <> '' "
            "AND outcome = 'allowed' ORDER BY 1",
            [principal_arn, action],
        ).fetchall()
        return [r[0] for r in rows]

    def problems(self) -> list[ProblemCount]:
        rows = self.con.execute("SELECT kind, detail, count FROM problems ORDER BY kind, count DESC, detail").fetchall()
        return [ProblemCount(kind=r[0], detail=r[1], count=int(r[2])) for r in rows]

    def data_event_services(self) -> frozenset[str]:
        """Services for which some data event was recorded: evidence that the trail logs their data events."""
        actions = sorted(a for acts in DATA_EVENT_ACTIONS.values() for a in acts)
        rows = self.con.execute(
            "SELECT DISTINCT split_part(action, ':', 1) FROM usage WHERE source = 'cloudtrail' AND "
            "list_contains(?, action)",
            [actions],
        ).fetchall()
        return frozenset(r[0] for r in rows)

    def access_advisor_services(self) -> frozenset[str]:
        return frozenset(r[0] for r in self.con.execute("SELECT service FROM access_advisor_coverage").fetchall())

    def observability(self, action: str, *, data_events: Iterable[str] | None = None) -> Observability:
        """Observability of an action under this store's evidence (data events detected unless given)."""
        return self.observability_model(data_events=data_events).observability(action)

    def observability_model(self, *, data_events: Iterable[str] | None = None) -> ObservabilityModel:
        mapper = _shared_mapper()
        return ObservabilityModel(
            mapper,
            data_events=self.data_event_services() if data_events is None else data_events,
            access_advisor_action_level=self.access_advisor_services(),
        )


_MAPPER: list[EventMapper] = []


def _shared_mapper() -> EventMapper:
    """One mapper per process: building it reads every botocore service model."""
    if not _MAPPER:
        _MAPPER.append(EventMapper())
    return _MAPPER[0]
