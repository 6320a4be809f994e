"""Command line: ``iamgraph``. Each command group lives in its own module and registers on ``app``; a module is
imported when its command runs (``iamgraph.cli.app.COMMAND_MODULES``), so one command does not pay for all."""

from __future__ import annotations

import gc

from iamgraph.cli.app import app


def _no_collections_at_exit() -> None:
    """Run at interpreter exit (an ``atexit`` handler): everything still alive moves to the collector's permanent
    generation, so the collections CPython runs while it tears the modules down have nothing to walk.

    A command leaves a large heap behind (``iamgraph report --db`` on the demo organization: the snapshot, the graph,
    the catalog, parliament's data, over 300 MB); those collections walked all of it several times, about 0.6 of its
    5 CPU-s. Nothing is lost by skipping them: every file the CLI writes is written, flushed and renamed into place
    (``iamgraph.snapshot.atomic_write_bytes``) and every usage store closed (``with``) before the command returns;
    stdout and stderr are still flushed, and reference counting still frees what the module teardown lets go. What
    stays uncollected is garbage in reference cycles, whose finalizers Python does not promise to run at exit
    (https://docs.python.org/3/reference/datamodel.html#object.__del__). Registered by ``main`` only, so a test
    that calls the commands in-process keeps its collector as it was until its own interpreter exits.
    https://docs.python.org/3/library/gc.html#gc.freeze"""
    gc.freeze()


def main() -> None:
    """The ``iamgraph`` entry point. Usage mistakes (an unknown option, a missing value) are one line on
    stderr and exit 2, like every other bad input, instead of click's boxed usage panel."""
    import atexit
    import sys

    import typer
    from typer._click import exceptions as cx  # typer 0.29 vendors click; its usage errors are these

    atexit.unregister(_no_collections_at_exit)  # once, however often main runs in one process
    atexit.register(_no_collections_at_exit)
    try:
        code = app(standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:
        exc.show()  # bare `iamgraph` or `iamgraph usage`: the help is the answer
        sys.exit(exc.exit_code)
    except cx.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        path = ctx.command_path.split(" ", 1)[1] if ctx is not None and " " in ctx.command_path else ""
        print(f"error: {exc.format_message()} (iamgraph {path + ' ' if path else ''}--help)", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
