"""Policy linting with parliament (https://github.com/duo-labs/parliament), reconciled with our catalog.

parliament ships its own, older copy of the action catalog. Where it does not know an action (or a
condition key of an action) that our pinned catalog knows, its UNKNOWN_* findings are wrong, and
worse, it stops analysing that statement. So: findings parliament raised only because its data is
older are dropped, and the document is analysed a second time without those actions so the rest
of each statement is still checked. The actions parliament could not check are reported as
``not_checked``: unknown is not the same as clean.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from types import ModuleType
from typing import Any, cast

import orjson

from iamgraph.catalog import ActionCatalog, condition_key_matches, get_catalog
from iamgraph.model.policy import Policy

__all__ = [
    "LintFinding",
    "LintResult",
    "LintSeverity",
    "lint",
    "lint_policy",
    "new_findings",
]

PolicyInput = str | bytes | Mapping[str, Any] | Policy

# parliament's issue ids for actions and prefixes missing from its data.
_UNKNOWN_ACTION_ISSUES = frozenset({"UNKNOWN_ACTION", "UNKNOWN_PREFIX"})
_UNKNOWN_CONDITION = "UNKNOWN_CONDITION_FOR_ACTION"
# parliament words this finding "Unknown condition <key> for action <service>:<name>".
_UNKNOWN_CONDITION_DETAIL = re.compile(r"^Unknown condition (?P<key>\S+) for action (?P<action>\S+)$")


class LintSeverity(StrEnum):
    """parliament's severities (its own words)."""

    MUTE = "MUTE"
    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True, kw_only=True)
class LintFinding:
    """One lint finding.

    ``issue`` is parliament's stable id (RESOURCE_STAR, UNKNOWN_ACTION, ...); ``location`` is the
    policy text it points at (an action, a resource, a principal), '' when it concerns a whole
    statement or document; ``line``/``column`` point into the analysed text when known.
    """

    issue: str
    title: str
    severity: LintSeverity
    location: str
    detail: str
    line: int | None = None
    column: int | None = None
    # The elements of a list-valued detail (RESOURCE_STAR and RESOURCE_MISMATCH list the actions
    # concerned), so a narrower policy's finding can be recognised as part of a broader one.
    items: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of a finding independent of where in the file it sits (lines move on edits)."""
        return (self.issue, self.location, self.detail)


@dataclass(frozen=True, slots=True, kw_only=True)
class LintResult:
    """Findings, plus the action patterns parliament could not check because its data lacks them."""

    findings: tuple[LintFinding, ...]
    not_checked: tuple[str, ...] = ()


def lint(
    document: PolicyInput,
    *,
    include_community_auditors: bool = False,
    catalog: ActionCatalog | None = None,
) -> LintResult:
    """Run parliament on a policy document (JSON text, a parsed mapping or a :class:`Policy`)."""
    cat = catalog if catalog is not None else get_catalog()
    text = _as_text(document)
    if isinstance(text, LintFinding):
        return LintResult(findings=(text,))

    first = _run_parliament(text, include_community_auditors)
    stale = {
        f.location
        for f in first
        if f.issue in _UNKNOWN_ACTION_ISSUES and f.location and cat.expand(f.location)
    }
    kept = [f for f in first if not _is_stale(f, stale, cat)]
    if not stale:
        return LintResult(findings=tuple(kept))

    # parliament stopped at the first action it did not know; analyse the rest of the document.
    reduced = _without_actions(text, stale)
    if reduced is not None:
        seen = Counter(f.key for f in kept)
        for f in _run_parliament(reduced, include_community_auditors):
            if _is_stale(f, stale, cat):
                continue
            if seen[f.key] > 0:
                seen[f.key] -= 1
                continue
            # Lines of the reduced text do not exist in the caller's document.
            kept.append(
                LintFinding(
                    issue=f.issue,
                    title=f.title,
                    severity=f.severity,
                    location=f.location,
                    detail=f.detail,
                    items=f.items,
                )
            )
    return LintResult(findings=tuple(kept), not_checked=tuple(sorted(stale)))


def lint_policy(
    document: PolicyInput,
    *,
    include_community_auditors: bool = False,
    catalog: ActionCatalog | None = None,
) -> tuple[LintFinding, ...]:
    """The findings of :func:`lint`."""
    return lint(document, include_community_auditors=include_community_auditors, catalog=catalog).findings


def new_findings(
    before_doc: PolicyInput,
    after_doc: PolicyInput,
    *,
    include_community_auditors: bool = False,
    catalog: ActionCatalog | None = None,
) -> tuple[LintFinding, ...]:
    """Findings of ``after_doc`` that ``before_doc`` does not have.

    Findings are compared by :attr:`LintFinding.key` (issue, location text, detail), not by line,
    and counted: a second identical finding where before had one is new. A finding that lists
    items (the actions of RESOURCE_STAR, RESOURCE_MISMATCH) is not new when before has the same
    issue at the same location listing all of them: trimming ``s3:*`` to ``s3:GetObject`` on the
    same resources narrows the finding, it adds nothing.
    """
    before = lint_policy(before_doc, include_community_auditors=include_community_auditors, catalog=catalog)
    after = lint_policy(after_doc, include_community_auditors=include_community_auditors, catalog=catalog)
    budget = Counter(f.key for f in before)
    out: list[LintFinding] = []
    for f in after:
        if budget[f.key] > 0:
            budget[f.key] -= 1
        elif f.items and any(
            b.issue == f.issue and b.location == f.location and set(f.items) <= set(b.items) for b in before
        ):
            continue
        else:
            out.append(f)
    return tuple(out)


# -- internals -----------------------------------------------------------------------------------


def _is_stale(finding: LintFinding, stale: set[str], cat: ActionCatalog) -> bool:
    """True when the finding exists only because parliament's catalog is older than ours."""
    if finding.issue in _UNKNOWN_ACTION_ISSUES:
        return finding.location in stale
    if finding.issue == _UNKNOWN_CONDITION:
        m = _UNKNOWN_CONDITION_DETAIL.match(finding.detail)
        return m is not None and _catalog_documents_key(cat, m.group("action"), m.group("key"))
    return False


def _catalog_documents_key(cat: ActionCatalog, action: str, key: str) -> bool:
    """Whether the catalog lists ``key`` for ``action`` (on the action or one of its resource types)."""
    info = cat.action(action)
    if info is None:
        return False
    names = list(info.condition_keys)
    for ref in info.resource_types:
        names.extend(ref.condition_keys)
        rt = cat.resource_type(info.service, ref.name)
        if rt is not None:
            names.extend(rt.condition_keys)
    return any(condition_key_matches(name, key) for name in names)


def _as_text(document: PolicyInput) -> str | LintFinding:
    if isinstance(document, Policy):
        return json.dumps(document.to_json(), indent=2)
    if isinstance(document, bytes):
        try:
            return document.decode("utf-8")
        except UnicodeDecodeError as err:
            return _failure("MALFORMED_JSON", f"the policy is not UTF-8 text: {err}")
    if isinstance(document, str):
        return document
    if isinstance(document, Mapping):
        try:
            return json.dumps(document, indent=2)
        except (TypeError, ValueError) as err:
            return _failure("MALFORMED_JSON", f"the policy cannot be written as JSON: {err}")
    return _failure(
        "MALFORMED_JSON", f"a policy document must be JSON text or an object, not {type(document).__name__}"
    )


def _run_parliament(text: str, include_community_auditors: bool) -> list[LintFinding]:
    return list(_parliament_findings(text, include_community_auditors))


@lru_cache(maxsize=128)
def _parliament_findings(text: str, include_community_auditors: bool) -> tuple[LintFinding, ...]:
    # parliament's findings depend on the text alone (its data and config are fixed once imported), and one
    # process lints the same document many times: an original beside each of its proposals, a managed policy for
    # each principal it is attached to (``iamgraph report`` linted 19 distinct texts 27 times).
    parliament = _parliament()
    try:
        policy = parliament.analyze_policy_string(text, include_community_auditors=include_community_auditors)
        raw = list(policy.findings)
    except Exception as err:  # parliament raises bare Exceptions on shapes it does not expect
        return (_failure("EXCEPTION", f"parliament could not analyse the policy: {type(err).__name__}: {err}"),)
    return tuple(_convert(parliament, f) for f in raw)


_PARLIAMENT_LOCK = threading.Lock()


def _parliament() -> ModuleType:
    # One import at a time: the import below swaps json.load and pkg_resources process-wide while it runs, and two
    # threads (the API's work threads) doing so together could leave the swap in place.
    with _PARLIAMENT_LOCK:
        return _import_parliament()


@lru_cache(maxsize=1)
def _import_parliament() -> ModuleType:
    """parliament, imported on first use, without its two costly steps at import (about 0.6 s of a 2 s
    one-principal ``recommend``): ``pkg_resources`` (0.2 s), which it imports only to find the two data files in
    its own package directory, and decoding all 10 MB of ``iam_definition.json`` (0.4 s), of which a lint reads
    the services its policy names.

    While its ``__init__`` runs, ``pkg_resources`` is a stand-in whose ``resource_filename`` gives the same paths
    (when the real one is not loaded already), and ``json.load`` of exactly that file gives the list of services
    of :func:`_lazy_services`: each service's entry is decoded when parliament first reads more than its prefix.
    Nothing parliament reads differs (tests/lint checks the whole list against ``json.load``), and every lint
    still runs parliament."""
    import importlib.util
    import sys

    spec = importlib.util.find_spec("parliament")
    locations = None if spec is None else spec.submodule_search_locations
    if "parliament" in sys.modules or not locations:
        import parliament  # already loaded, or not a package we can find: its own import, unchanged

        return cast(ModuleType, parliament)
    package_dir = os.path.realpath(locations[0])
    definition = os.path.join(package_dir, "iam_definition.json")
    real_load = json.load

    def load(fp: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fp, "name", None)
        if args or kwargs or not isinstance(name, str) or os.path.realpath(name) != definition:
            return real_load(fp, *args, **kwargs)
        with fp:  # parliament never closes it
            text = fp.read()
        services = _lazy_services(text)
        return json.loads(text) if services is None else services

    stand_in = None
    if "pkg_resources" not in sys.modules:
        stand_in = ModuleType("pkg_resources")
        stand_in.resource_filename = (  # type: ignore[attr-defined]
            lambda package, name: os.path.join(package_dir, name) if package == "parliament" else _no_resource(name)
        )
        sys.modules["pkg_resources"] = stand_in
    json.load = load
    try:
        import parliament
    finally:
        json.load = real_load
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]
    _index_expand_action(parliament)
    _index_privilege_info()
    return cast(ModuleType, parliament)


def _index_expand_action(parliament: ModuleType) -> None:
    """parliament's ``expand_action`` with its services found by prefix and a literal action by name.

    Its own walks every service of ``iam_definition`` (455, each entry a :class:`_LazyService` here) and lower-cases
    every privilege name of the matching service, per distinct action: about 0.7 CPU-s of ``iamgraph report``'s
    ten recommendations, whose trimmed policies list hundreds of distinct actions. This one gives the same list
    (the same order, the same dicts' content) and raises the same exceptions, for every input: the services are
    visited in ``iam_definition``'s order, a pattern with ``*``, ``?`` or ``[`` still goes through
    ``fnmatchcase`` over every privilege, and only a literal name is looked up. ``tests/lint`` compares it with
    parliament's own function over every action it knows and a set of patterns. Installed once, on the modules
    that imported the name (``statement``, ``policy``, the community auditor)."""
    import fnmatch
    import sys

    original = getattr(parliament, "expand_action", None)
    if original is None or getattr(original, "_iamgraph_indexed", False):
        return
    services: list[Mapping[str, Any]] = list(parliament.iam_definition)
    by_prefix: dict[str, list[int]] = {}
    for i, service in enumerate(services):
        by_prefix.setdefault(service["prefix"], []).append(i)
    # Per service (decoded on first use): its privileges' lower-cased names, and each name's positions.
    names: dict[int, tuple[list[str], dict[str, list[int]]]] = {}

    def privileges_of(i: int) -> tuple[list[str], dict[str, list[int]]]:
        hit = names.get(i)
        if hit is None:
            lowered = [p["privilege"].lower() for p in services[i]["privileges"]]
            where: dict[str, list[int]] = {}
            for k, name in enumerate(lowered):
                where.setdefault(name, []).append(k)
            hit = names[i] = (lowered, where)
        return hit

    @lru_cache(maxsize=10240)
    def expand_action(action: str, raise_exceptions: bool = True) -> list[dict[str, str]]:
        if action == "*":
            action = "*:*"
        parts = action.split(":")
        if len(parts) != 2:
            raise ValueError("Action should be in form service:action")
        prefix, unexpanded = parts
        wanted = unexpanded.lower()
        literal = not any(c in wanted for c in "*?[")
        actions: list[dict[str, str]] = []
        matched = False
        for i in range(len(services)) if prefix == "*" else by_prefix.get(prefix.lower(), ()):
            service = services[i]
            matched = True
            privileges = service["privileges"]
            if len(privileges) == 0 and prefix != "*" and wanted == "*":
                return []
            lowered, where = privileges_of(i)
            hits = where.get(wanted, ()) if literal else \
                [k for k, name in enumerate(lowered) if fnmatch.fnmatchcase(name, wanted)]
            actions.extend({"service": service["prefix"], "action": privileges[k]["privilege"]} for k in hits)
        if not matched and raise_exceptions:
            raise parliament.UnknownPrefixException(f"Unknown prefix {prefix}")
        if not actions and raise_exceptions:
            raise parliament.UnknownActionException(f"Unknown action {prefix}:{unexpanded}")
        return actions

    expand_action._iamgraph_indexed = True  # type: ignore[attr-defined]
    expand_action.__wrapped_original__ = original  # type: ignore[attr-defined]
    for name in ("parliament", "parliament.statement", "parliament.policy",
                 "parliament.community_auditors.sensitive_access"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "expand_action", None) is original:
            module.expand_action = expand_action  # type: ignore[attr-defined]


def _index_privilege_info() -> None:
    """parliament's ``statement.get_privilege_info`` with its services found by prefix and a privilege by name.

    Its own walks ``iam_definition`` from the first service (each a :class:`_LazyService` here) comparing prefixes,
    then the matching service's privileges comparing names, for every action of every statement it checks: the
    ten recommendations of ``iamgraph report`` asked it for thousands of actions. This one visits the services with
    that exact prefix in ``iam_definition``'s order (21 prefixes have two entries) and takes the first privilege of
    exactly that name, as the walk does; it sets the same two keys on the entry it returns and raises the same
    exception. ``tests/lint`` compares it with parliament's own over every action and unknown names."""
    import sys

    statement = sys.modules.get("parliament.statement")
    original = getattr(statement, "get_privilege_info", None)
    if statement is None or original is None or getattr(original, "_iamgraph_indexed", False):
        return
    services: list[Mapping[str, Any]] = list(statement.iam_definition)
    by_prefix: dict[str, list[int]] = {}
    for i, service in enumerate(services):
        by_prefix.setdefault(service["prefix"], []).append(i)
    firsts: dict[int, dict[str, int]] = {}  # per service (decoded on first use): each name's first position

    def get_privilege_info(service: str, action: str) -> Any:
        for i in by_prefix.get(service, ()):
            names = firsts.get(i)
            if names is None:
                names = {}
                for position, privilege in enumerate(services[i]["privileges"]):
                    names.setdefault(privilege["privilege"], position)
                firsts[i] = names
            at = names.get(action)
            if at is not None:
                info = services[i]["privileges"][at]
                info["service_resources"] = services[i]["resources"]
                info["service_conditions"] = services[i]["conditions"]
                return info
        raise statement.UnknownActionException(f"Unknown action {service}:{action}")

    get_privilege_info._iamgraph_indexed = True  # type: ignore[attr-defined]
    get_privilege_info.__wrapped_original__ = original  # type: ignore[attr-defined]
    setattr(statement, "get_privilege_info", get_privilege_info)  # noqa: B010 (a module attribute mypy cannot see)


def _no_resource(name: str) -> str:
    raise LookupError(f"the pkg_resources stand-in serves parliament's own files only, not {name!r}")


class _LazyService(Mapping[str, Any]):
    """One service of parliament's ``iam_definition.json``: its prefix at once, the rest decoded on first read
    (and kept, so parliament's additions to the decoded entries persist as they would in its own list)."""

    __slots__ = ("_data", "_prefix", "_text")

    def __init__(self, prefix: str, text: str) -> None:
        self._prefix = prefix
        self._text = text
        self._data: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        if self._data is None:
            data = _loads(self._text)
            if not isinstance(data, dict) or data.get("prefix") != self._prefix:
                raise ValueError(f"parliament's iam_definition.json: the entry of {self._prefix!r} did not decode "
                                 "to that service")
            self._data = data
        return self._data

    def __getitem__(self, key: str) -> Any:
        if key == "prefix":
            return self._prefix
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())


def _loads(text: str) -> Any:
    """``json.loads``, by orjson where it can: it decodes the same JSON to the same values, three to four times as
    fast (parliament's entry of each service a lint names: 0.1 CPU-s of the report's ten recommendations). What
    orjson refuses and ``json`` accepts (NaN, integers beyond 64 bits) goes to ``json``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# json.dump(indent=2) writes each top-level entry of a list between a line "  {" and a line "  }" (JSON strings
# hold no raw newline, so such lines are structure), and a service's prefix on a line of its own one level deeper.
_ENTRY_SEPARATOR = "\n  },\n  {\n"
_PREFIX_LINE = re.compile(r'^    "prefix": ("(?:[^"\\]|\\.)*"),?$', re.MULTILINE)


def _lazy_services(text: str) -> list[Mapping[str, Any]] | None:
    """parliament's service list with each entry decoded on demand, or None when the text is not laid out as
    ``json.dump(..., indent=2)`` writes it (then the caller decodes it whole)."""
    if not (text.startswith("[\n  {\n") and text.rstrip().endswith("\n  }\n]")):
        return None
    body = text.strip()[len("[\n  {\n"):-len("\n  }\n]")]
    services: list[Mapping[str, Any]] = []
    for chunk in body.split(_ENTRY_SEPARATOR):
        found = _PREFIX_LINE.search(chunk)  # the first is the only one: json.dump writes a key once
        if found is None:
            return None
        services.append(_LazyService(json.loads(found.group(1)), "{\n" + chunk + "\n  }"))
    return services


def _convert(parliament: Any, finding: Any) -> LintFinding:
    issue = str(finding.issue)
    title, severity = issue, LintSeverity.MEDIUM
    settings = parliament.config.get(issue)
    if settings is None:
        settings = _community_config().get(issue)
    if isinstance(settings, Mapping):
        title = str(settings.get("title", issue)).strip()
        try:
            severity = LintSeverity(str(settings.get("severity", "MEDIUM")).upper())
        except ValueError:
            severity = LintSeverity.MEDIUM
    location = finding.location if isinstance(finding.location, Mapping) else {}
    where = location.get("string", "")
    return LintFinding(
        issue=issue,
        title=title,
        severity=severity,
        location="" if where is None else str(where),
        detail=_detail_text(finding.detail),
        items=_detail_items(finding.detail),
        line=_int_or_none(location.get("line", location.get("lineno"))),
        column=_int_or_none(location.get("column")),
    )


@lru_cache(maxsize=1)
def _community_config() -> dict[str, Any]:
    """Titles and severities of parliament's community auditors (its CLI merges them into the
    global config; we read them without changing parliament's state)."""
    import yaml

    try:
        text = (
            resources.files("parliament").joinpath("community_auditors", "config_override.yaml").read_text()
        )
        loaded = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _detail_text(detail: Any) -> str:
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, Iterable) and not isinstance(detail, Mapping):
        return ", ".join(str(d) for d in detail)
    return str(detail)


def _detail_items(detail: Any) -> tuple[str, ...]:
    if isinstance(detail, list | tuple):
        return tuple(
            json.dumps(d, sort_keys=True, default=str) if isinstance(d, Mapping | list) else str(d)
            for d in detail
        )
    return ()


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _failure(issue: str, detail: str) -> LintFinding:
    titles = {
        "EXCEPTION": "An exception occurred during the audit",
        "MALFORMED_JSON": "JSON is malformed",
    }
    return LintFinding(
        issue=issue,
        title=titles.get(issue, issue),
        severity=LintSeverity.CRITICAL,
        location="",
        detail=detail,
    )


def _without_actions(text: str, drop: set[str]) -> str | None:
    """The document without the given Action/NotAction entries; statements left empty go too.

    None when nothing analysable remains or the text is not plain JSON.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    statements = doc.get("Statement")
    single = isinstance(statements, dict)
    if single:
        statements = [statements]
    if not isinstance(statements, list):
        return None
    kept: list[Any] = []
    for stmt in statements:
        if not isinstance(stmt, dict):
            kept.append(stmt)
            continue
        stmt = dict(stmt)
        emptied = False
        for element in ("Action", "NotAction"):
            value = stmt.get(element)
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list):
                continue
            left = [v for v in values if not (isinstance(v, str) and v in drop)]
            if not left:
                emptied = True
            stmt[element] = left if isinstance(value, list) else (left[0] if left else [])
        if not emptied:
            kept.append(stmt)
    if not kept:
        return None
    doc = dict(doc)
    doc["Statement"] = kept[0] if single and len(kept) == 1 else kept
    return json.dumps(doc, indent=2)
