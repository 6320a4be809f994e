"""CloudTrail ingest: log files (local directory or S3) → staged rows → the aggregation SQL in DuckDB → the store.

Files are read in Python (gzip + msgspec) and flattened to the Athena table's columns; identical rows are
collapsed with a count; the aggregation SQL of ``sql.py`` (the one Athena runs too) groups them in DuckDB, and
Python maps the (small) aggregate to IAM actions. Files are skipped when already ingested (same path and size,
or same content), so re-running never double-counts. A file that cannot be read is recorded as bad with the
reason; the others are ingested.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import multiprocessing
import os
import re
import sys
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import msgspec
import orjson
from isal import isal_zlib

from iamgraph.catalog import get_catalog
from iamgraph.errors import InputError
from iamgraph.gcpause import without_cyclic_gc
from iamgraph.usage.attribution import ResourceResolver, permission_set_of
from iamgraph.usage.evidence import EvidenceDeriver, facts_of
from iamgraph.usage.mapping import EventMapper, Mapping, MappingStatus
from iamgraph.usage.sql import (
    OUTPUT_COLUMNS,
    REQUEST_PARAMETER_FIELDS,
    Dialect,
    aggregation_sql,
    staged_relation,
)
from iamgraph.usage.store import FileEntry, UsageStore, _ts
from iamgraph.usage.types import IngestStats, Source

# AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html
LOG_PATH = re.compile(
    r"AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+\.json\.gz$"
)

# isal's stubs declare its error an instance (``error: Exception``); at run time it is the class IsalError.
_ISAL_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]

BAD_FILE_ERRORS = (ValueError, EOFError, OSError, zlib.error, _ISAL_ERROR)
"""What ``CloudTrailReader.add_file`` raises for a file that cannot be read at all (recorded as a bad file)."""

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
    # Resolving the root once (not each file) matters with thousands of small files.
    base = base.resolve()
    if base.is_file():
        paths = [base]
    else:
        # Digest files (CloudTrail-Digest/, log file integrity validation) sit beside the logs and hold no events.
        # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html
        paths = sorted(p for p in base.rglob("*.json.gz")
                       if p.is_file() and "CloudTrail-Digest" not in p.relative_to(base).parts)
    out = []
    for p in paths:
        st = p.stat()
        out.append(
            LogFile(
                path=str(p),
                size=st.st_size,
                mtime=datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
                day=day_of(str(p)),
                local=str(p),
            )
        )
    return out


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


_UNSET: Any = object()
# The columns ``evidence.facts_of`` reads: account_id to region, then resource_arns and the evidence parameters.
_FACTS_AT, _FACTS_END, _FACTS_FROM = (OUTPUT_COLUMNS.index("account_id"), OUTPUT_COLUMNS.index("region") + 1,
                                      OUTPUT_COLUMNS.index("resource_arns"))
assert OUTPUT_COLUMNS[_FACTS_END:_FACTS_FROM] == ("outcome", "first_seen", "last_seen", "n")
_FACTS_COLUMNS = (*OUTPUT_COLUMNS[_FACTS_AT:_FACTS_END], *OUTPUT_COLUMNS[_FACTS_FROM:])
_SOURCE_AT = OUTPUT_COLUMNS.index("event_source")
assert OUTPUT_COLUMNS[_SOURCE_AT + 1] == "event_name"
# ``rows_from_aggregate``'s queries in SQL, over ``Ingestor._store_aggregate``'s temporary table ``ct_aggregate``: the
# aggregate with ``attributed`` (the caller's fields are there) and ``fid``, a hash of its facts. Two sets of facts
# with one hash are possible: ``_store_aggregate`` checks that each ``fid`` has one set (else it maps the rows one by
# one, as ``rows_from_aggregate``), so the hash never joins a row to another row's derivation.
_ATTRIBUTED = " AND ".join(f"coalesce({c}, '') <> ''" for c in ("identity_type", "principal", "event_source",
                                                                "event_name"))
_FID = f"hash({', '.join(_FACTS_COLUMNS)})"
_FACTS_SQL = ("SELECT fid, sum(n), " + ", ".join(c if c in _FACTS_COLUMNS else "NULL" for c in OUTPUT_COLUMNS)
              + f" FROM ct_aggregate WHERE attributed GROUP BY fid, {', '.join(_FACTS_COLUMNS)}")
# One row per aggregate row and (action, resource) pair of its facts, shaped as ``UsageStore.merge_usage``'s rows:
# the pairs ($1-$4, one list per column) and the permission sets ($5, $6) come from Python. Event times are
# CloudTrail's UTC text, ``Z`` included (``event_time_problem``), which DuckDB casts as ``merge_usage`` reads it.
_USAGE_SQL = """SELECT a.principal AS principal_arn, a.identity_type, p.action, p.resource, 'cloudtrail' AS source,
    a.outcome, coalesce(a.invoked_by, '') AS invoked_by, s.permission_set, a.account_id, p.certain,
    CAST(a.first_seen AS TIMESTAMP) AS first_seen, CAST(a.last_seen AS TIMESTAMP) AS last_seen,
    CAST(a.n AS BIGINT) AS count, a.region
FROM ct_aggregate AS a
JOIN (SELECT unnest($1::UBIGINT[]) AS fid, unnest($2::VARCHAR[]) AS action, unnest($3::VARCHAR[]) AS resource,
             unnest($4::BOOLEAN[]) AS certain) AS p ON p.fid = a.fid
LEFT JOIN (SELECT unnest($5::VARCHAR[]) AS issuer_name, unnest($6::VARCHAR[]) AS permission_set) AS s
    ON a.identity_type = 'AssumedRole' AND s.issuer_name = a.issuer_name
WHERE a.attributed"""


_Derived = tuple[tuple[tuple[str, str], ...], str | None]
"""The (action, resource) pairs an event implies, resource '' when unknown, and why its shape was not the expected
one (None when it was)."""


class _Derivations:
    """What an event implies, per set of facts (``facts_of``: call, region, account, resources, parameters): not per
    principal, outcome or time, so the aggregate's rows for one resource and call by many principals share one
    derivation (a third of the rows on the benchmark's files), and an ``Ingestor`` keeps them across its batches
    (at most ``LIMIT`` sets at once: S3 object keys make the sets of a long ingest unbounded). Over the benchmark's
    500 files (two batches, 56,432 sets asked for), whose resources are mostly new in each batch, 663 were found
    there; calls repeated on the same resources day after day find more."""

    LIMIT = 50_000

    def __init__(self, resolver: ResourceResolver) -> None:
        self._deriver = EvidenceDeriver(resolver)
        self._memo: dict[tuple[Any, ...], _Derived] = {}

    def of(self, raw: Sequence[Any], actions: tuple[str, ...]) -> _Derived:
        """The derivation of an aggregate row (``sql.OUTPUT_COLUMNS``; only the facts' columns are read) for the
        actions its call maps to (which the facts' event source and name decide)."""
        facts = (*raw[_FACTS_AT:_FACTS_END], *raw[_FACTS_FROM:])
        try:
            found = self._memo.get(facts)
            cacheable = True
        except TypeError:  # a value an aggregate from elsewhere gives as a list: derived without the cache
            found, cacheable = None, False
        if found is None:
            derived = self._deriver.derive(facts_of(raw), actions)
            found = (tuple((a.action, a.resource or "") for a in dict.fromkeys(derived.authorizations)),
                     derived.unknown_shape)
            if cacheable:
                if len(self._memo) >= self.LIMIT:
                    self._memo.clear()
                self._memo[facts] = found
        return found


def _missing_who(identity_type: Any, principal: Any, event_source: Any, event_name: Any) -> str | None:
    """Why an aggregate row cannot be attributed ("missing ..."), or None when it can."""
    missing = [k for k, v in (("identity_type", identity_type), ("principal", principal),
                              ("event_source", event_source), ("event_name", event_name)) if not v]
    return "missing " + ", ".join(missing) if missing else None


def _unmapped(mapping: Mapping, call: str, n: int, tally: _Tally) -> bool:
    """Count ``n`` events of a ``call`` ("eventSource eventName") that maps to no IAM action (False when it maps to
    some)."""
    if mapping.mapped:
        return False
    kind = "no_action" if mapping.status is MappingStatus.NO_ACTION else "unmapped"
    if kind == "unmapped":
        tally.unmapped += n
    tally.problem(kind, call, n)
    return True


def rows_from_aggregate(
    aggregate: Iterable[Sequence[Any]],
    mapper: EventMapper,
    resolver: ResourceResolver,
    tally: _Tally,
    derivations: _Derivations | None = None,
) -> list[dict[str, Any]]:
    """Map aggregate rows (``sql.OUTPUT_COLUMNS``) to usage rows; count what cannot be attributed or mapped.

    ``Ingestor`` does the same in SQL for the batches it reads (``Ingestor._store_aggregate``); this is the path of
    an aggregate computed elsewhere (Athena, LookupEvents)."""
    out: list[dict[str, Any]] = []
    cloudtrail = Source.CLOUDTRAIL.value
    derivations = derivations or _Derivations(resolver)
    psets: dict[str | None, str | None] = {}
    for raw in aggregate:
        (principal, identity_type, issuer_name, invoked_by, account_id, event_source, event_name, _resource,
         _hint_key, _hint_value, region, outcome, first_seen, last_seen, n) = raw[:15]
        n = int(n)
        tally.events += n
        missing = _missing_who(identity_type, principal, event_source, event_name)
        if missing is not None:
            tally.unattributed += n
            tally.problem("unattributed", missing, n)
            continue
        mapping = mapper.map(event_source, event_name)
        if _unmapped(mapping, f"{event_source} {event_name}", n, tally):
            continue
        certain = mapping.status is MappingStatus.MAPPED
        if identity_type == "AssumedRole":
            pset = psets.get(issuer_name, _UNSET)
            if pset is _UNSET:
                pset = psets[issuer_name] = permission_set_of(issuer_name)
        else:
            pset = None
        first, last = _when(first_seen), _when(last_seen)
        pairs, unknown_shape = derivations.of(raw, mapping.actions)
        if unknown_shape:
            tally.problem("unknown_shape", f"{event_source} {event_name}: {unknown_shape}", n)
        invoked = invoked_by or ""
        for action, resource in pairs:
            out.append(
                {
                    "principal_arn": principal,
                    "identity_type": identity_type,
                    "action": action,
                    "resource": resource,
                    "source": cloudtrail,
                    "outcome": outcome,
                    "invoked_by": invoked,
                    "permission_set": pset,
                    "account_id": account_id,
                    "region": region,  # not a usage column: UsageStore.merge_usage keeps it in ``logged``
                    "certain": certain,
                    "first_seen": first,
                    "last_seen": last,
                    "count": n,
                }
            )
    return out


# ---------------------------------------------------------------- the reader


def _text(value: Any) -> Any:
    """A JSON value as the Athena table's VARCHAR holds it: strings as they are, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


# The fast path: msgspec decodes only the fields the aggregation reads and skips the rest of each record
# without building Python objects for it (``gc=False``: these objects hold only strings, so the cyclic garbage
# collector need not track the millions of them). Every field is declared a string; a file where one is not (or whose
# shape differs) is read again by the general path, which turns any JSON value into the text Athena would show.
# Field names are CloudTrail's (camelCase). The nested objects are frozen, so hashable in C: they are parts of a
# group key as decoded, where flattening them into one tuple per event cost more than the grouping itself.
# Of userIdentity, the aggregation reads type, arn, accountId, invokedBy and principalId (as the fallback of a missing
# ARN), and of its session issuer arn and userName (``READ_IDENTITY_FIELDS``): only those are decoded, the others
# are staged as NULL (tests/usage/test_usage_reader.py checks that the SQL reads nothing else).
class _Issuer(msgspec.Struct, frozen=True, gc=False):
    arn: str | None = None
    userName: str | None = None


class _Session(msgspec.Struct, frozen=True, gc=False):
    sessionIssuer: _Issuer | None = None


class _Identity(msgspec.Struct, frozen=True, gc=False):
    type: str | None = None
    principalId: str | None = None
    arn: str | None = None
    accountId: str | None = None
    invokedBy: str | None = None
    sessionContext: _Session | None = None


READ_IDENTITY_FIELDS = (
    tuple(f for f in _Identity.__struct_fields__ if f != "sessionContext"),
    _Issuer.__struct_fields__,
)
"""The fields of userIdentity and of its ``sessionContext.sessionIssuer`` the reader keeps (CloudTrail's names)."""


class _Resource(msgspec.Struct, frozen=True, gc=False):
    ARN: str | None = None


def _py_name(field: str) -> str:
    """A request parameter's struct attribute (``x-amz-copy-source`` is no Python name)."""
    return field.replace("-", "_")


def _arns(resources: Sequence[_Resource] | None) -> str | None:
    """Every resource's ARN, in CloudTrail's order, as the JSON text staged for ``sql.staged_relation``."""
    if not resources:
        return None
    return orjson.dumps([r.ARN for r in resources]).decode()


_Params = msgspec.defstruct(
    "_Params", [(_py_name(field), str | None, None) for field in REQUEST_PARAMETER_FIELDS], frozen=True, gc=False,
    module=__name__,
    rename={_py_name(field): field for field in REQUEST_PARAMETER_FIELDS},
)


class _Record(msgspec.Struct, gc=False):
    eventID: str | None = None
    eventTime: str | None = None
    eventSource: str | None = None
    eventName: str | None = None
    awsRegion: str | None = None
    errorCode: str | None = None
    recipientAccountId: str | None = None
    userIdentity: _Identity | None = None
    requestParameters: _Params | None = None  # type: ignore[valid-type]
    resources: tuple[_Resource, ...] | None = None


class _LogFile(msgspec.Struct, gc=False):
    Records: list[_Record] | None = None


_DECODER = msgspec.json.Decoder(_LogFile)
_NO_ISSUER = _Issuer()

# A group key: (eventSource, eventName, awsRegion, errorCode, recipientAccountId, who, requestParameters, resources),
# the last two as decoded (``_Params``, a tuple of ``_Resource``, or None), ``who`` as ``_who`` makes it; the general
# path builds the same structs from any JSON. ``write_staging`` flattens a key into ``sql.STAGED_COLUMNS``.


def _who(ui: _Identity | None) -> Any:
    """The caller's part of a group key: ``userIdentity.principalId`` is kept only when ``userIdentity.arn`` is absent
    (the SQL reads it nowhere else, and a role session's ID differs per session; tests/usage checks that it stays
    so). The fast path inlines this."""
    if ui is None:
        return None
    if ui.arn is None:
        return ui
    return (ui.type, ui.arn, ui.accountId, ui.invokedBy, ui.sessionContext)


def _who_columns(who: Any) -> tuple[str | None, ...]:
    """The staged identity columns (``sql.STAGED_COLUMNS`` ui_type to si_username) of a key's ``who``."""
    if who is None:
        return (None,) * 11
    if isinstance(who, _Identity):
        kind, principal_id, arn, account, invoked_by = who.type, who.principalId, who.arn, who.accountId, who.invokedBy
        session = who.sessionContext
    else:
        kind, arn, account, invoked_by, session = who
        principal_id = None
    si = (session.sessionIssuer if session is not None else None) or _NO_ISSUER
    # userIdentity.userName and the issuer's type, principalId and accountId: not read (``READ_IDENTITY_FIELDS``).
    return kind, principal_id, arn, account, invoked_by, None, None, None, si.arn, None, si.userName


def _fast_key(source: str | None, name: str | None, region: str | None, error: str | None, account: str | None,
              identity: tuple[str | None, ...] | None, session: bool, issuer: tuple[str | None, str | None] | None,
              params: tuple[str | None, ...] | None, arns: tuple[str | None, ...] | None) -> tuple[Any, ...]:
    """The group key of the C path (``_fastct``): the same structs msgspec decodes, made once per distinct key."""
    who: Any = None
    if identity is not None:
        kind, principal_id, arn, account_id, invoked_by = identity
        context = _Session(sessionIssuer=_Issuer(arn=issuer[0], userName=issuer[1]) if issuer is not None else None) \
            if session else None
        who = _Identity(type=kind, principalId=principal_id, arn=arn, accountId=account_id, invokedBy=invoked_by,
                        sessionContext=context) if arn is None else (kind, arn, account_id, invoked_by, context)
    return (source, name, region, error, account, who, _Params(*params) if params is not None else None,
            tuple(_Resource(ARN=a) for a in arns) if arns is not None else None)


def _load_fastct() -> Any:
    """The C path of the reader (``iamgraph/usage/_fastct.c``), or None: not built (no compiler at install time),
    or ``IAMGRAPH_PURE_INGEST`` set (the Python path alone, as CI runs one test module)."""
    if os.environ.get("IAMGRAPH_PURE_INGEST"):
        return None
    try:
        from iamgraph.usage import _fastct  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _fastct


_FASTCT = _load_fastct()
FAST_PATH = "C (_fastct)" if _FASTCT is not None else "Python (msgspec)"
"""Which reader runs where the C path accepts a file: said by ``bench_usage.py --breakdown``."""


# Why a record is skipped (counted in ``problems`` as kind ``bad_record`` with this detail, and in IngestStats).
NO_EVENT_TIME = "no eventTime"
BAD_EVENT_TIME = "eventTime is not a UTC timestamp"
BAD_JSON = "invalid JSON"
NOT_AN_OBJECT = "not a JSON object"
NOT_A_LOG_FILE = 'not a CloudTrail log file (no "Records" array)'
TOO_DEEP = "a value nested too deeply to keep as text"
"""orjson reads JSON nested up to 1,024 levels but writes at most 254: a record whose kept field is nested deeper
cannot become the text Athena would show, and is skipped (it used to stop the whole ingest)."""

# CloudTrail's eventTime is UTC, ``YYYY-MM-DDTHH:MM:SSZ``:
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
# (fractions of a second, up to microseconds, are accepted too: the store keeps microseconds). The clock's ranges
# are in the pattern (ASCII digits only: ``\d`` alone takes any script's); the calendar (no month 13, no February 30)
# is asked once per day.
_EVENT_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z\Z", re.ASCII)


@functools.lru_cache(maxsize=1024)
def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def event_time_problem(value: Any) -> str | None:
    """Why ``value`` cannot be an event's time (None when it can): checked per record, so one bad time costs
    only its record instead of the whole batch's SQL."""
    if value is None:
        return NO_EVENT_TIME
    if not isinstance(value, str):
        return BAD_EVENT_TIME
    m = _EVENT_TIME.match(value)
    if m is None or not _is_day(m[1]):
        return BAD_EVENT_TIME
    return None


_RECORDS_START = re.compile(rb'\A\s*\{\s*"Records"\s*:\s*\[')
_STRUCTURE = re.compile(rb'[\\"\[\]{},]')


def split_records(raw: bytes) -> Iterator[bytes]:
    """The elements of a log file's ``Records`` array as raw bytes, for a file that is not valid JSON as a whole.

    Brackets, braces and commas are followed outside strings only, so one broken record (a bad byte, a bad
    value, invalid UTF-8) is one bad element and its neighbours stay readable. Raises ``ValueError`` when the
    file does not start as a CloudTrail log file does (``{"Records": [``).
    """
    m = _RECORDS_START.match(raw)
    if m is None:
        raise ValueError("not a CloudTrail log file (no Records array)")
    depth = 0
    in_string = False
    escaped_at = -1
    start = m.end()
    for t in _STRUCTURE.finditer(raw, start):
        i = t.start()
        if i == escaped_at:
            continue
        c = raw[i]
        if in_string:
            if c == 0x5C:  # backslash: the next byte is escaped
                escaped_at = i + 1
            elif c == 0x22:
                in_string = False
            continue
        if c == 0x22:
            in_string = True
        elif c in b"[{":
            depth += 1
        elif c in b"]}":
            if depth == 0:  # the end of the Records array
                piece = raw[start:i].strip()
                if piece:
                    yield piece
                return
            depth -= 1
        elif c == 0x2C and depth == 0:
            yield raw[start:i].strip()
            start = i + 1
    piece = raw[start:].strip()
    if piece:  # a truncated file: what is left is one (bad) element
        yield piece


def _csv_text(value: str | int | None) -> str:
    """One staged field as ``csv.writer(quoting=QUOTE_NONNUMERIC)`` writes it, None (and 0) as the unquoted 0 the
    staging SQL reads as NULL."""
    if value is None or value == 0:
        return "0"
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return str(value)


def _params_json(params: Any) -> str | int:
    """The kept ``requestParameters`` fields (a ``_Params`` or None) as a JSON object (0, the staging NULL, when there
    are none)."""
    if params is None:
        return 0
    kept = {f: v for f, v in zip(REQUEST_PARAMETER_FIELDS, msgspec.structs.astuple(params), strict=True)
            if v is not None}
    return orjson.dumps(kept).decode() if kept else 0


def _gunzip(data: bytes) -> bytes:
    """ISA-L's inflate (``isal``), about twice zlib's speed on CloudTrail's files, checks the gzip CRC and length as
    zlib does; a file of more than one gzip member, or a truncated one, goes to ``gzip.decompress``, which reads
    every member and says what is wrong. https://github.com/pycompression/python-isal

    The output is limited to the size the gzip trailer gives (ISIZE, the last 4 bytes: the member's length modulo
    2**32, https://www.rfc-editor.org/rfc/rfc1952#section-2.3.1), plus one byte: measured on the benchmark's files,
    without a limit ISA-L grew its output in fresh memory each file (56,000 page faults and 0.17 CPU-s per 100 files,
    against none and 0.07). A trailer that says less than the member holds (a second member's, a file over 4 GiB, a
    forged one) stops the inflate short of the member's end: ``eof`` is then false and ``gzip.decompress`` reads the
    file, as for any file that is not exactly one member."""
    if data[:2] != b"\x1f\x8b":
        # zlib's own words for this ("Error -3 ... incorrect header check", ISA-L's "Error -4 Invalid gzip/zlib
        # wrapper found") do not say what the file is; gzip's first two bytes are 1f 8b (RFC 1952, section 2.3.1).
        raise ValueError("an empty file, not gzip" if not data else "not gzip (a CloudTrail log file is gzip-compressed "
                         "JSON; this file does not start with gzip's bytes 1f 8b)")
    d = isal_zlib.decompressobj(31)
    out = d.decompress(data, int.from_bytes(data[-4:], "little") + 1)
    if not d.eof or d.unused_data:
        return gzip.decompress(data)
    return out


class CloudTrailReader:
    """Reads CloudTrail files in Python (gzip + msgspec) into staging rows for the aggregation SQL.

    Each record is flattened to the Athena table's columns that the aggregation reads (``sql.STAGED_COLUMNS``);
    identical rows are collapsed into one with a count and the first and last event time, which the weighted
    form of the same SQL sums up. Three reductions keep rows identical where the SQL cannot tell them apart:
    ``requestParameters`` keeps only the fields the SQL reads, ``userIdentity`` and its session issuer only the
    fields the SQL reads (``READ_IDENTITY_FIELDS``), and ``userIdentity.principalId`` is kept only when
    ``userIdentity.arn`` is absent (the SQL reads it nowhere else; tests/usage checks that these stay so).
    """

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], list[Any]] = {}
        self._events: dict[str, list[Any]] = {}
        """eventID → its group, of the events this reader holds in Python (``events``)."""
        self._time_of: dict[str, str] = {}
        """eventID → its time (see ``_times``). Two flat dicts, not one of tuples: no object per event for the garbage
        collector."""
        self._pending_times: list[tuple[list[str], list[str]]] = []
        """The eventIDs and times of files read on the fast path, in order, not yet in ``_time_of``."""
        self._no_ids: list[tuple[list[Any], str]] = []
        """Records without an eventID held in Python (``_no_id``)."""
        self.duplicates = 0
        """Records skipped because their eventID was already counted by this reader."""
        self.bad: dict[str, int] = {}
        """Records skipped, by reason (``NO_EVENT_TIME``, ``BAD_EVENT_TIME``, ``BAD_JSON``, ``NOT_AN_OBJECT``)."""
        self._good_times: set[str] = set()
        """Event times already checked: a log file covers minutes, so its events share few distinct seconds."""
        self._grouper: Any = None
        """The C path (``_fastct.Grouper``), kept across this reader's files: its table of group keys, and the events
        it counted (their IDs, times and groups), which no Python object holds until ``_detach`` moves them here."""
        self.fast_files = 0
        """Files counted by the C path."""
        self.fast_refused = 0
        """Files the C path refused (read by the Python path)."""

    @property
    def events(self) -> dict[str, list[Any]]:
        """eventID → its group: what this reader counted, to deduplicate and to take back. Asking for it moves the C
        path's events into Python (``_detach``); a batch's transaction asks ``event_ids`` instead."""
        self._detach()
        return self._events

    @property
    def _no_id(self) -> list[tuple[list[Any], str]]:
        """Records without an eventID (counted, cannot be deduplicated), with their group and time: kept for
        ``drop``'s recomputation."""
        self._detach()
        return self._no_ids

    def event_ids(self) -> list[str]:
        """Every eventID this reader counted, in the order counted (read from the C path without moving its events
        into Python: most batches take nothing back)."""
        ids = list(self._events)
        if self._grouper is not None:
            ids += self._grouper.ids()
        return ids

    def _detach(self) -> None:
        """Moves the events the C path counted into this reader's Python dicts and lets its table go (the next file
        the C path reads starts a new one, which finds the groups by their keys): before anything reads or changes
        the events in Python (the Python path's reading, ``drop``, ``merge``, pickling for a worker's answer). The
        C path's events all come after those held here (a file read the Python way detaches first), so the order
        counted is kept."""
        grouper = self._grouper
        if grouper is None:
            return
        ids, groups, times, no_id = grouper.export()
        self._grouper = None
        self._events.update(zip(ids, groups, strict=True))
        self._time_of.update(zip(ids, times, strict=True))
        self._no_ids.extend(no_id)

    @property
    def _times(self) -> dict[str, str]:
        """eventID → its time, for ``drop`` to narrow a group's span: built only when asked, since most batches take
        nothing back (a dict of every event's time cost a tenth of the reading)."""
        self._detach()
        if self._pending_times:
            for ids, times in self._pending_times:
                self._time_of.update(zip(ids, times, strict=True))
            self._pending_times.clear()
        return self._time_of

    def _skip(self, reason: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1

    def add_file(self, data: bytes) -> int:
        """Add one ``.json.gz`` file's records; raises one of ``BAD_FILE_ERRORS`` on a bad file, always before
        adding any of its records (the file is decompressed and parsed, or its first element found, first), so a
        bad file leaves the reader as it was.

        A record that cannot be counted (no or a malformed ``eventTime``, a record that is not a JSON object or
        not valid JSON while its neighbours are) is skipped and counted in ``bad``; a record whose ``eventID``
        was already counted is skipped and counted in ``duplicates``.
        """
        raw = _gunzip(data)
        if _FASTCT is not None:
            fast = self._fast(raw)
            if fast is not None:
                return fast
        try:
            doc = _DECODER.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for invalid UTF-8
            try:
                whole = orjson.loads(raw)
            except (orjson.JSONDecodeError, UnicodeDecodeError):
                return self._add_pieces(raw)
            return self._add_general(whole)
        if doc.Records is None:
            # A .json.gz that is not a log file (a snapshot, an export) must not count as read: 0 events from it
            # would look like a quiet day. https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html
            raise ValueError(NOT_A_LOG_FILE)
        records = doc.Records
        times = [r.eventTime for r in records]
        ids = [r.eventID for r in records]
        if not self._all_new(times, ids):
            for r in records:
                self._add_record(r)
            return len(records)
        # Every record has a good time and an eventID this reader has not counted: no check per event, and the
        # eventIDs are recorded for the whole file at once, in file order.
        groups = self.groups
        counted: list[list[Any]] = []
        count = counted.append
        for r, t in zip(records, times, strict=True):
            ui = r.userIdentity
            # Inlined ``_who`` and ``_count``: this loop runs once per event.
            if ui is None:
                who: Any = None
            elif ui.arn is None:
                who = ui
            else:
                who = (ui.type, ui.arn, ui.accountId, ui.invokedBy, ui.sessionContext)
            key = (r.eventSource, r.eventName, r.awsRegion, r.errorCode, r.recipientAccountId, who,
                   r.requestParameters, r.resources)
            g = groups.get(key)
            if g is None:
                g = groups[key] = [t, t, 1]
            else:
                g[2] += 1
                if t < g[0]:
                    g[0] = t
                if t > g[1]:
                    g[1] = t
            count(g)
        # ``_all_new`` has checked that no ID and no time is None.
        self._events.update(zip(cast(list[str], ids), counted, strict=True))
        self._pending_times.append((cast(list[str], ids), cast(list[str], times)))
        return len(records)

    def _fast(self, raw: bytes) -> int | None:
        """The C path: the file's record count once it has counted the file exactly as the code below would, record
        by record (skipped records and duplicates included). It refuses (None) any file it is not sure of; nothing
        is changed then, and its events so far move into Python (``_detach``) for the Python path to read on."""
        grouper = self._grouper
        if grouper is None:
            grouper = self._grouper = _FASTCT.Grouper(REQUEST_PARAMETER_FIELDS, _fast_key)
        counts = grouper.read(raw, self.groups, self._events)
        if counts is None:
            self.fast_refused += 1
            self._detach()
            return None
        records, duplicates, no_time, bad_time = counts
        self.duplicates += duplicates
        for reason, n in ((NO_EVENT_TIME, no_time), (BAD_EVENT_TIME, bad_time)):
            if n:
                self.bad[reason] = self.bad.get(reason, 0) + n
        self.fast_files += 1
        return int(records)

    def _all_new(self, times: list[Any], ids: list[Any]) -> bool:
        """Does every record have a good time and an eventID neither repeated in the file nor counted before?

        Times are checked once per distinct string (a log file covers minutes, so its events share few distinct
        seconds); a file where this is false is read record by record (``_add_record``), which skips and counts."""
        if not self._times_good(set(times)):
            return False
        distinct_ids = set(ids)
        return len(distinct_ids) == len(ids) and None not in distinct_ids and self._events.keys().isdisjoint(
            distinct_ids)

    def _times_good(self, distinct_times: Iterable[Any]) -> bool:
        """Are these (distinct) event times all good (``event_time_problem``)? Each is checked once per reader."""
        good_times = self._good_times
        new = set(distinct_times) - good_times
        for t in new:
            if not isinstance(t, str) or event_time_problem(t) is not None:
                return False
            good_times.add(t)
        return True

    def _add_record(self, r: _Record) -> None:
        """One record of the fast path, checked: a bad time is skipped and counted, an eventID counted before is a
        duplicate."""
        t = r.eventTime
        if t not in self._good_times:
            if t is None or event_time_problem(t) is not None:
                self._skip(NO_EVENT_TIME if t is None else BAD_EVENT_TIME)
                return
            self._good_times.add(t)
        eid = r.eventID
        if eid is not None and eid in self._events:
            self.duplicates += 1
            return
        self._count((r.eventSource, r.eventName, r.awsRegion, r.errorCode, r.recipientAccountId,
                     _who(r.userIdentity), r.requestParameters, r.resources), t, eid)

    def _add_pieces(self, raw: bytes) -> int:
        """A file that is not valid JSON as a whole: each record decoded on its own (``split_records``)."""
        n = 0
        for piece in split_records(raw):
            n += 1
            try:
                rec = orjson.loads(piece)
            except (orjson.JSONDecodeError, UnicodeDecodeError):
                self._skip(BAD_JSON)
                continue
            self._add_general_record(rec)
        return n

    def merge(self, part: CloudTrailReader) -> None:
        """Add what another reader read as if this reader had read it next: ``part`` (one file, decoded in a worker
        process) is consumed. Records whose eventID this reader already counted are taken back from ``part``
        first and counted as duplicates, so the result equals reading the files in the same order here."""
        self._detach()
        seen = part.events.keys() & self._events.keys()
        self.duplicates += part.duplicates + (part.drop(seen) if seen else 0)
        for reason, n in part.bad.items():
            self.bad[reason] = self.bad.get(reason, 0) + n
        groups = self.groups
        into: dict[int, list[Any]] = {}
        """id of a group of ``part`` -> the group of this reader it is counted in."""
        for key, g in part.groups.items():
            mine = groups.get(key)
            if mine is None:
                mine = groups[key] = g
            else:
                mine[2] += g[2]
                if g[0] < mine[0]:
                    mine[0] = g[0]
                if g[1] > mine[1]:
                    mine[1] = g[1]
            into[id(g)] = mine
        # Per event, so in C: each eventID to the group it now counts in.
        self._events.update(zip(part.events.keys(), map(into.__getitem__, map(id, part.events.values())),
                                strict=True))
        self._pending_times.extend(part._pending_times)
        self._time_of.update(part._time_of)
        self._no_ids.extend((into[id(g)], t) for g, t in part._no_id)

    def drop(self, event_ids: Iterable[str]) -> int:
        """Take back the records with these eventIDs (already in the store); returns how many were taken back."""
        event_ids = event_ids if isinstance(event_ids, list) else list(event_ids)
        if not event_ids:
            return 0
        # Groups may be deleted below: the C path's table, which holds them, goes (its events move into Python).
        self._detach()
        touched: dict[int, list[Any]] = {}
        n = 0
        for eid in event_ids:
            g = self._events.pop(eid, None)
            if g is None:
                continue
            del self._times[eid]
            g[2] -= 1
            touched[id(g)] = g
            n += 1
        if not touched:
            return 0
        # First and last time of what remains of each touched group.
        spans: dict[int, list[str]] = {}
        times = self._times
        for g, t in (*((g, times[e]) for e, g in self._events.items()), *self._no_ids):
            if id(g) in touched:
                span = spans.get(id(g))
                if span is None:
                    spans[id(g)] = [t, t]
                else:
                    span[0] = min(span[0], t)
                    span[1] = max(span[1], t)
        for key in [k for k, g in self.groups.items() if id(g) in touched]:
            g = self.groups[key]
            if g[2] <= 0:
                del self.groups[key]
            else:
                g[0], g[1] = spans[id(g)]
        return n

    def add_records(self, records: list[Any]) -> int:
        """Add already-parsed records (LookupEvents' ``CloudTrailEvent`` documents)."""
        self._detach()
        return self._add_general({"Records": records})

    def _count(self, key: tuple[Any, ...], t: str, eid: str | None) -> None:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = [t, t, 1]
        else:
            g[2] += 1
            if t < g[0]:
                g[0] = t
            if t > g[1]:
                g[1] = t
        if eid is not None:
            self._events[eid] = g
            self._times[eid] = t
        else:
            self._no_ids.append((g, t))

    def _add_general(self, doc: Any) -> int:
        """Any JSON: values become Athena's text; a record that is not an object is skipped and counted."""
        records = doc.get("Records") if isinstance(doc, dict) else None
        if not isinstance(records, list):
            raise ValueError(NOT_A_LOG_FILE)
        for rec in records:
            self._add_general_record(rec)
        return len(records)

    def _add_general_record(self, rec: Any) -> None:
        if not isinstance(rec, dict):
            self._skip(NOT_AN_OBJECT)
            return
        t = rec.get("eventTime")
        if not (isinstance(t, str) and t in self._good_times):
            problem = event_time_problem(t)
            if problem is not None or not isinstance(t, str):
                self._skip(problem or BAD_EVENT_TIME)
                return
            self._good_times.add(t)
        eid = rec.get("eventID")
        try:
            eid = _text(eid) if eid is not None else None
        except orjson.JSONEncodeError:
            self._skip(TOO_DEEP)
            return
        if eid is not None and eid in self._events:
            self.duplicates += 1
            return
        ui = rec.get("userIdentity")
        rp = rec.get("requestParameters")
        res = rec.get("resources")
        try:
            identity = None
            if isinstance(ui, dict):
                sc = ui.get("sessionContext")
                si = sc.get("sessionIssuer") if isinstance(sc, dict) else None
                issuer = _Issuer(arn=_text(si.get("arn")), userName=_text(si.get("userName"))) \
                    if isinstance(si, dict) else None
                identity = _Identity(type=_text(ui.get("type")), principalId=_text(ui.get("principalId")),
                                     arn=_text(ui.get("arn")), accountId=_text(ui.get("accountId")),
                                     invokedBy=_text(ui.get("invokedBy")),
                                     sessionContext=_Session(sessionIssuer=issuer) if issuer is not None else None)
            key = (
                *(_text(rec.get(f)) for f in ("eventSource", "eventName", "awsRegion", "errorCode",
                                               "recipientAccountId")),
                _who(identity),
                _Params(*(_text(rp.get(f)) for f in REQUEST_PARAMETER_FIELDS)) if isinstance(rp, dict) else None,
                tuple(_Resource(ARN=_text(r.get("ARN")) if isinstance(r, dict) else None) for r in res)
                if isinstance(res, list) else None,
            )
        except orjson.JSONEncodeError:  # a resources[] ARN or a kept field nested past what orjson writes
            self._skip(TOO_DEEP)
            return
        self._count(key, t, eid)

    def write_staging(self, path: str) -> int:
        """Write the collapsed rows as CSV for ``sql.staged_relation``; returns the row count."""
        # Written as ``csv.writer(quoting=QUOTE_NONNUMERIC)`` would (every string quoted, quotes doubled), except that
        # None is an unquoted 0, which the SQL alone reads as NULL (the only other unquoted values are the counts,
        # never 0; Python 3.11's csv cannot leave None unquoted). Many groups share their values, caller, parameters
        # (same bucket, same key) and resources: each is made CSV text once, where csv.writer scanned every field
        # of every row for characters to quote (a fifth of a batch's transaction on the benchmark's files).
        scalars: dict[str | None, str] = {None: "0"}
        whos: dict[Any, str] = {}
        params: dict[Any, str] = {}
        arns: dict[Any, str] = {}

        def text(value: str | None) -> str:
            hit = scalars.get(value)
            if hit is None:
                hit = scalars[value] = _csv_text(value)
            return hit

        lines = []
        for key, g in self.groups.items():
            source, name, region, error, account, who, rp, res = key
            who_text = whos.get(who)
            if who_text is None:
                who_text = whos[who] = ",".join(_csv_text(v) for v in _who_columns(who))
            rp_text = params.get(rp)
            if rp_text is None:
                rp_text = params[rp] = _csv_text(_params_json(rp))
            res_text = arns.get(res)
            if res_text is None:
                res_text = arns[res] = _csv_text(_arns(res))
            # Event times passed ``event_time_problem``: digits, '-', 'T', ':', '.' and 'Z', nothing to double.
            lines.append(f'"{g[0]}","{g[1]}",{g[2]},{text(source)},{text(name)},{text(region)},{text(error)},'
                         f"{text(account)},{who_text},{res_text},{rp_text}\n")
        with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write("".join(lines))
        return len(self.groups)


# ---------------------------------------------------------------- reading files, in this process or a pool


@dataclass(slots=True)
class FileRead:
    """One file read: its SHA-256 and either its bytes still to decode (read in this process), its records (a
    reader of that file alone, decoded in a worker process) or why it cannot be read."""

    sha256: str
    part: CloudTrailReader | None
    error: str | None
    pid: int
    """The process that read it (this one, or a worker of the pool)."""
    data: bytes | None = None
    """The file's bytes, not decoded yet: the caller adds them to its own reader (``CloudTrailReader.add_file``),
    which saves building a reader per file and merging it."""


def bad_file_reason(exc: BaseException) -> str:
    """What the store records for a bad file: the first line of the error."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:500]


def read_file(local: str, *, decode: bool = True) -> FileRead:
    """Read (and, with ``decode``, decode) one local file; a file that cannot be read or decoded is an error,
    never an exception.

    Module-level so that a process pool can run it (``read_in_order``); pure: the same bytes give the same result
    wherever it runs."""
    try:
        data = Path(local).read_bytes()
    except OSError as exc:
        return FileRead(sha256=hashlib.sha256(b"").hexdigest(), part=None, error=f"cannot read: {exc.strerror or exc}",
                        pid=os.getpid())
    # The hash of bytes already in memory costs little next to decompressing them.
    sha = hashlib.sha256(data).hexdigest()
    if not decode:
        return FileRead(sha256=sha, part=None, error=None, pid=os.getpid(), data=data)
    part = CloudTrailReader()
    try:
        part.add_file(data)
    except BAD_FILE_ERRORS as exc:
        return FileRead(sha256=sha, part=None, error=bad_file_reason(exc), pid=os.getpid())
    part._good_times.clear()  # a cache of this file's times; nothing to send back
    part._detach()  # the C path's table: not picklable (its events move into the reader), the parent has its own
    return FileRead(sha256=sha, part=part, error=None, pid=os.getpid())


PARALLEL_MIN_BYTES = 16 * 1024 * 1024
"""Compressed bytes read in this process before the worker processes start (about 200,000 events of the
benchmark's files): an ingest smaller than that, e.g. a demo organization's few thousand small files, is over
before a pool would pay for its start and for sending every decoded file back."""


def default_workers() -> int:
    """Worker processes for decoding: the CPUs this process may run on, at most 8 (the parent merges what they
    decode; beyond that it becomes the bottleneck)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork on Linux, spawn elsewhere.

    A forked worker runs only ``read_file`` (zlib, msgspec and hashlib on bytes it reads itself): it never touches
    the parent's DuckDB connection or a lock that one of DuckDB's threads might hold, and ends with ``os._exit``
    (multiprocessing's way), so no destructor of the inherited connection runs. It starts at once with
    everything imported, where a spawned one imports this module and its dependencies again (1.5 s of CPU per
    worker here, botocore and DuckDB included) and re-runs the caller's main module, which a script without an
    ``if __name__ == "__main__"`` guard does not survive (the pool then breaks, and ``read_in_order`` reads the
    rest here). macOS and Windows spawn: fork is not safe there.
    https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods"""
    if sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def read_in_order(files: Iterable[LogFile], workers: int, *, done: Callable[[LogFile], None] | None = None,
                  min_parallel_bytes: int = PARALLEL_MIN_BYTES,
                  decode_here: bool = True) -> Iterator[tuple[LogFile, FileRead]]:
    """Each file with its ``read_file`` result, in the order given.

    The first ``min_parallel_bytes`` are read here; after that, with ``workers`` > 1, files are decoded by a
    pool of that many processes with at most ``2 * workers`` files in flight (bounded memory), and the results
    are still given back in the order of ``files``, so what the caller builds from them does not depend on
    which process finished first. ``done(f)`` is called once ``f``'s bytes are no longer needed. A worker that
    dies (the pool breaks) does not lose files: they are read here instead. Files read here are decoded only
    with ``decode_here``; without it their bytes come back (``FileRead.data``) for the caller to decode.
    """
    pool: ProcessPoolExecutor | None = None
    broken = False
    pending: deque[tuple[LogFile, Future[FileRead]]] = deque()
    seen_bytes = 0

    def finish(f: LogFile, fut: Future[FileRead]) -> FileRead:
        nonlocal broken
        assert f.local is not None
        try:
            result = fut.result()
        except BrokenProcessPool:
            broken = True
            result = read_file(f.local, decode=decode_here)
        if done is not None:
            done(f)
        return result

    try:
        for f in files:
            assert f.local is not None
            if pool is None and not broken and workers > 1 and seen_bytes >= min_parallel_bytes:
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())
            seen_bytes += f.size
            if pool is None or broken:
                while pending:  # the pool broke: what it still holds comes first, in order
                    g, fut = pending.popleft()
                    yield g, finish(g, fut)
                result = read_file(f.local, decode=decode_here)
                if done is not None:
                    done(f)
                yield f, result
                continue
            pending.append((f, pool.submit(read_file, f.local)))
            while len(pending) >= 2 * workers:
                g, fut = pending.popleft()
                yield g, finish(g, fut)
        while pending:
            g, fut = pending.popleft()
            yield g, finish(g, fut)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- the ingest


class Ingestor:
    """Ingests CloudTrail files into a store: files are read in Python (``CloudTrailReader``), the aggregation
    SQL runs on DuckDB over the staged rows, and each batch of files is one transaction."""

    def __init__(
        self,
        store: UsageStore,
        *,
        mapper: EventMapper | None = None,
        partition: str = "aws",
        batch_bytes: int = BATCH_BYTES,
        workers: int | None = None,
    ) -> None:
        self.store = store
        self.workers = default_workers() if workers is None else max(1, workers)
        """Processes decoding files (None: ``default_workers()``; 0 or 1: all in this process); see
        ``read_in_order``."""
        self.min_parallel_bytes = PARALLEL_MIN_BYTES
        self.mapper = mapper or EventMapper()
        self.resolver = ResourceResolver(get_catalog(), partition)
        self.partition = partition
        self.batch_bytes = batch_bytes
        self._sql = aggregation_sql(staged_relation(), dialect=Dialect.DUCKDB, partition=partition, weighted=True)
        self._derivations = _Derivations(self.resolver)

    def aggregate_reader(self, reader: CloudTrailReader) -> list[tuple[Any, ...]]:
        """Run the aggregation SQL over what ``reader`` has read (``sql.OUTPUT_COLUMNS`` rows)."""
        if not reader.groups:
            return []
        fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="iamgraph-ct-")
        os.close(fd)
        try:
            reader.write_staging(tmp)
            return self.store.con.execute(self._sql, {"staged": tmp}).fetchall()
        finally:
            os.unlink(tmp)

    def aggregate_files(self, local_paths: list[str]) -> list[tuple[Any, ...]]:
        """The aggregate of some local files (raises on the first unreadable one)."""
        reader = CloudTrailReader()
        for path in local_paths:
            reader.add_file(Path(path).read_bytes())
        return self.aggregate_reader(reader)

    def ingest(
        self,
        files: Iterable[LogFile],
        *,
        since: date | None = None,
        until: date | None = None,
        fetch: Callable[[LogFile], LogFile] | None = None,
    ) -> IngestStats:
        """Ingest the files in the window that are not done yet. ``fetch`` makes an S3 object local."""
        with without_cyclic_gc(), self.store.one_thread():
            return self._ingest(files, since=since, until=until, fetch=fetch)

    def _ingest(
        self,
        files: Iterable[LogFile],
        *,
        since: date | None,
        until: date | None,
        fetch: Callable[[LogFile], LogFile] | None,
    ) -> IngestStats:
        stats = {"seen": 0, "done": 0, "outside": 0, "ingested": 0, "bad": 0, "written": 0, "duplicate": 0}
        bad_records: dict[str, int] = {}
        tally = _Tally()
        bad: list[tuple[str, str]] = []
        entries: list[FileEntry] = []
        reader = CloudTrailReader()
        size = 0
        known_paths, known_shas = self.store.known_files()

        def todo() -> Iterator[LogFile]:
            for f in files:
                stats["seen"] += 1
                if not in_window(f.day, since, until):
                    stats["outside"] += 1
                    continue
                if known_paths.get(f.path) == f.size:
                    stats["done"] += 1
                    continue
                yield fetch(f) if fetch is not None else f

        # Files are decoded in parallel (``read_in_order``) but taken here one by one in the order given, so the
        # batches, the deduplication and the store are the same as reading them one after the other. A file read
        # here is decoded straight into the batch's reader: ``add_file`` raises before adding anything.
        for f, read in read_in_order(todo(), self.workers, done=lambda f: self._cleanup([f], fetch),
                                     min_parallel_bytes=self.min_parallel_bytes, decode_here=False):
            if read.error is None and read.sha256 in known_shas:
                # The same bytes under another name (a copied or re-delivered file): counting it would double.
                stats["done"] += 1
                continue
            error = read.error if read.data is not None or read.part is not None else read.error or "unreadable"
            if read.data is not None:
                try:
                    reader.add_file(read.data)
                except BAD_FILE_ERRORS as exc:
                    error = bad_file_reason(exc)
            elif read.part is not None:
                reader.merge(read.part)
            if error is None:
                known_shas.add(read.sha256)
                stats["ingested"] += 1
                entries.append(FileEntry(path=f.path, size=f.size, mtime=f.mtime, sha256=read.sha256, status="ok"))
            else:
                stats["bad"] += 1
                bad.append((f.path, error))
                tally.problem("bad_file", f.path, 1)
                entries.append(
                    FileEntry(path=f.path, size=f.size, mtime=f.mtime, sha256=read.sha256, status="bad", error=error)
                )
            size += f.size
            if size >= self.batch_bytes:
                self._flush(reader, entries, tally, stats, bad_records)
                reader, entries, size = CloudTrailReader(), [], 0
        if entries:
            self._flush(reader, entries, tally, stats, bad_records)
        return IngestStats(
            files_seen=stats["seen"],
            files_ingested=stats["ingested"],
            files_skipped_done=stats["done"],
            files_outside_window=stats["outside"],
            files_bad=stats["bad"],
            events=tally.events,
            events_unattributed=tally.unattributed,
            events_unmapped=tally.unmapped,
            events_duplicate=stats["duplicate"],
            records_written=stats["written"],
            bad_files=tuple(bad),
            bad_records=tuple(sorted(bad_records.items())),
        )

    @staticmethod
    def _cleanup(files: list[LogFile], fetch: Callable[[LogFile], LogFile] | None) -> None:
        if fetch is None:
            return
        for f in files:
            if f.local and f.local != f.path:
                Path(f.local).unlink(missing_ok=True)

    def _flush(
        self,
        reader: CloudTrailReader,
        entries: list[FileEntry],
        tally: _Tally,
        stats: dict[str, int],
        bad_records: dict[str, int],
    ) -> None:
        """One transaction: the batch's usage rows, its problem counts, its event IDs and the record of its files.

        Events whose eventID the store already holds (an organization trail and an account trail deliver the same
        event; an earlier run counted it) are taken back before the aggregation, so each event counts once.
        """
        part = _Tally(problems=tally.problems)
        tally.problems = None
        self.store.begin()
        try:
            # The batch's IDs are recorded here, those counted before are taken back: the reader's events after
            # ``drop`` are exactly the IDs the store did not hold.
            duplicates = reader.duplicates + reader.drop(self.store.claim_event_ids(reader.event_ids()))
            for reason, n in reader.bad.items():
                part.problem("bad_record", reason, n)
            stats["written"] += self._store_aggregate(reader, part)
            self.store.add_problems(part.problems or {})
            self.store.record_files(entries)
            self.store.commit()
        except BaseException:
            self.store.rollback()
            raise
        stats["duplicate"] += duplicates
        for reason, n in reader.bad.items():
            bad_records[reason] = bad_records.get(reason, 0) + n
        tally.events += part.events
        tally.unattributed += part.unattributed
        tally.unmapped += part.unmapped

    def _store_aggregate(self, reader: CloudTrailReader, tally: _Tally) -> int:
        """The aggregation SQL over what ``reader`` read, mapped to IAM actions and upserted, as
        ``rows_from_aggregate`` and ``UsageStore.merge_usage`` do, without the aggregate leaving DuckDB: Python sees
        each distinct set of facts once (``_Derivations``), the callers that cannot be attributed and the issuers of
        role sessions; the usage rows are a join in DuckDB. Returns the usage rows written.

        For the benchmark's first 100 files: 11,172 sets of facts to Python instead of 34,249 aggregate rows, and
        no 30,000-row JSON-lines file back."""
        if not reader.groups:
            return 0
        con = self.store.con
        fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="iamgraph-ct-")
        os.close(fd)
        try:
            reader.write_staging(tmp)
            con.execute(f"CREATE OR REPLACE TEMP TABLE ct_aggregate AS SELECT *, {_FID} AS fid, "
                        f"{_ATTRIBUTED} AS attributed FROM ({self._sql})", {"staged": tmp})
        finally:
            os.unlink(tmp)
        facts = con.execute(_FACTS_SQL).fetchall()
        if len({f[0] for f in facts}) < len(facts):  # two sets of facts with one hash: row by row instead
            aggregate = con.execute(f"SELECT {', '.join(OUTPUT_COLUMNS)} FROM ct_aggregate").fetchall()
            written = self.store.merge_usage(
                rows_from_aggregate(aggregate, self.mapper, self.resolver, tally, self._derivations))
        else:
            written = self._store_facts(facts, tally)
        # On an error the caller's rollback takes the temporary table away with the rest (a DROP in a ``finally``
        # would fail in the aborted transaction and hide the error).
        con.execute("DROP TABLE ct_aggregate")
        return written

    def _store_facts(self, facts: list[tuple[Any, ...]], tally: _Tally) -> int:
        """``_store_aggregate`` once each ``fid`` of ``facts`` (``_FACTS_SQL``) is known to stand for one set."""
        con = self.store.con
        # Events, and those that cannot be attributed, by which of the caller's fields are missing.
        for *empty, n in con.execute(
                "SELECT coalesce(identity_type, '') = '', coalesce(principal, '') = '', coalesce(event_source, '') = '', "
                "coalesce(event_name, '') = '', sum(n) FROM ct_aggregate GROUP BY ALL").fetchall():
            tally.events += int(n)
            missing = _missing_who(*(not e for e in empty))
            if missing is not None:
                tally.unattributed += int(n)
                tally.problem("unattributed", missing, int(n))
        # Each set of facts of the attributable rows (in ``sql.OUTPUT_COLUMNS``' places, the other columns NULL) with
        # its events, mapped to IAM actions and derived once.
        fids: list[int] = []
        actions: list[str] = []
        resources: list[str] = []
        certain: list[bool] = []
        for fid, n, *raw in facts:
            event_source, event_name = raw[_SOURCE_AT], raw[_SOURCE_AT + 1]
            mapping = self.mapper.map(event_source, event_name)
            if _unmapped(mapping, f"{event_source} {event_name}", int(n), tally):
                continue
            pairs, unknown_shape = self._derivations.of(raw, mapping.actions)
            if unknown_shape:
                tally.problem("unknown_shape", f"{event_source} {event_name}: {unknown_shape}", int(n))
            sure = mapping.status is MappingStatus.MAPPED
            for action, resource in pairs:
                fids.append(fid)
                actions.append(action)
                resources.append(resource)
                certain.append(sure)
        # The permission set of IAM Identity Center role sessions, by the role's name (the session issuer's).
        psets = {name: ps for (name,) in con.execute(
            "SELECT DISTINCT issuer_name FROM ct_aggregate WHERE attributed AND identity_type = 'AssumedRole'"
        ).fetchall() if (ps := permission_set_of(name)) is not None}
        return self.store.merge_usage_query(_USAGE_SQL, [fids, actions, resources, certain, list(psets),
                                                         list(psets.values())])

    def ingest_reader(self, reader: CloudTrailReader) -> IngestStats:
        """Store what ``reader`` read (LookupEvents' records) in one transaction, deduplicated like log files."""
        stats = {"written": 0, "duplicate": 0}
        tally = _Tally()
        bad_records: dict[str, int] = {}
        self._flush(reader, [], tally, stats, bad_records)
        return IngestStats(
            events=tally.events,
            events_unattributed=tally.unattributed,
            events_unmapped=tally.unmapped,
            events_duplicate=stats["duplicate"],
            records_written=stats["written"],
            bad_records=tuple(sorted(bad_records.items())),
        )

    def ingest_aggregate(self, aggregate: Iterable[Sequence[Any]]) -> IngestStats:
        """Store an aggregate computed elsewhere (Athena, LookupEvents) in one transaction."""
        tally = _Tally()
        rows = rows_from_aggregate(aggregate, self.mapper, self.resolver, tally, self._derivations)
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
    workers: int | None = None,
) -> IngestStats:
    """Ingest a local directory (or file) or an ``s3://bucket/prefix``; ``workers`` as ``Ingestor``'s."""
    ingestor = Ingestor(store, mapper=mapper, batch_bytes=batch_bytes, workers=workers)
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
