"""The on-disk contract: snapshot model, atomic read/write, version gate, lookup index."""

from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.io import (
    atomic_write_bytes,
    content_hash,
    read_snapshot,
    read_snapshot_checked,
    snapshot_from_dict,
    write_snapshot,
)
from iamgraph.snapshot.model import SCHEMA_VERSION, Snapshot

__all__ = [
    "SCHEMA_VERSION",
    "Snapshot",
    "SnapshotIndex",
    "atomic_write_bytes",
    "content_hash",
    "read_snapshot",
    "read_snapshot_checked",
    "snapshot_from_dict",
    "write_snapshot",
]
