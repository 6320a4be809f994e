"""The loaded snapshot and everything derived from it, swapped atomically on reload.

A request takes ``holder.current`` once, at its start, and works on that ``State`` to the end: a reload
builds a complete new ``State`` first and then replaces the reference (one assignment), so requests in
flight finish on the old snapshot and a snapshot that fails to load never replaces the one serving.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iamgraph.errors import SnapshotError
from iamgraph.eval import SnapshotEvaluator
from iamgraph.snapshot import Snapshot, SnapshotIndex, content_hash, read_snapshot_checked

if TYPE_CHECKING:
    from iamgraph.graph import AccessGraph


@dataclass(slots=True)
class State:
    path: Path
    snapshot: Snapshot
    index: SnapshotIndex
    evaluator: SnapshotEvaluator
    content_hash: str
    loaded_at: str
    generation: int
    _graph: AccessGraph | None = None
    _graph_lock: threading.Lock = field(default_factory=threading.Lock)
    graph_build_seconds: float | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    """Per-snapshot memo (e.g. the materialised base graph's admin reach), dropped with the state."""

    def graph(self) -> AccessGraph:
        """The access graph of this snapshot, built once on first use (concurrent callers wait for it)."""
        if self._graph is None:
            with self._graph_lock:
                if self._graph is None:
                    from iamgraph.graph import build_graph

                    start = time.perf_counter()
                    self._graph = build_graph(self.snapshot)
                    self.graph_build_seconds = time.perf_counter() - start
        return self._graph

    @property
    def graph_ready(self) -> bool:
        return self._graph is not None


def load_state(path: Path, generation: int, *, require_hash: bool = False) -> State:
    """Read, validate and index a snapshot. Raises SnapshotError (the caller keeps its old state).

    ``require_hash``: refuse a snapshot without a stored content hash (one iamgraph did not write, or edited).
    """
    snapshot, hash_ok = read_snapshot_checked(path)
    if hash_ok is False:
        raise SnapshotError(f"{path}: the stored content_hash does not match the content (corrupt or edited)")
    if hash_ok is None and require_hash:
        raise SnapshotError(
            f"{path}: the snapshot has no content_hash, so it cannot be told from a corrupt or edited file; write it "
            "with iamgraph (collect, snapshot import) or start the server with --allow-unhashed-snapshot"
        )
    index = SnapshotIndex(snapshot)
    return State(
        path=path,
        snapshot=snapshot,
        index=index,
        evaluator=SnapshotEvaluator(index),
        content_hash=snapshot.content_hash or content_hash(snapshot),
        loaded_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        generation=generation,
    )


class SnapshotHolder:
    def __init__(self, path: Path, *, allow_unhashed: bool = False) -> None:
        self._reload_lock = threading.Lock()
        self.allow_unhashed = allow_unhashed
        """Reload accepts a snapshot without a content hash (refused by default)."""
        self.current: State = load_state(path, 1)

    def reload(self, path: Path | None = None) -> tuple[State, State]:
        """Load ``path`` (default: the current one again) and swap it in. Returns (old, new)."""
        with self._reload_lock:
            old = self.current
            new = load_state(path or old.path, old.generation + 1, require_hash=not self.allow_unhashed)
            self.current = new
            # The server froze the first snapshot's objects out of the cyclic collector (api.main); give them
            # back, so the replaced snapshot's reference cycles can be collected once its last request ends.
            gc.unfreeze()
            return old, new
