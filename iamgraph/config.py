"""The project config file (``iamgraph.yaml``): read once, here; each room parses its own section.

One YAML mapping, one top-level section per command (``check``, ``sensitive_tags``, ``recommend``,
``detect``; format in docs/config.md). Every command reads only its own section and ignores the others,
so a section can be added without breaking older commands. This module only reads the file and checks
that it is a mapping; the section parsers live beside what they configure (``iamgraph.check.config``,
``iamgraph.recommend.config``, ``iamgraph.detect.config``) and take the ``ConfigDocument``'s ``data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iamgraph.errors import InputError

DEFAULT_CONFIG_FILE = "iamgraph.yaml"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDocument:
    """The parsed file: ``data`` is its top-level mapping (empty for an empty file)."""

    source: str = "<defaults>"
    data: Mapping[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        """The section's raw value, or None when the file has no such section."""
        return self.data.get(name)


def read_config(path: str | Path, *, error: type[InputError] = InputError) -> ConfigDocument:
    """Read and parse the file. A file that cannot be read, is not YAML or is not a mapping raises ``error``
    (an ``InputError`` subclass, so each room keeps its own error type) naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read the config file: {exc.strerror}", source=source) from None
    except UnicodeDecodeError as exc:
        raise error(f"the config file is not UTF-8 text (byte {exc.start})", source=source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {_yaml_problem(exc)}", source=source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error("the config file must be a mapping", source=source)
    return ConfigDocument(source=source, data=data)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's problem and where, on one line (PyYAML's own text spans several, with a caret drawing)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())
