"""The Typer app every command module registers on, and the one place that turns errors into exits."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import typer
import typer.main
from rich.console import Console
from rich.markup import escape
from typer._click.core import Command, Context  # typer 0.29 vendors click
from typer._click.exceptions import ClickException  # typer 0.29 vendors click: its usage errors
from typer.core import TyperGroup

from iamgraph.errors import IamGraphError

COMMAND_MODULES: dict[str, str] = {
    # Which module registers each top-level command, in the order `iamgraph --help` lists them. A run imports only
    # the module of the command it runs (importing every module pulls boto3, networkx, httpx and DuckDB, about a
    # second, into every command); help and an unknown name import all of them. tests/cli/test_cli_lazy.py checks
    # this table against what the modules register.
    "version": "iamgraph.cli.app",
    "diff": "iamgraph.cli.change",
    "collect": "iamgraph.cli.collect",
    "demo": "iamgraph.cli.demo",
    "detect": "iamgraph.cli.detect",
    "check": "iamgraph.cli.gate",
    "report": "iamgraph.cli.gate",
    "simulate": "iamgraph.cli.simulate",
    "who-can": "iamgraph.cli.graph",
    "what-can": "iamgraph.cli.graph",
    "path": "iamgraph.cli.graph",
    "privesc": "iamgraph.cli.graph",
    "blast-radius": "iamgraph.cli.graph",
    "exposure": "iamgraph.cli.graph",
    "sensitive": "iamgraph.cli.graph",
    "sod": "iamgraph.cli.graph",
    "recommend": "iamgraph.cli.recommend",
    "serve": "iamgraph.cli.serve",
    "unused": "iamgraph.cli.usage",
    "request": "iamgraph.cli.change",
    "demo-org": "iamgraph.cli.demo_org",
    "graph": "iamgraph.cli.graph",
    "token": "iamgraph.cli.serve",
    "snapshot": "iamgraph.cli.snapshot",
    "usage": "iamgraph.cli.usage",
}


class _LazyGroup(TyperGroup):
    """The root command group: a command's module is imported when the command is looked up, not before.

    Typer turns the commands registered on ``app`` into click commands each time the app is called; the modules
    imported here register more of them, which are converted then and added to this group."""

    def _load(self, modules: Iterable[str]) -> None:
        import importlib

        for module in modules:
            importlib.import_module(module)
        for name, command in typer.main.get_group(app).commands.items():
            self.commands.setdefault(name, command)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands:
            module = COMMAND_MODULES.get(cmd_name)
            # An unknown name loads everything, so that click's "did you mean" sees every command.
            self._load(dict.fromkeys(COMMAND_MODULES.values()) if module is None else (module,))
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        self._load(dict.fromkeys(COMMAND_MODULES.values()))
        order = {name: i for i, name in enumerate(COMMAND_MODULES)}
        return sorted(self.commands, key=lambda name: order.get(name, len(order)))


app = typer.Typer(
    cls=_LazyGroup,
    name="iamgraph",
    help="AWS IAM least-privilege analyzer: who can access what, unused permissions, verified trimmed policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def _width() -> int | None:
    # Into a pipe or a file Rich assumes 80 columns, and tables of ARNs then fold in mid-word; such output gets
    # 160 unless COLUMNS says otherwise. A terminal keeps its own width.
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return None
    return 160


console = Console(width=_width())
err_console = Console(stderr=True)



def print_json(data: Any) -> None:
    """Print a JSON document exactly as ``console.print_json(json.dumps(data))`` prints it (indent 2, non-ASCII
    as is, one newline at the end), without rich's cost on big documents: rich builds and highlights the text
    token by token (16 of 27 CPU-s of ``unused --json`` over the demo organization). Into a pipe or a file, where
    rich drops the colours, the same text is written at once; a terminal keeps rich's colours."""
    import json

    if console.is_terminal:
        console.print_json(json.dumps(data))
        return
    console.file.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    console.file.flush()


F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2
EXIT_INTERNAL = 70
"""EX_SOFTWARE (sysexits.h): an internal error, a bug of iamgraph rather than a problem with the input."""


class _State:
    debug = False
    quiet = False


state = _State()


def _fail(message: str) -> None:
    # escape: messages quote user input ("[...]" would be read as markup); soft_wrap: keep file paths and JSON
    # locations on one line so they can be copied.
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _os_message(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else None
    reason = exc.strerror or _one_line(str(exc))
    return f"{name}: {reason}" if name is not None else reason


def _library_message(exc: Exception) -> str | None:
    """One line for failures of the libraries that talk to the outside (AWS, DuckDB), else None."""
    module = type(exc).__module__ or ""
    if module.startswith(("botocore", "boto3", "s3transfer")):
        text = _one_line(str(exc))
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"):
            text += " (configure AWS credentials and region, e.g. AWS_PROFILE and AWS_REGION, or use local files)"
        return f"AWS: {text}"
    if module.startswith("duckdb"):
        return f"usage store (DuckDB): {_one_line(str(exc)).split(' LINE ', 1)[0]}"
    return None


def _internal(exc: BaseException) -> None:
    """An error nobody planned for: one line, and the full trace in a file (or on stderr with --debug)."""
    import tempfile
    import time
    import traceback

    trace = "".join(traceback.format_exception(exc))
    if state.debug:
        err_console.print(trace, markup=False, highlight=False, soft_wrap=True)
        where = "above"
    else:
        path = Path(tempfile.gettempdir()) / f"iamgraph-error-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(" ".join(sys.argv) + "\n\n" + trace)
            where = f"in {path} (iamgraph --debug ... prints it)"
        except OSError:
            where = "not saved (iamgraph --debug ... prints it)"
    _fail(f"internal error: {type(exc).__name__}: {_one_line(str(exc))[:300]} -- a bug in iamgraph; the full "
          f"trace is {where}")


def handle_errors(fn: F) -> F:
    """The one place errors become exits. An IamGraphError (bad input, missing data) prints its own message
    and exits 2; so do a file-system error (a directory where a file goes, no permission) and a failure of
    AWS or DuckDB. Anything else is a bug: one line, the trace in a file, exit 70. Never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, ClickException):
            raise  # typer's own exits and usage errors (a bad option value): typer reports them
        except IamGraphError as exc:
            _fail(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`iamgraph privesc | head`): nothing more to say, and nothing to print it on.
            # https://docs.python.org/3/library/signal.html#note-on-sigpipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:
            _fail(_os_message(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:
            msg = _library_message(exc)
            if msg is not None:
                _fail(msg)
                raise typer.Exit(EXIT_USAGE) from None
            _internal(exc)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Print the full trace of an internal error."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display on stderr."),
) -> None:
    """iamgraph: AWS IAM least-privilege analyzer and policy recommender."""
    # Every file the tool writes (snapshots, reports, the usage database and its log, spool and token files,
    # temporary files) is owner-only: they map who can do what. Group and other bits are masked for the process.
    os.umask(os.umask(0o077) | 0o077)
    state.debug = debug or os.environ.get("IAMGRAPH_DEBUG", "") not in ("", "0")
    state.quiet = quiet


@app.command("version")
def version() -> None:
    """Print the iamgraph version and the action catalog's data version."""
    from iamgraph import __version__

    console.print(f"iamgraph {__version__}")
