"""JSON and YAML loading that remembers the line of every value, for SARIF locations.

``json`` and ``yaml.safe_load`` drop positions. A finding about ``Statement[2]`` of a role's inline
policy should point a reviewer at the line where that statement starts, so the loaders here return
the parsed value and a map from its path (a tuple of keys and indices) to a 1-based line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from iamgraph.errors import InputError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Located:
    """A parsed document and the lines its values start on."""

    value: Any
    source: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            hit = self.lines.get(p)
            if hit is not None:
                return hit
            if not p:
                return None
            p = p[:-1]


# -- JSON ----------------------------------------------------------------------------------------

_WS = " \t\r\n"


class _JsonScanner:
    """A small recursive-descent JSON reader that records the line each value starts on.

    Values are decoded by :mod:`json` itself (``raw_decode`` for scalars) so escapes and numbers
    follow the standard exactly; only the structure is walked here. Repeated keys are an error:
    ``json`` would keep the last one silently and a gate must not judge a policy nobody sees.
    """

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.line = 1
        self.lines: dict[PathKey, int] = {}
        self._decoder = json.JSONDecoder()

    def error(self, message: str) -> InputError:
        return InputError(f"invalid JSON at line {self.line}: {message}", source=self.source)

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text) and text[self.pos] in _WS:
            if text[self.pos] == "\n":
                self.line += 1
            self.pos += 1

    def value(self, path: PathKey, depth: int = 0) -> Any:
        if depth > 500:
            raise self.error("nesting too deep")
        self.skip()
        if self.pos >= len(self.text):
            raise self.error("unexpected end of input")
        self.lines[path] = self.line
        ch = self.text[self.pos]
        if ch == "{":
            return self.obj(path, depth)
        if ch == "[":
            return self.arr(path, depth)
        try:
            val, end = self._decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise self.error(exc.msg) from None
        # A string may hold an escaped newline but never a raw one; count any anyway.
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end
        return val

    def obj(self, path: PathKey, depth: int) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        self.skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return out
        while True:
            self.skip()
            if not self.text.startswith('"', self.pos):
                raise self.error("expected a string key")
            key_line = self.line
            key = self.value((*path, "\x00key"), depth + 1)
            self.lines.pop((*path, "\x00key"), None)
            if key in out:
                raise self.error(f"repeated key {key!r}")
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise self.error("expected ':'")
            self.pos += 1
            out[key] = self.value((*path, key), depth + 1)
            # A value on the line after its key still belongs to the key's line for readers.
            self.lines[(*path, key)] = key_line
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return out
            raise self.error("expected ',' or '}'")

    def arr(self, path: PathKey, depth: int) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        self.skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return out
        while True:
            out.append(self.value((*path, len(out)), depth + 1))
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return out
            raise self.error("expected ',' or ']'")


def load_json(text: str, source: str) -> Located:
    """Parse JSON text, keeping lines."""
    sc = _JsonScanner(text, source)
    value = sc.value(())
    sc.skip()
    if sc.pos != len(text):
        raise sc.error("extra data after the document")
    return Located(value=value, source=source, lines=sc.lines)


# -- YAML (CloudFormation) ------------------------------------------------------------------------

# CloudFormation's short forms (!Ref, !Sub, ...) are YAML tags; they stand for the long form
# {"Fn::Sub": ...}. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
_SHORT_TAGS = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!Base64": "Fn::Base64",
    "!Cidr": "Fn::Cidr",
    "!FindInMap": "Fn::FindInMap",
    "!GetAtt": "Fn::GetAtt",
    "!GetAZs": "Fn::GetAZs",
    "!ImportValue": "Fn::ImportValue",
    "!Join": "Fn::Join",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!Sub": "Fn::Sub",
    "!Transform": "Fn::Transform",
    "!And": "Fn::And",
    "!Equals": "Fn::Equals",
    "!If": "Fn::If",
    "!Not": "Fn::Not",
    "!Or": "Fn::Or",
    "!Length": "Fn::Length",
    "!ToJsonString": "Fn::ToJsonString",
}


def _yaml_value(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    tag = node.tag
    if tag in _SHORT_TAGS:
        fn = _SHORT_TAGS[tag]
        inner: Any
        if isinstance(node, yaml.ScalarNode):
            inner = node.value
            # !GetAtt Res.Attr is the short form of ["Res", "Attr"].
            if fn == "Fn::GetAtt" and isinstance(inner, str):
                inner = inner.split(".", 1)
        else:
            plain = _untagged(node)
            inner = _yaml_value(plain, (*path, fn), lines, source)
        lines[(*path, fn)] = node.start_mark.line + 1
        return {fn: inner}
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = _yaml_value(knode, (*path, "\x00key"), lines, source)
            lines.pop((*path, "\x00key"), None)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise InputError(f"repeated key {key!r} at line {knode.start_mark.line + 1}", source=source)
            out[key] = _yaml_value(vnode, (*path, key), lines, source)
            lines[(*path, key)] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_yaml_value(n, (*path, i), lines, source) for i, n in enumerate(node.value)]
    if tag.startswith("!"):
        raise InputError(f"unknown YAML tag {tag} at line {node.start_mark.line + 1}", source=source)
    # Resolve plain scalars with SafeLoader's own rules (ints, bools, ...).
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _untagged(node: yaml.Node) -> yaml.Node:
    if isinstance(node, yaml.SequenceNode):
        return yaml.SequenceNode("tag:yaml.org,2002:seq", node.value, node.start_mark, node.end_mark)
    if isinstance(node, yaml.MappingNode):
        return yaml.MappingNode("tag:yaml.org,2002:map", node.value, node.start_mark, node.end_mark)
    return node


class _Composer(yaml.SafeLoader):
    """SafeLoader that composes (no construction), so any tag is accepted at this stage."""


def load_yaml(text: str, source: str) -> Located:
    """Parse YAML text (CloudFormation short tags become their long form), keeping lines."""
    try:
        loader = _Composer(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"invalid YAML{where}: {problem}", source=source) from None
    if node is None:
        raise InputError("the file is empty", source=source)
    lines: dict[PathKey, int] = {}
    value = _yaml_value(node, (), lines, source)
    return Located(value=value, source=source, lines=lines)


def load_any(text: str, source: str) -> Located:
    """JSON when the text starts like JSON, YAML otherwise."""
    if text.lstrip().startswith(("{", "[")):
        return load_json(text, source)
    return load_yaml(text, source)
