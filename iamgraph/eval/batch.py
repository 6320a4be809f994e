"""The batch format of ``iamgraph simulate --batch``: one JSON object in, one JSON object out.

Input line::

    {"id": any,
     "request": {"principal": ARN | "anonymous" | service principal, "action": "svc:Action",
                 "resource": ARN, "resourceAccount": "123456789012", "context": {...}},
     "policies": {"identity": [doc, ...], "resource": doc | null, "permissionBoundary": doc | null,
                  "session": doc | null, "scps": [[doc, ...], ...], "rcps": [[doc, ...], ...],
                  "restrictPublicBuckets": false, "kmsGrants": [ListGrants entry, ...],
                  "vpcEndpointPolicy": doc | null, "awsManagedResource": false}}

Output line::

    {"id": ..., "decision": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied",
     "conditions": [[{"operator", "key", "values", "negated"}, ...], ...],
     "reasons": [{"policyType", "policyId", "statementIndex", "sid", "effect"}, ...],
     "blockedBy": [...], "orgGaps": [{"policyType", "index", "level", "policyIds"}, ...],
     "refusedBy": null | {"rule", "reason", "doc"}, "warnings": ["..."], "error": null | "message"}

``evaluate_line`` never raises on bad input: the line gets ``"error"`` and a decision of
``ImplicitlyDenied`` (an input that cannot be evaluated never reads as a grant). ``evaluate_lines`` reads a
whole batch as bytes, one line at a time: a line that is not UTF-8 or not JSON gets its own error line and
every other line its answer. Policies that parse
but cannot be fully evaluated (an unknown condition operator) keep the decision the engine reached
and also fill ``error``, so they are never silently dropped.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from iamgraph.catalog import require_action
from iamgraph.errors import IamGraphError, InputError, PolicyParseError
from iamgraph.eval.compiled import transient
from iamgraph.eval.engine import authorize, named_policy
from iamgraph.eval.kms_grants import grant_policy
from iamgraph.eval.types import (
    Decision,
    DecisionKind,
    EvaluationError,
    Mode,
    NamedPolicy,
    OrgLevelGap,
    OrgLevelRef,
    PolicySet,
    PolicyType,
    Request,
    ResidualCondition,
    ServiceRuleRef,
    StatementRef,
)
from iamgraph.gcpause import without_cyclic_gc
from iamgraph.model.memo import Asking, SecondSightCache, trimmed
from iamgraph.model.policy import Policy, json_type_name, with_resources
from iamgraph.model.slots import maker

_REQUEST_KEYS = frozenset({"principal", "action", "resource", "resourceAccount", "context"})
_POLICY_KEYS = frozenset(
    {"identity", "resource", "permissionBoundary", "session", "scps", "rcps", "restrictPublicBuckets",
     "kmsGrants", "vpcEndpointPolicy", "awsManagedResource"}
)
_LINE_KEYS = frozenset({"id", "request", "policies"})


def evaluate_line(obj: Any, mode: Mode = Mode.STRICT) -> dict[str, Any]:
    """Evaluate one batch line. Never raises on bad input."""
    line_id = obj.get("id") if _is_obj(obj) else None
    try:
        request, policies = parse_line(obj)
        decision = authorize(request, policies, mode=mode)
    except IamGraphError as exc:
        return _error_line(line_id, str(exc))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # defensive: never crash a batch
        return _error_line(line_id, f"cannot evaluate this line: {exc}")
    return decision_to_json(line_id, decision)


_BOM = b"\xef\xbb\xbf"


def evaluate_lines(
    lines: Iterable[bytes], source: str, mode: Mode = Mode.STRICT
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, output object) for each non-blank input line, in order. Never raises on bad input.

    Each line is decoded on its own (strict UTF-8), so one bad byte costs only its line: the line gets an
    ``error`` naming ``source`` and the line number, and the batch goes on.
    """
    loads = orjson.loads
    # Python's cyclic garbage collector off while a batch is read (``iamgraph.gcpause``: back on, if it was, when the
    # last such section in the process ends). Every line of distinct documents makes a few thousand short-lived
    # objects (its parse, compiled statements, plans, the answer), and the collector's passes over them, and over
    # everything the process keeps, cost about a fifth of such a line's CPU time (``benchmarks/bench_eval.py``,
    # complex varied: 320 against 255 µs per line with the collector off; docs/benchmarks.md, "Fifth round").
    # Reference counting frees all of it when the line is done; the young generations are still collected every
    # ``YOUNG_COLLECTION_LINES`` lines, so a cycle made by a line is freed within that many lines unless it lives
    # through one of those passes (https://docs.python.org/3/library/gc.html).
    with without_cyclic_gc() as owner:
        yield from _answers(lines, source, mode, loads, owner)


YOUNG_COLLECTION_LINES = 10_000
"""While ``evaluate_lines`` runs with the cyclic collector off, its young generations are collected after every
this many lines (an object kept that long is moved out of the young generations, where it is not walked again)."""


def _answers(
    lines: Iterable[bytes], source: str, mode: Mode, loads: Callable[[bytes | str], Any], owner: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, raw in enumerate(lines, start=1):
        if owner and n % YOUNG_COLLECTION_LINES == 0:
            gc.collect(1)
        if n == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if not raw or raw.isspace():  # a blank line (no stripped copy of every line to find out)
            continue
        try:
            # orjson reads the bytes and checks their UTF-8 itself: no decoded copy of the line.
            obj = loads(raw)
        except orjson.JSONDecodeError:
            # Only a bad line pays for the messages, made as they always were: from the decoded text.
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield n, _error_line(None, f"{source}: line {n}: not UTF-8 (byte {exc.start + 1}: {exc.reason})")
                continue
            try:
                obj = loads(text)
            except orjson.JSONDecodeError as exc:
                yield n, _error_line(None, f"{source}: line {n}: invalid JSON ({exc})")
                continue
        res = evaluate_line(obj, mode)
        if res["error"] is not None:
            # Every error of a batch names the input and the line alike (not UTF-8, not JSON, not an object, a bad
            # field), so a reader can go from any error line to the input line it answers.
            res["error"] = f"{source}: line {n}: {res['error']}"
        yield n, res


def _is_obj(value: Any) -> bool:
    # dict first: the abc check behind Mapping is slow and almost every value is a plain dict.
    return type(value) is dict or isinstance(value, Mapping)


def parse_line(obj: Any) -> tuple[Request, PolicySet]:
    """Turn one batch line into a Request and a PolicySet; raises InputError naming the place."""
    if not _is_obj(obj):
        raise InputError(f"a batch line must be a JSON object, not {json_type_name(obj)}")
    extra = [] if _LINE_KEYS.issuperset(obj) else sorted(set(obj) - _LINE_KEYS)
    if extra:
        raise InputError(f"unknown key(s) {', '.join(extra)}; expected id, request, policies")
    req = obj.get("request")
    if not _is_obj(req):
        raise InputError("request must be an object", location="request")
    extra = [] if _REQUEST_KEYS.issuperset(req) else sorted(set(req) - _REQUEST_KEYS)
    if extra:
        raise InputError(f"unknown key(s) {', '.join(extra)} in request", location="request")
    for key in ("principal", "action", "resource"):
        value = req.get(key)
        if not value or not isinstance(value, str):
            raise InputError(f"request.{key} must be a non-empty string", location=f"request.{key}")
    ra = req.get("resourceAccount")
    if ra is not None and not isinstance(ra, str):
        raise InputError("request.resourceAccount must be a string", location="request.resourceAccount")
    context = req.get("context") or {}
    if not _is_obj(context):
        raise InputError("request.context must be an object", location="request.context")
    action = req["action"]
    if action not in _known_actions:
        # A typo (``s3:GetObjekt``) must not be answered as if it were a real action: the line gets an error naming
        # the nearest catalog actions, as ``simulate --action`` refuses it (catalog.require_action).
        try:
            require_action(action)
        except InputError as exc:
            raise InputError(str(exc), location="request.action") from None
        if len(_known_actions) < 100_000:
            _known_actions.add(action)
    request = _new_request(
        principal=req["principal"],
        action=action,
        resource=req["resource"],
        resource_account=ra,
        context=dict(context),
    )
    pol = obj.get("policies")
    if pol is None:
        pol = {}
    if not _is_obj(pol):
        raise InputError("policies must be an object", location="policies")
    if type(pol) is dict and not pol.get("kmsGrants") and _set_cache.worth_asking():
        # Lines of one batch often carry the same policies: the whole set is parsed once, from its second
        # sight (memo.py). Its JSON text is the key; text with a ``null`` is not cached, because orjson
        # writes NaN as null (a NaN where a document belongs is an error, a null is "no policy"). KMS
        # grants become policies on the line's resource, so lines with grants are parsed each time.
        try:
            text = orjson.dumps(pol)
        except TypeError:
            text = b"null"
        if b"null" not in text:
            # A set seen before is parsed whole (and kept); one seen for the first time may come from its template.
            make = _policy_set if _policy_sets.known(text) else _template_or_whole
            policies, kept = _policy_sets.get_kept(text, make, pol, request.resource)
            _set_cache.saw(kept)
            return request, policies
    if type(pol) is dict and not pol.get("kmsGrants") and _template_asking.worth_asking():
        made = _from_template(pol)
        if made is not None:
            return request, made
    return request, _policy_set(pol, request.resource)


_known_actions: set[str] = set()
"""Request actions of batch lines already found in the catalog (as written: the check is asked once per spelling)."""

_policy_sets: SecondSightCache[bytes, PolicySet] = SecondSightCache(10_000)


_set_cache = Asking()  # whether to look a line's whole policy set up (its key serializes every document)


# ------------------------------------------------------------------------------ policies from their template
#
# Lines of distinct documents often differ only in the Resource of some statements (each line's grant on its own
# bucket, beside the same SCPs and boundary). Such a line's ``policies`` is read from its template, the same
# object with "*" as each of those statements' Resource (or NotResource), whose parse is kept from its second
# sight: the documents that differ are the template's documents with those statements' own Resource read by the
# parse's own reading (``model.policy.with_resources``), and every other member is the template's. The template has
# every element of the line but those values, so its parse made every check but the ones on them (the argument of
# ``model.policy._parse_statement_at``, one statement at a time); anything that fails is parsed whole again, for the
# answer or error the line's own parse gives. Lines with KMS grants (policies made from the line's resource) and
# text with ``null`` (see parse_line) are left to the general parse. Only speed depends on this, never an answer.

_SINGLE_MEMBERS = ("resource", "permissionBoundary", "session", "vpcEndpointPolicy")
_Place = tuple[str, int]
"""A document's member and its index in the member (0 for a member that holds one document)."""


def _template_or_whole(pol: dict[str, Any], resource: str) -> PolicySet:
    made = _from_template(pol) if not pol.get("kmsGrants") and _template_asking.worth_asking() else None
    return made if made is not None else _policy_set(pol, resource)


def _doc_template(doc: Any, place: _Place, subs: list[tuple[_Place, int, str, Any]]) -> Any:
    """``doc`` with "*" as the Resource or NotResource of each of its statements that has one, not "*" already;
    each value taken out is noted in ``subs``. ``doc`` itself when nothing is."""
    if type(doc) is not dict:
        return doc
    statements = doc.get("Statement")
    if type(statements) is not list:
        return doc
    copied: list[Any] | None = None
    for j, st in enumerate(statements):
        if type(st) is not dict:
            continue
        if "Resource" in st:
            if "NotResource" in st:
                continue
            key = "Resource"
        elif "NotResource" in st:
            key = "NotResource"
        else:
            continue
        value = st[key]
        if type(value) is str and value == "*":
            continue
        template = dict(st)
        template[key] = "*"
        if copied is None:
            copied = list(statements)
        copied[j] = template
        subs.append((place, j, key, value))
    if copied is None:
        return doc
    out = dict(doc)
    out["Statement"] = copied
    return out


def _from_template(pol: dict[str, Any]) -> PolicySet | None:
    """The parse of ``pol`` from its template's, or None (left to the general parse): no statement to take out,
    a template not seen before, or anything that fails."""
    subs: list[tuple[_Place, int, str, Any]] = []
    template = dict(pol)
    docs = pol.get("identity")
    if type(docs) is list:
        copied = None
        for i, doc in enumerate(docs):
            t = _doc_template(doc, ("identity", i), subs)
            if t is not doc:
                if copied is None:
                    copied = list(docs)
                copied[i] = t
        if copied is not None:
            template["identity"] = copied
    for name in _SINGLE_MEMBERS:
        doc = pol.get(name)
        if type(doc) is dict:
            t = _doc_template(doc, (name, 0), subs)
            if t is not doc:
                template[name] = t
    if not subs:
        return None  # nothing differs from a template: the caches of the general parse serve such lines
    try:
        text = orjson.dumps(template)
    except TypeError:
        return None
    if b"null" in text:
        return None
    h = hash(text)
    hit = _templates.get(h)
    if hit is None or hit[0] != text:
        _template_asking.saw(False)
        if h not in _templates_seen:
            if len(_templates_seen) >= 40_000:
                _templates_seen.clear()
            _templates_seen.add(h)
            return None
        try:
            base: PolicySet | None = _policy_set(template, "")
        except IamGraphError:
            base = None  # kept as such: the line's own parse says what is wrong
        with _templates_lock:
            if len(_templates) >= 10_000:
                _templates.clear()
            _templates[h] = (trimmed(text), base)
    else:
        base = hit[1]
        _template_asking.saw(base is not None)  # a template that does not parse is no help either
    if base is None:
        return None
    try:
        return _with_resources(base, subs)
    except PolicyParseError:
        return None


def _with_resources(base: PolicySet, subs: list[tuple[_Place, int, str, Any]]) -> PolicySet:
    """``base``, the parse of a template, with the values of ``subs`` put back into its documents."""
    by_doc: dict[_Place, list[tuple[int, str, Any]]] = {}
    for place, j, key, value in subs:
        by_doc.setdefault(place, []).append((j, key, value))
    identity = list(base.identity)
    single: dict[str, NamedPolicy | None] = {}
    for place, changes in by_doc.items():
        name, i = place
        named = identity[i] if name == "identity" else _single(base, name)
        assert named is not None  # the template has a document wherever the line has one
        statements = list(named.policy.statements)
        for j, key, value in changes:
            statements[j] = with_resources(statements[j], key, value)
        policy = _new_policy(version=named.policy.version, id=named.policy.id, statements=tuple(statements),
                             source=named.policy.source)
        # The line's own document, compiled from the template's (compiled.transient).
        transient(policy, template=named.policy, changed=[j for j, _, _ in changes])
        made = _new_named(policy_id=named.policy_id, policy=policy)
        if name == "identity":
            identity[i] = made
        else:
            single[name] = made
    return _new_policy_set(
        identity=tuple(identity),
        resource=single.get("resource", base.resource),
        permission_boundary=single.get("permissionBoundary", base.permission_boundary),
        session=single.get("session", base.session),
        scps=base.scps,
        rcps=base.rcps,
        kms_grants=(),
        vpc_endpoint_policy=single.get("vpcEndpointPolicy", base.vpc_endpoint_policy),
        restrict_public_buckets=base.restrict_public_buckets,
        aws_managed_resource=base.aws_managed_resource,
        scp_levels=(),
        rcp_levels=(),
        unresolved=(),
    )


def _single(ps: PolicySet, name: str) -> NamedPolicy | None:
    return {"resource": ps.resource, "permissionBoundary": ps.permission_boundary, "session": ps.session,
            "vpcEndpointPolicy": ps.vpc_endpoint_policy}[name]


_templates: dict[int, tuple[bytes, PolicySet | None]] = {}
_templates_seen: set[int] = set()
_templates_lock = threading.Lock()
_template_asking = Asking()


def _policy_set(pol: Mapping[str, Any], resource: str) -> PolicySet:
    extra = [] if _POLICY_KEYS.issuperset(pol) else sorted(set(pol) - _POLICY_KEYS)
    if extra:
        raise InputError(f"unknown key(s) {', '.join(extra)} in policies", location="policies")
    identity = _slot("identity", pol.get("identity"), _identity)
    restrict = pol.get("restrictPublicBuckets", False)
    if not isinstance(restrict, bool):
        raise InputError("must be true or false", location="policies.restrictPublicBuckets")
    aws_managed = pol.get("awsManagedResource", False)
    if not isinstance(aws_managed, bool):
        raise InputError("must be true or false", location="policies.awsManagedResource")
    return _new_policy_set(
        identity=identity,
        resource=_slot("resource", pol.get("resource"), _optional, "policies.resource", PolicyType.RESOURCE),
        permission_boundary=_slot("permissionBoundary", pol.get("permissionBoundary"), _optional,
                                  "policies.permissionBoundary", PolicyType.PERMISSION_BOUNDARY),
        session=_slot("session", pol.get("session"), _optional, "policies.session", PolicyType.SESSION),
        scps=_slot("scps", pol.get("scps"), _levels, "policies.scps", PolicyType.SCP),
        rcps=_slot("rcps", pol.get("rcps"), _levels, "policies.rcps", PolicyType.RCP),
        kms_grants=() if pol.get("kmsGrants") is None else tuple(
            grant_policy(g, resource, f"policies.kmsGrants[{i}]")
            for i, g in enumerate(_list(pol.get("kmsGrants"), "policies.kmsGrants"))
        ),
        vpc_endpoint_policy=_slot("vpcEndpointPolicy", pol.get("vpcEndpointPolicy"), _optional,
                                  "policies.vpcEndpointPolicy", PolicyType.VPC_ENDPOINT),
        restrict_public_buckets=restrict,
        aws_managed_resource=aws_managed,
        scp_levels=(),
        rcp_levels=(),
        unresolved=(),
    )


# Made for every line (slots.py says why not through the classes' own __init__).
_new_request = maker(Request)
_new_policy_set = maker(PolicySet)
_new_policy = maker(Policy)
_new_named = maker(NamedPolicy)


def _identity(docs: Any) -> tuple[NamedPolicy, ...]:
    return tuple([_policy(doc, f"policies.identity[{i}]", PolicyType.IDENTITY)
                  for i, doc in enumerate(_list(docs, "policies.identity"))])


_slots: SecondSightCache[tuple[str, bytes], Any] = SecondSightCache(10_000)
_slot_asking = {name: Asking() for name in
                ("identity", "resource", "permissionBoundary", "session", "scps", "rcps", "vpcEndpointPolicy")}


def _slot(name: str, value: Any, parse: Callable[..., Any], *args: Any) -> Any:
    """``parse(value, *args)``, the parse of one member of a line's ``policies``, shared from its second sight
    by the lines that carry the same JSON text there. Lines of distinct documents often repeat some of them
    (the same SCP chain and permissions boundary beside each line's own identity policy): one key for the
    member instead of one per statement of each of its documents. The same exclusion of text with ``null``
    as the whole set's (parse_line); a member that keeps missing is asked about only now and then (memo.Asking).
    Only a parse that succeeds is kept, and it depends on nothing but the member's value and its place."""
    if value is None:
        # What each parse makes of a member left out (no identity policies, no such policy, no levels).
        return () if parse is not _optional else None
    asking = _slot_asking[name]
    if asking.worth_asking():
        try:
            text = orjson.dumps(value)
        except TypeError:
            text = b"null"
        if b"null" not in text:
            out, kept = _slots.get_kept((name, text), parse, value, *args)
            asking.saw(kept)
            return out
    return parse(value, *args)


def _policy(doc: Any, where: str, ptype: PolicyType) -> NamedPolicy:
    if not (_is_obj(doc) or isinstance(doc, str)):
        raise InputError(f"a policy must be a JSON object, not {json_type_name(doc)}", location=where)
    try:
        return named_policy(doc, where, ptype)
    except InputError as exc:
        # Name the policy by its place in the line, then the statement inside it.
        inner = ": ".join(x for x in (exc.location, exc.message) if x)
        raise InputError(inner, location=where) from None


def _optional(doc: Any, where: str, ptype: PolicyType) -> NamedPolicy | None:
    return None if doc is None else _policy(doc, where, ptype)


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"must be a list, not {json_type_name(value)}", location=where)
    return value


def _levels(value: Any, where: str, ptype: PolicyType) -> tuple[tuple[NamedPolicy, ...], ...]:
    levels = []
    for i, level in enumerate(_list(value, where)):
        docs = level if type(level) is list else _list(level, f"{where}[{i}]")  # a place named only for an error
        levels.append(tuple(_policy(d, f"{where}[{i}][{j}]", ptype) for j, d in enumerate(docs)))
    return tuple(levels)


def _error_line(line_id: Any, message: str) -> dict[str, Any]:
    return {
        "id": line_id,
        "decision": DecisionKind.IMPLICITLY_DENIED.value,
        "conditions": [],
        "reasons": [],
        "blockedBy": [],
        "orgGaps": [],
        "refusedBy": None,
        "warnings": [],
        "error": message,
    }


_ref_json: dict[int, tuple[StatementRef, dict[str, Any]]] = {}


def ref_to_json(ref: StatementRef) -> dict[str, Any]:
    """A fresh dict each time (callers may change it); made once per reference, which the engine shares by
    place (compiled.statement_ref), then copied: a copy of a small flat dict costs less than building it. The
    entry holds the reference, so its id names no other object while the entry lives."""
    hit = _ref_json.get(id(ref))
    if hit is not None and hit[0] is ref:
        return dict(hit[1])
    out = _ref_to_json(ref)
    if ref.level is not None:
        return out  # a nested dict, which a shallow copy would share; and such references are made per request
    if len(_ref_json) >= 4096:
        _ref_json.clear()
    _ref_json[id(ref)] = (ref, out)
    return dict(out)


def _ref_to_json(ref: StatementRef) -> dict[str, Any]:
    out: dict[str, Any] = {
        # str() of a StrEnum is its value, without the enum's slower ``value`` property.
        "policyType": str(ref.policy_type),
        "policyId": ref.policy_id,
        "statementIndex": ref.statement_index,
        "sid": ref.sid,
        "effect": ref.effect,
    }
    if ref.level is not None:
        out["level"] = level_to_json(ref.level)
    return out


def level_to_json(level: OrgLevelRef) -> dict[str, str]:
    return {"kind": level.kind, "id": level.target_id, "name": level.name}


def gap_to_json(gap: OrgLevelGap) -> dict[str, Any]:
    return {
        "policyType": gap.policy_type.value,
        "index": gap.index,
        "level": level_to_json(gap.level) if gap.level is not None else None,
        "policyIds": list(gap.policy_ids),
    }


def residual_to_json(c: ResidualCondition) -> dict[str, Any]:
    return {"operator": c.operator, "key": c.key, "values": list(c.values), "negated": c.negated}


def service_rule_to_json(rule: ServiceRuleRef | None) -> dict[str, str] | None:
    if rule is None:
        return None
    return {"rule": rule.rule_id, "reason": rule.reason, "doc": rule.doc}


def error_to_text(e: EvaluationError) -> str:
    where = e.policy_id if e.statement_index is None else f"{e.policy_id} Statement[{e.statement_index}]"
    msg = e.message
    prefix = f"Statement[{e.statement_index}]."
    if msg.startswith(prefix):
        msg = msg[len(prefix) :]
    return f"{where}: {msg}"


def decision_to_json(line_id: Any, d: Decision) -> dict[str, Any]:
    return {
        "id": line_id,
        "decision": str(d.decision),
        "conditions": [[residual_to_json(c) for c in term] for term in d.conditions],
        "reasons": [ref_to_json(r) for r in d.reasons],
        "blockedBy": [str(t) for t in d.blocked_by],
        "orgGaps": [gap_to_json(g) for g in d.org_gaps],
        "refusedBy": service_rule_to_json(d.refused_by),
        "warnings": [
            f"context key {k} is not supported by this action (Service Authorization Reference); treated as absent"
            for k in d.unsupported_keys
        ],
        "error": "; ".join(error_to_text(e) for e in d.errors) if d.errors else None,
    }


