"""Strict readers for JSON input files: every problem becomes an ``InputError`` naming the file and JSON path.

The loaders in ``iamgraph.collect.files`` walk AWS CLI output with these helpers so that a wrong type
or a missing field is reported as ``file: UserDetailList[3].Tags[0].Key: ...`` instead of a crash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iamgraph.errors import InputError, PolicyParseError
from iamgraph.model import load_document, parse_policy
from iamgraph.model.policy import json_type_name


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which are not JSON (RFC 8259) and which no AWS API returns.
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated keys without a word; that would drop data silently.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def read_json(path: Path) -> Any:
    """Read a JSON file; non-UTF-8 bytes, truncation and syntax errors name the place."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "AWS CLI output is UTF-8: re-export it without converting the encoding",
            source=str(path),
            location=f"byte {exc.start}",
        ) from None
    if not text.strip():
        raise InputError("the file is empty", source=str(path))
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise InputError(
            f"invalid JSON: {exc.msg}{hint}",
            source=str(path),
            location=f"line {exc.lineno} column {exc.colno}",
        ) from None
    except ValueError as exc:
        raise InputError(f"invalid JSON: {exc}", source=str(path)) from None


def reject_unconsumed(root: Path, consumed: set[Path], export: str, hint: str) -> None:
    """Refuse an export directory holding a file the reader never used.

    A file nothing refers to is most often a misspelt name; ignoring it would silently drop what it holds
    (a policy, a permission set) from the snapshot, so it is an input error naming the file. Hidden files
    and directories (``.DS_Store``, ``.git``) are not part of an export.
    """
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or any(part.startswith(".") for part in rel.parts) or path in consumed:
            continue
        raise InputError(
            f"this file of the {export} was not used ({hint}); remove it or fix its name "
            "(layout in docs/snapshot-format.md)",
            source=str(path),
        )


class Reader:
    """Typed access to one decoded JSON file; ``where`` strings are JSON paths inside it."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, where: str | None) -> InputError:
        return InputError(message, source=self.source, location=where or None)

    def obj(self, value: Any, where: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """An object; with ``keys``, any other key is an error (a shape this reader does not know)."""
        if not isinstance(value, dict):
            raise self.fail(f"expected an object, found {json_type_name(value)}", where)
        if keys is not None:
            allowed = set(keys)
            unknown = sorted(k for k in value if k not in allowed)
            if unknown:
                raise self.fail(
                    f"unknown key(s) {', '.join(map(repr, unknown))}; expected only {', '.join(sorted(allowed))}",
                    where,
                )
        return value

    def lst(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"expected a list, found {json_type_name(value)}", where)
        return value

    def opt_list(self, parent: Mapping[str, Any], key: str, where: str) -> list[Any]:
        return [] if key not in parent else self.lst(parent[key], _join(where, key))

    def string(self, parent: Mapping[str, Any], key: str, where: str) -> str:
        loc = _join(where, key)
        if key not in parent:
            raise self.fail(f"missing required field {key}", where)
        value = parent[key]
        if not isinstance(value, str):
            raise self.fail(f"expected a string, found {json_type_name(value)}", loc)
        return value

    def opt_string(self, parent: Mapping[str, Any], key: str, where: str) -> str | None:
        if parent.get(key) is None:
            return None
        return self.string(parent, key, where)

    def opt_bool(self, parent: Mapping[str, Any], key: str, where: str) -> bool | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(f"expected true or false, found {json_type_name(value)}", _join(where, key))
        return value

    def opt_int(self, parent: Mapping[str, Any], key: str, where: str) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"expected an integer, found {json_type_name(value)}", _join(where, key))
        return value

    def tags(self, parent: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
        """IAM's ``[{"Key": k, "Value": v}]`` tag list as a dict; a repeated key is an error."""
        out: dict[str, str] = {}
        loc = _join(where, key)
        for i, item in enumerate(self.opt_list(parent, key, where)):
            iloc = f"{loc}[{i}]"
            tag = self.obj(item, iloc, ("Key", "Value"))
            k = self.string(tag, "Key", iloc)
            v = self.string(tag, "Value", iloc)
            if k in out:
                raise self.fail(f"tag {k!r} appears twice", iloc)
            out[k] = v
        return out

    def policy(
        self,
        value: Any,
        where: str,
        *,
        require_resource: bool = False,
        principal: bool | None = None,
    ) -> dict[str, Any]:
        """A policy document (object, JSON text or URL-encoded JSON text), validated, returned verbatim.

        IAM's query API returns documents URL-encoded (RFC 3986); the AWS CLI and boto3 decode them.
        https://docs.aws.amazon.com/IAM/latest/APIReference/API_PolicyVersion.html
        """
        if not isinstance(value, (dict, str)):
            raise self.fail(f"a policy document must be an object or JSON text, found {json_type_name(value)}", where)
        try:
            doc = load_document(value, source=self.source)
            parse_policy(doc, source=self.source, require_resource=require_resource, principal=principal)
        except PolicyParseError as exc:
            raise self.fail(exc.message, _join(where, exc.location) if exc.location else where) from None
        _check_json_numbers(doc, self, where)
        return doc


def _check_json_numbers(value: Any, reader: Reader, where: str) -> None:
    # Snapshots are written with orjson, which holds integers to 64 bits and has no NaN.
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json_numbers(v, reader, _join(where, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_numbers(v, reader, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise reader.fail("a number that is not finite", where)
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise reader.fail("an integer outside the 64-bit range", where)


def _join(where: str, key: str) -> str:
    if not where:
        return key
    if key.startswith("["):
        return where + key
    return f"{where}.{key}"
