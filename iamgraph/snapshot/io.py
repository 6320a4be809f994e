"""Read and write snapshots as ``.json.gz`` (or plain ``.json``), atomically, with a version gate."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import zlib
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ValidationError

from iamgraph.errors import SnapshotError, SnapshotVersionError
from iamgraph.files import atomic_write_bytes as atomic_write_bytes  # the one atomic writer, re-exported
from iamgraph.snapshot.model import SCHEMA_VERSION, Snapshot


def content_hash(snapshot: Snapshot) -> str:
    """sha256 over the canonical JSON of the snapshot without its own hash field."""
    data = snapshot.model_dump(mode="json", exclude={"content_hash"})
    return "sha256:" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def write_snapshot(snapshot: Snapshot, path: str | os.PathLike[str]) -> Snapshot:
    """Write atomically; gzip when the name ends in ``.gz``. Returns the snapshot with its hash set."""
    try:
        # One dump serves both the hash (over everything but the hash) and the file.
        data = snapshot.model_dump(mode="json", exclude={"content_hash"})
        digest = "sha256:" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
        raw = orjson.dumps({**data, "content_hash": digest})
    except orjson.JSONEncodeError as exc:
        # orjson holds integers to 64 bits (a policy could hold a longer number); say so instead of crashing.
        raise SnapshotError(f"{path}: the snapshot cannot be written as JSON: {exc}") from None
    if str(path).endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    try:
        atomic_write_bytes(path, raw)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot write the snapshot: {exc.strerror}") from None
    return snapshot.model_copy(update={"content_hash": digest})


def _major_minor(version: Any, source: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    if m is None:
        raise SnapshotError(f"{source}: schema_version {version!r} is not MAJOR.MINOR")
    return int(m.group(1)), int(m.group(2))


def _prune_unknown(data: Any, annotation: Any) -> Any:
    """Drop the fields this reader does not know, walking the model's type annotations.

    Used only for a newer *minor* schema: by the versioning rule its additions are optional fields
    that an older reader may ignore (docs/snapshot-format.md, "Versioning").
    """
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                data = _prune_unknown(data, arg)
        return data
    if origin is list and isinstance(data, list):
        (item,) = get_args(annotation) or (Any,)
        return [_prune_unknown(x, item) for x in data]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(data, dict):
        fields = annotation.model_fields
        return {k: _prune_unknown(v, fields[k].annotation) for k, v in data.items() if k in fields}
    return data


def snapshot_from_dict(data: Any, *, source: str = "<snapshot>") -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotError(f"{source}: a snapshot is a JSON object, not {type(data).__name__}")
    version = data.get("schema_version")
    if version is None:
        raise SnapshotError(
            f"{source}: no schema_version: this is not an iamgraph snapshot "
            "(to load `aws iam get-account-authorization-details` output, use `iamgraph snapshot import`)"
        )
    major, minor = _major_minor(version, source)
    my_major, my_minor = _major_minor(SCHEMA_VERSION, "SCHEMA_VERSION")
    if major > my_major:
        raise SnapshotVersionError(
            f"{source}: snapshot schema {version} is newer than this iamgraph understands ({SCHEMA_VERSION}); "
            "upgrade iamgraph to read it"
        )
    if major < my_major:
        raise SnapshotVersionError(
            f"{source}: snapshot schema {version} is older than this iamgraph reads ({SCHEMA_VERSION}); "
            "collect or import it again"
        )
    if minor > my_minor:
        data = _prune_unknown(data, Snapshot)
    try:
        return Snapshot.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SnapshotError(
            f"{source}: invalid snapshot at {loc}: {first['msg']} ({exc.error_count()} error(s) in all)"
        ) from None


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    return read_snapshot_checked(path)[0]


def read_snapshot_checked(path: str | os.PathLike[str]) -> tuple[Snapshot, bool | None]:
    """Read a snapshot and say whether its stored ``content_hash`` matches its content (None: no hash).

    The check runs on the file's own JSON, so it also holds for a newer minor schema whose extra
    fields this reader drops.
    """
    data, source = _load_json(path)
    snapshot = snapshot_from_dict(data, source=source)
    stored = data.get("content_hash") if isinstance(data, dict) else None
    if not stored:
        return snapshot, None
    body = {k: v for k, v in data.items() if k != "content_hash"}
    try:
        actual = "sha256:" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except orjson.JSONEncodeError:
        return snapshot, False
    return snapshot, actual == stored


def _load_json(path: str | os.PathLike[str]) -> tuple[Any, str]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{p}: no such snapshot file") from None
    except OSError as exc:
        raise SnapshotError(f"{p}: cannot read: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise SnapshotError(f"{p}: corrupt or truncated gzip data ({exc})") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{p}: invalid JSON: {exc}") from None
    return data, str(p)
