"""Bounded list output, the same for every list command: a count line first, then at most ``--limit`` rows
(grouped the way a reader thinks), then how many more there are and how to see them. ``--json`` is always
complete; only the text is bounded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import typer
from rich.table import Table

from iamgraph.cli.app import console

T = TypeVar("T")

DEFAULT_LIMIT = 20

LIMIT = typer.Option(DEFAULT_LIMIT, "--limit", "-n", min=1, help="Rows to print (the count line always covers all).")
ALL = typer.Option(False, "--all", help="Print every row (--json is always complete).")


def bound(rows: Sequence[T], limit: int, show_all: bool) -> tuple[Sequence[T], int]:
    """The rows to print and how many are left out."""
    if show_all or len(rows) <= limit:
        return rows, 0
    return rows[:limit], len(rows) - limit


def headline(text: str) -> None:
    console.print(text, style="bold", highlight=False, markup=False, soft_wrap=True)


def none_found(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def table(*columns: str) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    return t


def more(hidden: int, noun: str) -> None:
    if hidden:
        console.print(f"... {hidden} more {noun} (--limit N or --all to print them; --json for everything)",
                      style="dim", highlight=False, markup=False, soft_wrap=True)


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"
