"""Files the tool writes: atomically and owner-only, and where its caches live. Outside the layers (like
``iamgraph.errors``), so the catalog at the bottom and the snapshot store above it write the same way."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


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
        # mkstemp creates the file owner-only (0600), which suits a map of who can do what; a file
        # that is replaced keeps the mode its owner gave it.
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def cache_file(name: str) -> Path:
    """Where a cache file of iamgraph's lives: ``$XDG_CACHE_HOME/iamgraph/NAME`` (``~/.cache`` when unset).
    https://specifications.freedesktop.org/basedir-spec/latest/"""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iamgraph" / name
