"""A cache that keeps a value only from the second time its key is asked for.

Policies, statements, condition clauses and patterns are compiled once and reused, but a batch whose lines
each carry their own documents asks for most of them exactly once. Keeping those would cost memory and,
above all, time: the interpreter's cyclic garbage collector walks every object kept alive again and again
(measured with ``benchmarks/bench_eval.py``: about half the time of a batch of distinct complex documents).
So a key seen for the first time only leaves its hash (an int: nothing for the collector to walk); the
value is made, used and dropped. Seen again, the value is kept.

A hash collision only makes a first sight count as a second one: the value is kept, never a different one
returned, because a hit compares the key itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def trimmed(key: K) -> K:
    """``key`` with each ``bytes`` in it (itself, or inside tuples) copied to a buffer of its own length: the one to
    keep. orjson 3.12 and later hand out ``dumps``'s output in the buffer it wrote into, about 4 kB for a few hundred
    bytes of JSON, and never shrink it (https://github.com/ijl/orjson/issues/483; Home Assistant trims the ones it
    keeps the same way, https://github.com/home-assistant/core/pull/181240). The caches here are keyed by such texts
    (statements, documents, a batch line's policies): kept as they come, 10,000 lines of distinct complex documents
    seen twice held about 600 MB instead of about 100 (docs/benchmarks.md, "Sixth round"). Equal to ``key``, with
    the same hash."""
    kind = type(key)
    if kind is bytes:
        return bytes(memoryview(key))  # type: ignore[arg-type,return-value]
    if kind is tuple:
        for part in key:  # type: ignore[attr-defined]
            if type(part) is bytes or type(part) is tuple:
                return tuple([trimmed(k) for k in key])  # type: ignore[attr-defined,return-value]
    return key


class SecondSightCache(Generic[K, V]):
    """``get(key, make, *args)``: the kept value for ``key``, or ``make(*args)`` (kept when ``key`` was seen
    before)."""

    __slots__ = ("_kept", "_lock", "_max", "_seen", "_seen_max", "_values")

    def __init__(self, max_entries: int, *, track_values: bool = False) -> None:
        self._max = max_entries
        self._seen_max = 4 * max_entries
        self._kept: dict[int, tuple[K, V]] = {}
        self._seen: set[int] = set()
        self._lock = threading.Lock()
        self._values: dict[int, V] | None = {} if track_values else None

    def get(self, key: K, make: Callable[..., V], *args: Any) -> V:
        """The kept value for ``key``, else ``make(*args)`` (no closure to build on the hot path).

        ``get_kept`` without its second answer, written out: a batch of distinct documents asks a dozen
        of these caches per line."""
        h = hash(key)
        hit = self._kept.get(h)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = make(*args)
        seen = self._seen
        if h in seen:
            self._keep(h, key, value)
            return value
        if len(seen) >= self._seen_max:
            seen.clear()
        seen.add(h)
        return value

    def _keep(self, h: int, key: K, value: V) -> None:
        key = trimmed(key)
        with self._lock:
            values = self._values
            if len(self._kept) >= self._max or (values is not None and len(values) >= 2 * self._max):
                self._kept.clear()
                if values is not None:
                    values.clear()
            self._kept[h] = (key, value)
            if values is not None:
                values[id(value)] = value

    def holds(self, value: V) -> bool:
        """Whether ``value`` is this very object, kept (only with ``track_values``): a value made from a first
        sight is the caller's alone, a kept one will be handed out again, so what is derived from it is worth
        keeping too. The table holds the value, so its id names no other object while it is there (a value
        replaced under its key may still answer True until the next clear: a hint, never an answer)."""
        values = self._values
        return values is not None and values.get(id(value)) is value

    def get_kept(self, key: K, make: Callable[..., V], *args: Any) -> tuple[V, bool]:
        """``get``, and whether the value is kept (False: a first sight, the value is the caller's alone)."""
        h = hash(key)
        hit = self._kept.get(h)
        if hit is not None and hit[0] == key:
            return hit[1], True
        value = make(*args)
        seen = self._seen
        if h in seen:
            self._keep(h, key, value)
            return value, True
        # set.add is atomic under the GIL; a clear racing with it only forgets a sighting.
        if len(seen) >= self._seen_max:
            seen.clear()
        seen.add(h)
        return value, False

    def known(self, key: K) -> bool:
        """Whether ``key`` was asked for before (its value kept, or its first sight noted): ``get`` would keep
        the value it makes now, or has one."""
        h = hash(key)
        hit = self._kept.get(h)
        return (hit is not None and hit[0] == key) or h in self._seen

    def note(self, key: K) -> bool:
        """Whether ``key`` was asked for before (``known``); when not, its sighting is noted, as ``get`` notes it,
        so that the next ``get`` keeps the value it makes. For callers whose first sight has a cheaper way to
        the same value than ``make``."""
        h = hash(key)
        hit = self._kept.get(h)
        if (hit is not None and hit[0] == key) or h in self._seen:
            return True
        seen = self._seen
        if len(seen) >= self._seen_max:
            seen.clear()
        seen.add(h)
        return False

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._seen.clear()
            if self._values is not None:
                self._values.clear()


class Asking:
    """Whether a cache is worth asking at all. A key costs something to make (a serialization of a document or a
    statement, a few microseconds), which callers whose values are all new (a batch whose lines each carry their own
    documents) pay for nothing: after 64 lookups in a row that found nothing kept, only every 16th call asks (and a
    hit asks on every call again). Only speed depends on this, never an answer: a call that does not ask makes the
    value as a first sight would."""

    __slots__ = ("misses", "skipped")

    def __init__(self) -> None:
        self.misses = 0
        self.skipped = 0

    def worth_asking(self) -> bool:
        if self.misses < 64:
            return True
        self.skipped += 1
        if self.skipped < 16:
            return False
        self.skipped = 0
        return True

    def saw(self, kept: bool) -> None:
        """The answer of a lookup: True when the value was kept (found, or kept from this second sight)."""
        self.misses = 0 if kept else self.misses + 1
