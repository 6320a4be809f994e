"""One switch for Python's cyclic garbage collector around work that allocates millions of long-lived objects.

A graph build, a change judgement and a CloudTrail ingest each allocate millions of objects that live as long as the
work (or its result); each collection of the oldest generation walks all of them again (docs/benchmarks.md, "100,000
principals" and the ingest section). Reference counting still frees everything else at once. Sections may nest and
may run in several threads: the collector goes off when the first section in the process starts and is back on (if
it was on then) when the last one ends, which collects whatever cycles were left meanwhile.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_HOLDERS = 0
_WAS_ON = False


@contextmanager
def without_cyclic_gc() -> Iterator[bool]:
    """The cyclic garbage collector off for the section (counted: nested and concurrent sections share one switch).
    Gives True when this section is the one that switched a running collector off (a long section may then collect
    the young generations itself, as the batch reader does)."""
    global _HOLDERS, _WAS_ON
    with _LOCK:
        if _HOLDERS == 0:
            _WAS_ON = gc.isenabled()
            gc.disable()
        _HOLDERS += 1
        owner = _HOLDERS == 1 and _WAS_ON
    try:
        yield owner
    finally:
        with _LOCK:
            _HOLDERS -= 1
            if _HOLDERS == 0 and _WAS_ON:
                gc.enable()
