"""The audit log: one JSON line per access-request evaluation (who asked, what, the verdict)."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


class AuditLog:
    """Appends whole lines with a single ``write`` on an ``O_APPEND`` descriptor: the kernel places each write
    at the end of the file, so concurrent writers (threads or processes) never interleave inside a line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)

    def record(self, event: str, caller: str, **fields: Any) -> None:
        if self.path is None:
            return
        entry = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event, "token": caller, **fields}
        try:
            line = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS) + b"\n"
        except TypeError:  # an integer beyond 64 bits in a policy: the standard library can write it
            line = json.dumps(entry, sort_keys=True, default=str, ensure_ascii=False).encode() + b"\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, line)
                while written < len(line):  # a short write on a regular file is rare; finish the line
                    written += os.write(fd, line[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
