"""Reload refuses a snapshot without a content hash (it cannot be told from a corrupt or edited file), unless the
server was started with --allow-unhashed-snapshot; the old snapshot keeps serving."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from api.holder import SnapshotHolder
from api.settings import Settings
from iamgraph.errors import SnapshotError
from iamgraph.snapshot import write_snapshot
from iamgraph.snapshot.model import Snapshot


def _unhashed(path: Path) -> None:
    data = orjson.loads(path.read_bytes())
    data["content_hash"] = None
    path.write_bytes(orjson.dumps(data))


def _snapshot(path: Path) -> str:
    written = write_snapshot(Snapshot(collected_at="2026-01-01T00:00:00Z", source="import"), path)
    assert written.content_hash
    return written.content_hash


def test_reload_refuses_a_snapshot_without_a_content_hash(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    first = _snapshot(path)
    holder = SnapshotHolder(path)
    _unhashed(path)
    with pytest.raises(SnapshotError, match="no content_hash"):
        holder.reload()
    assert holder.current.content_hash == first and holder.current.generation == 1


def test_reload_takes_an_unhashed_snapshot_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    _snapshot(path)
    holder = SnapshotHolder(path, allow_unhashed=True)
    _unhashed(path)
    _, new = holder.reload()
    assert new.generation == 2 and new.content_hash.startswith("sha256:")


def test_the_setting_travels_through_the_environment(tmp_path: Path) -> None:
    s = Settings(snapshot=tmp_path / "s.json", allow_anonymous_local=True, allow_unhashed_snapshot=True)
    assert Settings.from_env(s.to_env()).allow_unhashed_snapshot is True
    s = Settings(snapshot=tmp_path / "s.json", allow_anonymous_local=True)
    assert Settings.from_env(s.to_env()).allow_unhashed_snapshot is False
