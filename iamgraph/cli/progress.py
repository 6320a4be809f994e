"""Progress on stderr for the phases that can take seconds to minutes (snapshot load, graph build, what-can,
unused, recommend, report, ingest). Shown only when stderr is a terminal and ``--quiet`` is not given, so
pipes, CI logs and ``--json`` consumers see nothing of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from iamgraph.cli.app import err_console, state


def enabled() -> bool:
    return err_console.is_terminal and not state.quiet


@contextmanager
def phase(label: str) -> Iterator[None]:
    """A spinner with ``label`` while the block runs, then one dim line with the time it took."""
    if not enabled():
        yield
        return
    started = time.perf_counter()
    with err_console.status(f"{label}...", spinner="dots"):
        yield
    err_console.print(f"[dim]{label}: {time.perf_counter() - started:.1f} s[/]", highlight=False)
