"""``--json`` output written without rich (``iamgraph.cli.app.print_json``) is the text rich's ``print_json`` writes
into a pipe or file, character for character, including what rich could treat specially (markup brackets, emoji
codes, long lines, non-ASCII text)."""

from __future__ import annotations

import importlib
import io
import json
from typing import Any

import pytest
from rich.console import Console

# The module, not the Typer object the package exports under the same name.
app_module = importlib.import_module("iamgraph.cli.app")

DOCS: list[Any] = [
    {"findings": [], "notes": [], "n": 0},
    {"principal": "arn:aws:iam::111122223333:role/[bold]x[/bold]", "reason": ":smile: :warning: café Ünïcode ✓ 中文",
     "nested": {"a": [1, 2.5, -0.0, 1e16, None, True, False], "b": {}, "c": [[]]}},
    {"long": "s3:GetObject " * 80, "tab\tkey": "line\nbreak \"quoted\" back\\slash \u2028 \x7f \x01"},
    [{"k": i, "v": f"value {i}"} for i in range(50)],
    "just a string",
    12,
]


def _rich(doc: Any) -> str:
    buf = io.StringIO()
    Console(file=buf, width=160).print_json(json.dumps(doc))
    return buf.getvalue()


@pytest.mark.parametrize("doc", DOCS)
def test_print_json_writes_what_rich_writes_into_a_pipe(doc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(app_module, "console", Console(file=buf, width=160))
    app_module.print_json(doc)
    assert buf.getvalue() == _rich(doc)
    assert json.loads(buf.getvalue()) == json.loads(json.dumps(doc))


def test_a_terminal_keeps_rich_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(app_module, "console", Console(file=buf, width=160, force_terminal=True))
    app_module.print_json({"a": 1})
    assert "\x1b[" in buf.getvalue()
