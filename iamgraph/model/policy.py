"""IAM policy documents: parse, validate and normalize, with errors that name the place.

Grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
Elements: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html

The normalized form keeps what the author wrote (case, order, patterns) and only removes the
string-or-list ambiguity, so a normalized document re-serializes to an equivalent one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

import orjson

from iamgraph.errors import PolicyParseError
from iamgraph.model.memo import Asking, SecondSightCache
from iamgraph.model.slots import maker

VALID_VERSIONS = ("2012-10-17", "2008-10-17")
TOP_LEVEL_KEYS = frozenset({"Version", "Id", "Statement"})
STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)
PRINCIPAL_KEYS = ("AWS", "Service", "Federated", "CanonicalUser")
_PRINCIPAL_KEY_SET = frozenset(PRINCIPAL_KEYS)

ConditionValue = str | bool | int | float


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalSpec:
    """The value of a Principal or NotPrincipal element.

    ``wildcard`` is the bare ``"*"`` form. ``{"AWS": "*"}`` is kept as ``aws=("*",)``: AWS treats
    both as everyone, including anonymous callers, but the document says which one was written.
    """

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()

    def to_json(self) -> str | dict[str, list[str]]:
        if self.wildcard:
            return "*"
        out: dict[str, list[str]] = {}
        for key, values in (
            ("AWS", self.aws),
            ("Service", self.service),
            ("Federated", self.federated),
            ("CanonicalUser", self.canonical_user),
        ):
            if values:
                out[key] = list(values)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionClause:
    """One ``operator -> key -> values`` entry of a Condition block.

    ``operator`` is the full operator as written (``ForAnyValue:StringLikeIfExists``); ``key`` is the
    condition key as written (keys are matched case-insensitively by the engine); ``values`` are
    OR'd. Values keep their JSON type (AWS compares ``Bool`` and numeric values by their text).
    """

    operator: str
    key: str
    values: tuple[ConditionValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One statement. Exactly one of ``action``/``not_action`` is set; the others may be None."""

    index: int
    sid: str | None = None
    effect: Effect
    action: tuple[str, ...] | None = None
    not_action: tuple[str, ...] | None = None
    resource: tuple[str, ...] | None = None
    not_resource: tuple[str, ...] | None = None
    principal: PrincipalSpec | None = None
    not_principal: PrincipalSpec | None = None
    conditions: tuple[ConditionClause, ...] = ()

    @property
    def is_allow(self) -> bool:
        return self.effect is Effect.ALLOW

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sid is not None:
            out["Sid"] = self.sid
        out["Effect"] = self.effect.value
        for key, value in (
            ("Principal", self.principal),
            ("NotPrincipal", self.not_principal),
        ):
            if value is not None:
                out[key] = value.to_json()
        for key, values in (
            ("Action", self.action),
            ("NotAction", self.not_action),
            ("Resource", self.resource),
            ("NotResource", self.not_resource),
        ):
            if values is not None:
                out[key] = list(values)
        if self.conditions:
            cond: dict[str, dict[str, list[ConditionValue]]] = {}
            for clause in self.conditions:
                cond.setdefault(clause.operator, {})[clause.key] = list(clause.values)
            out["Condition"] = cond
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A parsed policy document. ``source`` names where it came from, for messages and findings."""

    version: str | None = None
    id: str | None = None
    statements: tuple[Statement, ...]
    source: str = field(default="<policy>", compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.version is not None:
            out["Version"] = self.version
        if self.id is not None:
            out["Id"] = self.id
        out["Statement"] = [s.to_json() for s in self.statements]
        return out


# The parse of each new document makes these (slots.py says why not through the classes' own __init__).
_new_policy = maker(Policy)
_new_statement = maker(Statement)
_new_principal = maker(PrincipalSpec)
_new_clause = maker(ConditionClause)


def load_document(raw: str | bytes | Mapping[str, Any], *, source: str = "<policy>") -> dict[str, Any]:
    """Turn a policy given as JSON text, URL-encoded JSON text (IAM's API form) or a mapping into a dict."""
    if type(raw) is dict or isinstance(raw, Mapping):  # a plain dict first: the abc check is slow
        return dict(raw)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyParseError(f"policy is not UTF-8 text ({exc})", source=source) from None
    if not isinstance(raw, str):
        raise PolicyParseError(f"a policy must be a JSON object, not {json_type_name(raw)}", source=source)
    text = raw.strip()
    if text.startswith("%"):
        # IAM's GetPolicyVersion/GetRolePolicy return RFC 3986 URL-encoded documents, whitespace
        # included: a document stored with a leading newline comes back as "%0A%7B...". JSON text
        # never starts with "%", so there is no ambiguity.
        # https://docs.aws.amazon.com/IAM/latest/APIReference/API_PolicyVersion.html
        text = unquote(text).strip()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyParseError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
        ) from None
    if not isinstance(doc, dict):
        raise PolicyParseError(f"a policy must be a JSON object, not {json_type_name(doc)}", source=source)
    return doc


def parse_policy(
    raw: str | bytes | Mapping[str, Any],
    *,
    source: str = "<policy>",
    require_resource: bool = False,
    principal: bool | None = None,
    statement_texts: tuple[bytes, ...] | None = None,
) -> Policy:
    """Parse and validate one policy document.

    ``require_resource``: identity, boundary, session and resource policies need Resource or
    NotResource in each statement; trust policies and SCPs may omit it.
    ``principal``: True for resource-based and trust policies (Principal/NotPrincipal required),
    False for identity-side policies (Principal forbidden), None to accept either.
    ``statement_texts``: ``statement_texts(raw)`` when the caller made it already (its key for the whole
    document), so the statements are not written out twice.
    """
    # A plain dict is only read, never changed: no copy (``load_document`` copies for callers that keep it).
    doc = raw if type(raw) is dict else load_document(raw, source=source)
    unknown = [] if TOP_LEVEL_KEYS.issuperset(doc) else sorted(set(doc) - TOP_LEVEL_KEYS)
    if unknown:
        raise PolicyParseError(
            f"unknown top-level key(s) {', '.join(map(repr, unknown))}; allowed: Version, Id, Statement",
            source=source,
        )
    version = doc.get("Version")
    if version is not None and version not in VALID_VERSIONS:
        raise PolicyParseError(
            f"Version must be one of {', '.join(VALID_VERSIONS)}, not {version!r}",
            source=source,
            location="Version",
        )
    pid = doc.get("Id")
    if pid is not None and not isinstance(pid, str):
        raise PolicyParseError(f"Id must be a string, not {json_type_name(pid)}", source=source, location="Id")
    if "Statement" not in doc:
        raise PolicyParseError("the policy has no Statement", source=source)
    raw_statements = doc["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise PolicyParseError(
            f"Statement must be an object or a list of objects, not {json_type_name(raw_statements)}",
            source=source,
            location="Statement",
        )
    if not raw_statements:
        raise PolicyParseError("the policy has 0 statements", source=source, location="Statement")
    if statement_texts is not None and len(statement_texts) == len(raw_statements):
        statements = tuple([_statements.get((text, i, require_resource, principal), _parse_statement_at,
                                            st, i, source, require_resource, principal)
                            for i, (st, text) in enumerate(zip(raw_statements, statement_texts, strict=True))])
    else:
        statements = tuple([_statement(st, i, source, require_resource, principal)
                            for i, st in enumerate(raw_statements)])
    return _new_policy(version=version, id=pid, statements=statements, source=source)


def statement_texts(doc: Any) -> tuple[bytes, ...] | None:
    """The JSON text of each statement of a document given as a dict: the key under which a parsed statement is
    shared (``_statement``), and with the document's Version and Id a key for the whole document. None when a
    statement cannot be keyed (not writable as JSON, or written with a ``null``: see ``_statement``), or the
    document has a key besides Version, Id and Statement (a key for the whole document must not leave out
    anything its parse reads). A statement that is no object still gets its text (a parse that fails is never
    kept, so the key is never looked up with a result)."""
    if type(doc) is not dict or not TOP_LEVEL_KEYS.issuperset(doc):
        return None
    raw = doc.get("Statement")
    if type(raw) is dict:
        raw = (raw,)
    elif type(raw) is not list:
        return None
    dumps = orjson.dumps
    try:
        texts = tuple([dumps(st) for st in raw])
    except TypeError:
        return None
    # One search over all of them: "null" cannot straddle two texts (each is a whole JSON value, and an
    # unquoted n, u or l only occurs inside a literal).
    if b"null" in b"".join(texts):
        return None
    return texts


_statements: SecondSightCache[tuple[bytes, int, bool, bool | None], Statement] = SecondSightCache(
    50_000, track_values=True
)


def shared_statement(st: Statement) -> bool:
    """Whether ``st`` is a statement the parse hands out to every document that carries it (kept from its second
    sight), rather than one made for a single document: what is derived from it (the engine's compiled form)
    is worth keeping by its identity."""
    return _statements.holds(st)


def _statement(st: Any, index: int, source: str, require_resource: bool, principal: bool | None) -> Statement:
    """``_parse_statement``, shared by documents that carry the same statement at the same place.

    The key is the statement's JSON text (orjson keeps the types apart: ``1``, ``1.0``, ``true``, ``"1"``)
    with what validation depends on. Only a statement that parsed is kept, and a parse error names
    ``source``, which is no part of a Statement. Not cached: anything orjson cannot write, and text with a
    ``null`` (orjson writes NaN and infinities as null, which would make an invalid statement look like
    a valid one with a null Sid).
    """
    asking = _asking_for(index, require_resource, principal)
    if type(st) is dict and asking.worth_asking():
        try:
            raw = orjson.dumps(st)
        except TypeError:
            raw = b"null"
        if b"null" not in raw:
            made, kept = _statements.get_kept((raw, index, require_resource, principal), _parse_statement_at,
                                              st, index, source, require_resource, principal)
            asking.saw(kept)
            return made
    # Not asked (statements of this kind have kept missing, both whole and as templates: memo.Asking), or not keyed:
    # the statement's own parse, which the kept ones are equal to.
    return _parse_statement(st, index, source=source, require_resource=require_resource, principal=principal)


_statement_asking: dict[tuple[int, bool, bool | None], Asking] = {}
"""Per place (index, up to 15) and kind of document (the validation options: identity-side, resource, SCP, RCP), whether
its statements are worth a key (a batch's lines often carry a new statement at one place and a repeated one, or one
read from its template, at the next); a statement read from its template counts as found."""


def _asking_for(index: int, require_resource: bool, principal: bool | None) -> Asking:
    key = (index if index < 16 else 16, require_resource, principal)
    asking = _statement_asking.get(key)
    if asking is None:
        asking = _statement_asking[key] = Asking()
    return asking


def _parse_statement_at(st: Any, index: int, source: str, require_resource: bool, principal: bool | None) -> Statement:
    """The parse of a statement whose text is not kept. Distinct documents often differ from each other only in
    the Resource (or NotResource) of a statement (the same grant on each tenant's bucket): such a statement is
    parsed from its template, the same statement with ``"*"`` there, whose parse is kept from its second sight,
    and only its own Resource is read. The template has every element of the statement but that value, so its
    parse made every check but the one on that value; the value is read by the same ``_strings``. Anything
    that fails either way is parsed again whole, which raises the error the statement's own parse raises."""
    if type(st) is dict and ("Resource" in st) != ("NotResource" in st):
        key = "Resource" if "Resource" in st else "NotResource"
        template = dict(st)
        template[key] = "*"
        try:
            text = orjson.dumps(template)
        except TypeError:
            text = b"null"
        tkey = (text, index, require_resource, principal)
        # A template seen for the first time is only noted: its parse would not be kept, and the statement's own
        # parse is the same Statement made in one step (documents that differ beyond their resources, whose
        # templates seldom come back, pay no detour).
        if b"null" not in text and _templates.note(tkey):
            try:
                base = _templates.get(tkey, _parse_template, template, index, source, require_resource, principal)
                made = with_resources(base, key, st[key])
                _asking_for(index, require_resource, principal).saw(True)
                return made
            except PolicyParseError:
                pass
    return _parse_statement(st, index, source=source, require_resource=require_resource, principal=principal)


def with_resources(base: Statement, key: str, value: Any) -> Statement:
    """The parse of a statement whose template parsed as ``base``: the template is the statement with ``"*"`` as
    its ``key`` (Resource or NotResource, the one it has), so ``base`` holds the parse of every other element,
    and ``value`` is read as the statement's own parse reads it (``_strings``). Raises PolicyParseError when
    ``value`` is no valid Resource; callers then parse the statement whole, for the error its own parse gives."""
    values = _strings({key: value}, key, "", "<policy>")
    return _new_statement(
        index=base.index, sid=base.sid, effect=base.effect, action=base.action, not_action=base.not_action,
        resource=values if key == "Resource" else None, not_resource=None if key == "Resource" else values,
        principal=base.principal, not_principal=base.not_principal, conditions=base.conditions,
    )


def _parse_template(st: Any, index: int, source: str, require_resource: bool, principal: bool | None) -> Statement:
    return _parse_statement(st, index, source=source, require_resource=require_resource, principal=principal)


_templates: SecondSightCache[tuple[bytes, int, bool, bool | None], Statement] = SecondSightCache(50_000)


def _parse_statement(
    st: Any, index: int, *, source: str, require_resource: bool, principal: bool | None
) -> Statement:
    if type(st) is dict:
        made = _plain_statement(st, index, require_resource, principal)
        if made is not None:
            return made
    return _checked_statement(st, index, source=source, require_resource=require_resource, principal=principal)


_EFFECTS = {"Allow": Effect.ALLOW, "Deny": Effect.DENY}


def _plain_texts(value: Any) -> tuple[str, ...] | None:
    """``_strings`` of a value in its plain valid form (a non-empty str, or a non-empty list of them), else None."""
    if type(value) is str:
        return (value,) if value else None
    if type(value) is list and value:
        for item in value:
            if type(item) is not str or not item:
                return None
        return tuple(value)
    return None


def _plain_statement(st: dict[str, Any], index: int, require_resource: bool, principal: bool | None) -> Statement | None:
    """The parse of a statement whose every element is in its plain valid form, in one pass; None for anything else,
    which ``_checked_statement`` parses (and refuses with its message). A batch of distinct documents parses every
    new statement once: this pass makes the same Statement without a helper call per element. What it accepts,
    ``_checked_statement`` accepts as the same Statement (tests/model/test_model_statement_cache.py compares them on
    generated statements, valid and not)."""
    if not STATEMENT_KEYS.issuperset(st):
        return None
    get = st.get
    sid = get("Sid")
    if sid is not None and type(sid) is not str:
        return None
    raw = get("Effect")
    effect = _EFFECTS.get(raw) if type(raw) is str else None
    if effect is None:
        return None
    action = not_action = resource = not_resource = None
    if "Action" in st:
        if "NotAction" in st:
            return None
        names = action = _plain_texts(st["Action"])
    elif "NotAction" in st:
        names = not_action = _plain_texts(st["NotAction"])
    else:
        return None
    if names is None:
        return None
    for name in names:
        if name != "*":
            prefix, _, rest = name.partition(":")
            if not prefix or not rest or ":" in rest:
                return None
    if "Resource" in st:
        if "NotResource" in st:
            return None
        resource = _plain_texts(st["Resource"])
        if resource is None:
            return None
    elif "NotResource" in st:
        not_resource = _plain_texts(st["NotResource"])
        if not_resource is None:
            return None
    elif require_resource:
        return None
    spec = not_spec = None
    if "Principal" in st:
        if principal is False or "NotPrincipal" in st:
            return None
        spec = _plain_principal(st["Principal"])
        if spec is None:
            return None
    elif "NotPrincipal" in st:
        if principal is False:
            return None
        not_spec = _plain_principal(st["NotPrincipal"])
        if not_spec is None:
            return None
    elif principal is True:
        return None
    block = get("Condition")
    clauses: tuple[ConditionClause, ...] = ()
    if block is not None:
        if type(block) is not dict:
            return None
        made: list[ConditionClause] = []
        for operator, entries in block.items():
            if type(operator) is not str or not operator or type(entries) is not dict or not entries:
                return None
            for key, value in entries.items():
                if type(value) is list:
                    for item in value:
                        if type(item) not in _PLAIN_VALUES:
                            return None
                    values = tuple(value)
                elif type(value) in _PLAIN_VALUES:
                    values = (value,)
                else:
                    return None
                made.append(_new_clause(operator=operator, key=key, values=values))
        clauses = tuple(made)
    return _new_statement(index=index, sid=sid, effect=effect, action=action, not_action=not_action,
                          resource=resource, not_resource=not_resource, principal=spec, not_principal=not_spec,
                          conditions=clauses)


def _plain_principal(value: Any) -> PrincipalSpec | None:
    """``_principal`` of a value in its plain valid form ("*", or an object of known types with plain strings)."""
    if type(value) is str:
        return _WILDCARD_PRINCIPAL if value == "*" else None
    if type(value) is not dict or not value or not _PRINCIPAL_KEY_SET.issuperset(value):
        return None
    parts: dict[str, tuple[str, ...]] = {}
    for ptype, names in value.items():
        texts = _plain_texts(names)
        if texts is None:
            return None
        parts[ptype] = texts
    return _new_principal(wildcard=False, aws=parts.get("AWS", ()), service=parts.get("Service", ()),
                          federated=parts.get("Federated", ()), canonical_user=parts.get("CanonicalUser", ()))


def _checked_statement(
    st: Any, index: int, *, source: str, require_resource: bool, principal: bool | None
) -> Statement:
    """The parse of a statement element by element, with the message of the first element that is not valid."""
    # Locations are built only for a message: a batch of distinct documents parses many statements that pass.
    where = f"Statement[{index}]"
    if not isinstance(st, dict):
        raise PolicyParseError(
            f"a statement must be an object, not {json_type_name(st)}", source=source, location=where
        )
    if not STATEMENT_KEYS.issuperset(st):
        unknown = sorted(set(st) - STATEMENT_KEYS)
        raise PolicyParseError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in statement", source=source, location=where
        )
    sid = st.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyParseError(
            f"Sid must be a string, not {json_type_name(sid)}", source=source, location=f"{where}.Sid"
        )
    effect_raw = st.get("Effect")
    if effect_raw == "Allow":
        effect = Effect.ALLOW
    elif effect_raw == "Deny":
        effect = Effect.DENY
    else:
        # Effect is case-sensitive in IAM: "allow" is rejected by the service.
        raise PolicyParseError(
            f'Effect must be "Allow" or "Deny", not {effect_raw!r}', source=source, location=f"{where}.Effect"
        )
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
        if a in st and b in st:
            raise PolicyParseError(f"a statement cannot have both {a} and {b}", source=source, location=where)
    if "Action" not in st and "NotAction" not in st:
        raise PolicyParseError(
            "the statement has neither Action nor NotAction", source=source, location=where
        )
    if require_resource and "Resource" not in st and "NotResource" not in st:
        raise PolicyParseError(
            "the statement has neither Resource nor NotResource", source=source, location=where
        )
    if principal is True and "Principal" not in st and "NotPrincipal" not in st:
        raise PolicyParseError(
            "a resource-based policy statement needs Principal or NotPrincipal", source=source, location=where
        )
    if principal is False and ("Principal" in st or "NotPrincipal" in st):
        raise PolicyParseError(
            "an identity-based policy cannot have Principal or NotPrincipal", source=source, location=where
        )
    action = _actions(st, "Action", where, source)
    not_action = _actions(st, "NotAction", where, source)
    resource = _strings(st, "Resource", where, source)
    not_resource = _strings(st, "NotResource", where, source)
    return _new_statement(
        index=index,
        sid=sid,
        effect=effect,
        action=action,
        not_action=not_action,
        resource=resource,
        not_resource=not_resource,
        principal=_principal(st, "Principal", where, source),
        not_principal=_principal(st, "NotPrincipal", where, source),
        conditions=_conditions(st.get("Condition"), where, source),
    )


def _strings(st: dict[str, Any], key: str, where: str, source: str) -> tuple[str, ...] | None:
    if key not in st:
        return None
    value = st[key]
    if type(value) is str:
        if value:
            return (value,)
        value = [value]
    elif type(value) is list and value:
        for item in value:
            if type(item) is not str or not item:
                break
        else:
            return tuple(value)
    # Not plainly valid: the checks below say what is wrong (or accept a str or list subclass).
    loc = f"{where}.{key}"
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PolicyParseError(
            f"{key} must be a string or a list of strings, not {json_type_name(value)}", source=source, location=loc
        )
    if not value:
        raise PolicyParseError(f"{key} is an empty list", source=source, location=loc)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise PolicyParseError(
                f"{key} entries must be strings, not {json_type_name(item)}", source=source, location=f"{loc}[{i}]"
            )
        if not item:
            raise PolicyParseError(f"{key} entry is an empty string", source=source, location=f"{loc}[{i}]")
    return tuple(value)


def _actions(st: dict[str, Any], key: str, where: str, source: str) -> tuple[str, ...] | None:
    values = _strings(st, key, where, source)
    if values is None:
        return None
    for i, action in enumerate(values):
        if action == "*":
            continue
        prefix, sep, name = action.partition(":")
        if not sep or not prefix or not name or ":" in name:
            raise PolicyParseError(
                f"{action!r} is not an action: expected 'service:Action' or '*'",
                source=source,
                location=f"{where}.{key}[{i}]",
            )
    return values


def _principal(st: dict[str, Any], key: str, where: str, source: str) -> PrincipalSpec | None:
    if key not in st:
        return None
    value = st[key]
    if value == "*":
        return _WILDCARD_PRINCIPAL
    loc = f"{where}.{key}"
    if not isinstance(value, dict):
        raise PolicyParseError(
            f'{key} must be "*" or an object with AWS/Service/Federated/CanonicalUser, not {json_type_name(value)}',
            source=source,
            location=loc,
        )
    unknown = [] if _PRINCIPAL_KEY_SET.issuperset(value) else sorted(set(value) - _PRINCIPAL_KEY_SET)
    if unknown:
        raise PolicyParseError(
            f"unknown principal type(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(PRINCIPAL_KEYS)}",
            source=source,
            location=loc,
        )
    if not value:
        raise PolicyParseError(f"{key} is an empty object", source=source, location=loc)
    parts: dict[str, tuple[str, ...]] = {}
    for ptype in PRINCIPAL_KEYS:
        if ptype in value:
            parts[ptype] = _strings(value, ptype, loc, source) or ()
    return _new_principal(
        wildcard=False,
        aws=parts.get("AWS", ()),
        service=parts.get("Service", ()),
        federated=parts.get("Federated", ()),
        canonical_user=parts.get("CanonicalUser", ()),
    )


_PLAIN_VALUES = frozenset({str, bool, int})
"""Condition value types that need no further check (a float must be finite)."""
_WILDCARD_PRINCIPAL = PrincipalSpec(wildcard=True)


def _conditions(value: Any, where: str, source: str) -> tuple[ConditionClause, ...]:
    if value is None:
        return ()
    loc = f"{where}.Condition"
    if not isinstance(value, dict):
        raise PolicyParseError(
            f"Condition must be an object, not {json_type_name(value)}", source=source, location=loc
        )
    clauses: list[ConditionClause] = []
    for operator, block in value.items():
        if not isinstance(operator, str) or not operator:
            raise PolicyParseError(
                "a condition operator must be a non-empty string", source=source, location=loc
            )
        if not isinstance(block, dict) or not block:
            raise PolicyParseError(
                f"condition operator {operator} needs an object of key: value(s), not {json_type_name(block)}",
                source=source,
                location=f"{loc}.{operator}",
            )
        for key, raw in block.items():
            items = raw if isinstance(raw, list) else [raw]
            for i, item in enumerate(items):
                if type(item) in _PLAIN_VALUES:
                    continue
                kloc = f"{loc}.{operator}.{key}"
                if isinstance(item, (dict, list)) or item is None:
                    raise PolicyParseError(
                        f"condition values must be strings, numbers or booleans, not {json_type_name(item)}",
                        source=source,
                        location=f"{kloc}[{i}]" if isinstance(raw, list) else kloc,
                    )
                if isinstance(item, float) and not math.isfinite(item):
                    # Python's json reads NaN/Infinity, which JSON (RFC 8259) and IAM do not have.
                    raise PolicyParseError(
                        f"condition value {item!r} is not a finite number",
                        source=source,
                        location=f"{kloc}[{i}]" if isinstance(raw, list) else kloc,
                    )
            clauses.append(_new_clause(operator=operator, key=key, values=tuple(items)))
    return tuple(clauses)


def json_type_name(value: Any) -> str:
    """'a string', 'a list', 'null'... for error messages about JSON values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
