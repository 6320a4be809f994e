"""The Typer app every command module registers on, and the one place that turns errors into exits."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from iamgraph.errors import IamGraphError

app = typer.Typer(
    name="iamgraph",
    help="AWS IAM least-privilege analyzer: who can access what, unused permissions, verified trimmed policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


def handle_errors(fn: F) -> F:
    """Print an IamGraphError's own message on stderr and exit 2 (usage or input error)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IamGraphError as exc:
            # escape: messages quote user input ("[...]" would be read as markup); soft_wrap: keep file
            # paths and JSON locations on one line so they can be copied.
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root() -> None:
    """iamgraph: AWS IAM least-privilege analyzer and policy recommender."""
    # Every file the tool writes (snapshots, reports, the usage database and its log, spool and token files,
    # temporary files) is owner-only: they map who can do what. Group and other bits are masked for the process.
    os.umask(os.umask(0o077) | 0o077)


@app.command("version")
def version() -> None:
    """Print the iamgraph version and the action catalog's data version."""
    from iamgraph import __version__

    console.print(f"iamgraph {__version__}")
