"""CloudTrail records → ``CallEvent``s, one per record.

The usage store keeps an aggregate (no event ids, source IPs or ``readOnly``), which alerts need, so the
records are read here. Everything else is the usage layer's: the file layout and dates (``usage.ingest``),
eventSource/eventName → IAM action (``usage.mapping.EventMapper``) and the error codes that mean "denied"
(``usage.sql.DENIED_ERROR_CODES``). Attribution follows the usage store's rule (see docs/usage.md) so a
principal has the same name in the store and in an alert.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from iamgraph.catalog import AccessLevel, get_catalog
from iamgraph.detect.types import CallEvent
from iamgraph.errors import InputError
from iamgraph.usage.ingest import LogFile, local_files
from iamgraph.usage.mapping import EventMapper
from iamgraph.usage.sql import DENIED_ERROR_CODES

_DENIED = frozenset(DENIED_ERROR_CODES)
_MUTATING_LEVELS = frozenset({AccessLevel.WRITE, AccessLevel.PERMISSIONS_MANAGEMENT, AccessLevel.TAGGING})


class LogReadError(InputError):
    """A CloudTrail file that cannot be read (corrupt gzip, not JSON, no ``Records``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BadFile:
    path: str
    reason: str


def parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def principal_of(ui: dict[str, Any]) -> str | None:
    """The usage store's name for the caller (docs/usage.md, "Attribution")."""
    kind = ui.get("type")
    issuer = ((ui.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    if kind in ("AssumedRole", "FederatedUser"):
        return issuer or ui.get("arn")
    if kind == "AWSService":
        return "service:" + (ui.get("invokedBy") or "unknown")
    if kind == "AWSAccount":
        return "account:" + str(ui.get("accountId")) if ui.get("accountId") else None
    if ui.get("arn"):
        return str(ui["arn"])
    if kind and ui.get("principalId"):
        return f"{str(kind).lower()}:{ui['principalId']}"
    return None


class EventReader:
    """Reads CloudTrail files into ``CallEvent``s; keeps the mapper's cache across files."""

    def __init__(self, mapper: EventMapper | None = None) -> None:
        self._mapper = mapper or EventMapper()
        self._cat = get_catalog()
        self.unattributed = 0
        self.bad_files: list[BadFile] = []

    def _mutating(self, read_only: bool | None, actions: tuple[str, ...]) -> bool:
        if read_only is not None:
            return not read_only
        # No readOnly in the record (older records, some services): fall back on the catalog's access level.
        return any(self._cat.access_level(a) in _MUTATING_LEVELS for a in actions)

    def event(self, rec: dict[str, Any], file: str | None = None) -> CallEvent | None:
        ui = rec.get("userIdentity") or {}
        principal = principal_of(ui) if isinstance(ui, dict) else None
        source, name, when = rec.get("eventSource"), rec.get("eventName"), rec.get("eventTime")
        if not principal or not source or not name or not when or not isinstance(ui, dict):
            self.unattributed += 1
            return None
        mapping = self._mapper.map(str(source), str(name))
        ro = rec.get("readOnly")
        read_only = (
            ro
            if isinstance(ro, bool)
            else ({"true": True, "false": False}.get(ro) if isinstance(ro, str) else None)
        )
        err = rec.get("errorCode")
        try:
            t = parse_time(str(when))
        except ValueError:
            self.unattributed += 1
            return None
        return CallEvent(
            event_id=str(rec.get("eventID") or rec.get("requestID") or f"{file}#{when}#{name}"),
            time=t,
            principal=principal,
            identity_type=str(ui.get("type") or "Unknown"),
            event_source=str(source),
            event_name=str(name),
            actions=mapping.actions,
            region=rec.get("awsRegion"),
            source_ip=rec.get("sourceIPAddress"),
            source_account=ui.get("accountId"),
            recipient_account=rec.get("recipientAccountId") or ui.get("accountId"),
            read_only=read_only,
            mutating=self._mutating(read_only, mapping.actions),
            error_code=err,
            denied=err in _DENIED,
            invoked_by=ui.get("invokedBy"),
            file=file,
        )

    def read_file(self, path: str) -> list[CallEvent]:
        """The events of one ``.json.gz`` (or plain ``.json``) file; a bad file raises LogReadError."""
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            doc = json.loads(text)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
            raise LogReadError(f"cannot read the CloudTrail file: {exc}", source=path) from None
        records = doc.get("Records") if isinstance(doc, dict) else None
        if not isinstance(records, list):
            raise LogReadError("not a CloudTrail file: no Records array", source=path)
        out = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                self.unattributed += 1
                continue
            ev = self.event(rec, file=f"{path}#Records[{i}]")
            if ev is not None:
                out.append(ev)
        return out

    def read_files(self, files: Iterable[LogFile]) -> Iterator[CallEvent]:
        """Events of every readable file; unreadable ones are recorded in ``bad_files`` (never silently)."""
        for f in files:
            try:
                yield from self.read_file(f.local or f.path)
            except LogReadError as exc:
                self.bad_files.append(BadFile(path=f.path, reason=exc.message))


def files_between(root: str, since: datetime, until: datetime) -> list[LogFile]:
    """Log files that can hold events in [since, until].

    CloudTrail delivers a file some minutes after its events and names it by delivery date, so one day of
    slack either side keeps events from around midnight; the events themselves are filtered by ``eventTime``.
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/how-cloudtrail-works.html
    """
    lo: date = (since - timedelta(days=1)).date()
    hi: date = (until + timedelta(days=1)).date()
    return [f for f in local_files(root) if f.day is None or lo <= f.day <= hi]
