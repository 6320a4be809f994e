"""Command line: ``iamgraph``. Each command group lives in its own module and registers on ``app``; a module is
imported when its command runs (``iamgraph.cli.app.COMMAND_MODULES``), so one command does not pay for all."""

from __future__ import annotations

from iamgraph.cli.app import app


def main() -> None:
    """The ``iamgraph`` entry point. Usage mistakes (an unknown option, a missing value) are one line on
    stderr and exit 2, like every other bad input, instead of click's boxed usage panel."""
    import sys

    import typer
    from typer._click import exceptions as cx  # typer 0.29 vendors click; its usage errors are these

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
