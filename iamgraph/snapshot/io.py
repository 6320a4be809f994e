"""Read and write snapshots as ``.json.gz`` (or plain ``.json``), atomically, with a version gate."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from iamgraph.errors import SnapshotError, SnapshotVersionError
from iamgraph.snapshot.model import SCHEMA_VERSION, Snapshot


def content_hash(snapshot: Snapshot) -> str:
    """sha256 over the canonical JSON of the snapshot without its own hash field."""
    data = snapshot.model_dump(mode="json", exclude={"content_hash"})
    return "sha256:" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dump_snapshot(snapshot: Snapshot) -> Snapshot:
    """Return a copy with ``content_hash`` filled in."""
    return snapshot.model_copy(update={"content_hash": content_hash(snapshot)})


def write_snapshot(snapshot: Snapshot, path: str | os.PathLike[str]) -> Snapshot:
    """Write atomically; gzip when the name ends in ``.gz``. Returns the snapshot with its hash set."""
    hashed = dump_snapshot(snapshot)
    raw = orjson.dumps(hashed.model_dump(mode="json"))
    if str(path).endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    atomic_write_bytes(path, raw)
    return hashed


def _major(version: str) -> int:
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        raise SnapshotError(f"schema_version {version!r} is not MAJOR.MINOR") from None


def snapshot_from_dict(data: Any, *, source: str = "<snapshot>") -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotError(f"{source}: a snapshot is a JSON object, not {type(data).__name__}")
    version = data.get("schema_version")
    if version is None:
        raise SnapshotError(
            f"{source}: no schema_version: this is not an iamgraph snapshot "
            "(to load `aws iam get-account-authorization-details` output, use `iamgraph snapshot import`)"
        )
    if _major(version) > _major(SCHEMA_VERSION):
        raise SnapshotVersionError(
            f"{source}: snapshot schema {version} is newer than this iamgraph understands ({SCHEMA_VERSION}); "
            "upgrade iamgraph to read it"
        )
    try:
        return Snapshot.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SnapshotError(
            f"{source}: invalid snapshot at {loc}: {first['msg']} ({exc.error_count()} error(s) in all)"
        ) from None


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot:
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
        except (OSError, EOFError) as exc:
            raise SnapshotError(f"{p}: corrupt or truncated gzip data ({exc})") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{p}: invalid JSON: {exc}") from None
    return snapshot_from_dict(data, source=str(p))
