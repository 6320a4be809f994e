"""Code shape: no function or method in iamgraph/ or api/ runs longer than 150 lines.

A function that long does several things a reader has to tell apart (the demo generator's were 186 to 467
lines); split it into functions named for what each part does.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("iamgraph", "api")
MAX_LINES = 150


def _long_functions(source: str, filename: str) -> list[str]:
    """``path:line name (N lines)`` for every function or method in ``source`` longer than MAX_LINES.

    A function's lines run from its ``def`` (decorators excluded) to its last line, docstring and nested
    functions included; a nested function is also judged on its own."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES:
                out.append(f"{filename}:{node.lineno} {node.name} ({lines} lines)")
    return out


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def test_no_function_is_longer_than_150_lines() -> None:
    too_long = [f for path in _sources() for f in _long_functions(path.read_text(), str(path.relative_to(REPO)))]
    assert not too_long, "split these functions:\n" + "\n".join(too_long)


def test_the_walk_sees_the_packages() -> None:
    """Guard against a vacuous pass: both packages are read, and they hold many functions."""
    paths = _sources()
    assert {p.relative_to(REPO).parts[0] for p in paths} == set(PACKAGES)
    defs = sum(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for p in paths for n in ast.walk(ast.parse(p.read_text()))
    )
    assert defs > 500


def test_the_check_counts_lines_as_a_reader_does() -> None:
    """151 lines fail and 150 pass, methods and async functions included, decorators not counted."""
    def body(n: int) -> str:
        return "".join(f"    x{i} = {i}\n" for i in range(n - 1))

    assert _long_functions("def f():\n" + body(150), "ok.py") == []
    assert _long_functions("def f():\n" + body(151), "long.py") == ["long.py:1 f (151 lines)"]
    method = "class C:\n    @property\n    async def g(self):\n" + "".join(f"        y{i} = {i}\n" for i in range(150))
    assert _long_functions(method, "m.py") == ["m.py:3 g (151 lines)"]
