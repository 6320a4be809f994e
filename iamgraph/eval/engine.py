"""``authorize``: AWS's policy evaluation logic over an explicit set of policies.

Sources (read together):
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
- https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html
- https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html

Every statement evaluates to a formula (TRUE, FALSE, or in discovery mode a residual over
conditions nobody supplied). The policy types' formulas are combined by ``_combine``, the one place
where AWS's decision order lives.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from iamgraph.errors import InputError, PolicyParseError
from iamgraph.eval import dnf
from iamgraph.eval.compiled import CompiledStatement, compiled, transient
from iamgraph.eval.conditions import FALSE, UNKNOWN, CompiledClause
from iamgraph.eval.context_keys import unsupported_keys
from iamgraph.eval.dnf import DNF
from iamgraph.eval.patterns import Unresolved
from iamgraph.eval.principals import (
    PrincipalKind,
    RequestPrincipal,
    Strength,
    classify,
    not_principal_applies,
    principal_strength,
)
from iamgraph.eval.service_rules import refusal
from iamgraph.eval.types import (
    ContextValue,
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
    StatementRef,
)
from iamgraph.model.arn import account_of, is_account_id
from iamgraph.model.memo import Asking, SecondSightCache, trimmed
from iamgraph.model.policy import Policy, parse_policy, statement_texts
from iamgraph.model.slots import maker

# ----------------------------------------------------------------------------- parsing, cached

_PARSE_OPTIONS: dict[PolicyType, tuple[bool, bool | None]] = {
    # (require_resource, principal): identity-side documents name no principal and need Resource;
    # resource policies need a principal; trust policies (a kind of resource policy) omit Resource;
    # SCPs name no principal; RCPs name Principal "*".
    PolicyType.IDENTITY: (True, False),
    PolicyType.PERMISSION_BOUNDARY: (True, False),
    PolicyType.SESSION: (True, False),
    PolicyType.RESOURCE: (False, True),
    PolicyType.SCP: (False, False),
    PolicyType.RCP: (False, None),
    PolicyType.VPC_ENDPOINT: (False, True),
}

DocumentKey = bytes | str | tuple[Any, Any, tuple[bytes, ...]]
"""A policy document's cache key: its text, its sorted JSON, or (Version, Id, statements' JSON texts)."""
_parsed: dict[tuple[DocumentKey, PolicyType, str], NamedPolicy] = {}
_parsed_lock = threading.Lock()


def _content_key(doc: Any) -> bytes | str:
    if isinstance(doc, str):
        return doc
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return repr(doc)


def named_policy(doc: Mapping[str, Any] | str, policy_id: str, policy_type: PolicyType) -> NamedPolicy:
    """Parse and validate a policy document for use as ``policy_type``; cached by content.

    Raises :class:`PolicyParseError` naming ``policy_id`` and the statement at fault.
    """
    ptype = policy_type if type(policy_type) is PolicyType else PolicyType(policy_type)
    asking = _document_asking[ptype]
    if not asking.worth_asking():
        # Documents of this type have kept missing (a batch whose lines each carry their own): no key, which would
        # cost a serialization of every statement and a hash of them all for nothing. Parsed as a first sight is.
        policy = _parse(doc, *_PARSE_OPTIONS[ptype], None)
        transient(policy)
        return _new_named(policy_id=policy_id, policy=policy)
    # The key of a document given as an object is its Version, Id and statements' JSON texts, which the parse
    # of a new document reuses as its statements' keys (the document is written out once, not twice).
    texts = statement_texts(doc)
    content: DocumentKey
    if texts is not None and type(doc) is dict and type(doc.get("Version", "")) is str \
            and type(doc.get("Id", "")) is str:
        content = (doc.get("Version"), doc.get("Id"), texts)
    else:
        texts = None
        content = _content_key(doc)
        if type(content) is bytes and b"null" in content:
            # orjson writes NaN and infinities as null, so this key may stand for a document that differs
            # (a NaN Sid, which the parse refuses, against a null Sid, which it accepts): parsed each time.
            policy = _parse(doc, *_PARSE_OPTIONS[ptype], None)
            transient(policy)
            return _new_named(policy_id=policy_id, policy=policy)
    key = (content, ptype, policy_id)
    hit = _parsed.get(key)
    if hit is not None:
        asking.saw(True)
        return hit
    require_resource, principal = _PARSE_OPTIONS[ptype]
    # One Policy object per distinct content, whatever the id, so its compiled form is shared; but only
    # from its second sight: a document seen once (a batch line's own) is parsed, compiled, used and
    # dropped (memo.py and compiled.transient say why).
    policy, kept = _by_content.get_kept((content, ptype), _parse, doc, require_resource, principal, texts)
    asking.saw(kept)
    out = _new_named(policy_id=policy_id, policy=policy)
    if not kept:
        transient(policy)
        return out
    with _parsed_lock:
        if len(_parsed) > 50_000:
            _parsed.clear()
            _by_content.clear()
        _parsed[trimmed(key)] = out
    return out


_by_content: SecondSightCache[tuple[DocumentKey, PolicyType], Policy] = SecondSightCache(50_000)
_document_asking = {ptype: Asking() for ptype in PolicyType}
"""Per policy type, whether its documents are worth a key (``memo.Asking``): a batch of varied documents gives each
line its own identity and resource policies, beside SCPs and a boundary that repeat."""


def _parse(doc: Any, require_resource: bool, principal: bool | None, texts: tuple[bytes, ...] | None) -> Policy:
    if not isinstance(doc, (str, dict)) and not isinstance(doc, Mapping):
        raise PolicyParseError(f"a policy must be a JSON object, not {type(doc).__name__}")
    return parse_policy(doc, source="<policy>", require_resource=require_resource, principal=principal,
                        statement_texts=texts)


# ----------------------------------------------------------------------------- the request side

_RCP_FALLBACK = frozenset({"s3", "sts", "sqs", "secretsmanager", "kms"})


def _rcp_services() -> frozenset[str]:
    try:
        from iamgraph.catalog import get_catalog

        return get_catalog().rcp_supported_services()
    except Exception:  # pragma: no cover - the catalog is a pinned dependency
        # The five services RCPs launched with; used only when the catalog data cannot be read.
        return _RCP_FALLBACK


_rcp_cache: list[frozenset[str]] = []


def rcp_supported(service: str) -> bool:
    if not _rcp_cache:
        _rcp_cache.append(_rcp_services())
    return service in _rcp_cache[0]


def _check_context(context: Mapping[str, ContextValue]) -> dict[str, Any]:
    if type(context) is not dict and not isinstance(context, Mapping):
        raise InputError("context must be an object of condition keys", location="request.context")
    out: dict[str, Any] = {}
    for key, value in context.items():
        if (type(key) is not str and not isinstance(key, str)) or not key:
            raise InputError("context keys must be non-empty strings", location="request.context")
        if type(value) in _SCALARS:
            # The common case first (the checks below, without their isinstance calls).
            out[key.lower()] = value
            continue
        if isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, (str, bool, int, float)):
                    raise InputError(
                        f"values of a multi-valued key must be strings, not {type(item).__name__}",
                        location=f"request.context.{key}",
                    )
            value = tuple(value)
        elif value is not None and not isinstance(value, (str, bool, int, float)):
            raise InputError(
                f"a context value must be a string, number, boolean, list or null, not {type(value).__name__}",
                location=f"request.context.{key}",
            )
        out[key.lower()] = value
    return out


_SCALARS = frozenset({str, bool, int, float, type(None)})


def derived_context(p: RequestPrincipal, resource_account: str | None) -> dict[str, Any]:
    """Keys AWS sets from the principal and resource ARNs alone
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
    A new dict each time (the caller adds the request's keys to it)."""
    # The fields _derived_context reads; a role session's own ARN and name are not among them, so the sessions
    # of one role share an entry.
    key = (p.kind, "" if p.kind is PrincipalKind.ASSUMED_ROLE else p.raw, p.arn if p.kind is not
           PrincipalKind.ASSUMED_ROLE else "", p.role_arn, p.account, p.user_name, p.is_iam, resource_account)
    made = _derived_contexts.get(key)
    if made is None:
        made = _derived_context(p, resource_account)
        if len(_derived_contexts) >= 4096:
            _derived_contexts.clear()
        _derived_contexts[key] = made
    return dict(made)


_derived_contexts: dict[tuple[Any, ...], dict[str, Any]] = {}


def _derived_context(p: RequestPrincipal, resource_account: str | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if p.is_iam:
        ctx["aws:principalarn"] = p.principal_arn
        ctx["aws:principalaccount"] = p.account
        ctx["aws:principalisawsservice"] = False
        ctx["aws:principaltype"] = _PRINCIPAL_TYPE[p.kind]
        # aws:username exists for IAM users only ("not present" for roles, sessions, federated users
        # and the root user: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable).
        ctx["aws:username"] = p.user_name if p.kind == PrincipalKind.USER else None
        if p.kind == PrincipalKind.ROOT:
            ctx["aws:userid"] = p.account
        elif p.kind == PrincipalKind.FEDERATED_USER:
            ctx["aws:userid"] = f"{p.account}:{p.user_name}"
    elif p.kind == PrincipalKind.SERVICE and p.arn is not None and not p.arn.startswith("arn:"):
        if p.raw.endswith((".amazonaws.com", ".amazonaws.com.cn")) and not p.raw.startswith("cognito-identity"):
            ctx["aws:principalisawsservice"] = True
            ctx["aws:principalservicename"] = p.raw
    elif p.kind == PrincipalKind.ANONYMOUS:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable
        ctx["aws:principalisawsservice"] = False
        ctx["aws:principaltype"] = "Anonymous"
        ctx["aws:userid"] = "anonymous"
    if not p.is_iam:
        # Callers without an IAM identity carry none of these keys: known absent, so discovery mode
        # does not leave them as residual conditions.
        for key in _IAM_ONLY_KEYS:
            ctx.setdefault(key, None)
    if resource_account:
        ctx["aws:resourceaccount"] = resource_account
    return ctx


_PRINCIPAL_TYPE = {
    PrincipalKind.USER: "User",
    PrincipalKind.ROLE: "AssumedRole",
    PrincipalKind.ASSUMED_ROLE: "AssumedRole",
    PrincipalKind.FEDERATED_USER: "FederatedUser",
    PrincipalKind.ROOT: "Account",
}
"""``aws:PrincipalType`` of each kind of IAM caller."""

_IAM_ONLY_KEYS = (
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:username",
)

# ----------------------------------------------------------------------------- evaluation


@dataclass(slots=True)
class _Match:
    ref: StatementRef
    formula: DNF
    strength: Strength


class _PolicyOutcome:
    __slots__ = ("allows", "denies")

    def __init__(self) -> None:
        self.allows: list[_Match] = []
        self.denies: list[_Match] = []


class _Evaluation:
    """The state of one ``authorize`` call: context, atoms of residual conditions, errors."""

    def __init__(self, request: Request, policies: PolicySet, mode: Mode) -> None:
        self.mode = mode if type(mode) is Mode else Mode(mode)
        self.discovery = self.mode is Mode.DISCOVERY
        if not isinstance(request.action, str) or request.action.count(":") != 1 or request.action.startswith(":"):
            raise InputError(
                f"{request.action!r} is not an action: expected 'service:Action'", location="request.action"
            )
        if not isinstance(request.resource, str) or not request.resource:
            raise InputError("the resource must be an ARN or '*'", location="request.resource")
        self.principal = classify(request.principal)
        self.action_l = request.action.lower()
        self.service = self.action_l.partition(":")[0]
        self.resource = request.resource
        ra = request.resource_account
        if ra is not None and not is_account_id(str(ra)):
            raise InputError(f"{ra!r} is not a 12-digit account id", location="request.resourceAccount")
        self.resource_account = ra or account_of(request.resource) or self.principal.account
        ctx = derived_context(self.principal, self.resource_account)
        supplied = _check_context(request.context)
        # A key the action does not support never reaches AWS's request: known absent (context_keys.py).
        self.unsupported = unsupported_keys(self.action_l, [k for k, v in supplied.items() if v is not None])
        for key in self.unsupported:
            supplied[key] = None
        ctx.update(supplied)
        self.ctx = ctx
        self.has_boundary = policies.permission_boundary is not None
        self.atoms: dict[tuple[Any, ...], int] = {}
        self.atom_list: list[ResidualCondition] = []
        self.errors: list[EvaluationError] = list(policies.unresolved)
        self._error_keys: set[tuple[str, int, str]] = set()

    # -- atoms and errors

    def _atom(self, clause: CompiledClause, ref: StatementRef, values: tuple[Any, ...]) -> int:
        key = (clause.operator, clause.key_l, values)
        aid = self.atoms.get(key)
        if aid is None:
            aid = len(self.atom_list)
            self.atoms[key] = aid
            self.atom_list.append(
                ResidualCondition(operator=clause.operator, key=clause.key, values=values, source=ref)
            )
        return aid

    def _atom_raw(self, operator: str, key: str, values: tuple[Any, ...], ref: StatementRef) -> int:
        akey = (operator, key.lower(), values)
        aid = self.atoms.get(akey)
        if aid is None:
            aid = len(self.atom_list)
            self.atoms[akey] = aid
            self.atom_list.append(ResidualCondition(operator=operator, key=key, values=values, source=ref))
        return aid

    def _error(self, ptype: PolicyType, pid: str, index: int | None, message: str) -> None:
        k = (pid, -1 if index is None else index, message)
        if k in self._error_keys:
            return
        self._error_keys.add(k)
        self.errors.append(
            EvaluationError(policy_type=ptype, policy_id=pid, statement_index=index, message=message)
        )

    # -- one statement

    def statement(self, st: CompiledStatement, ref: StatementRef, check_principal: bool) -> _Match | None:
        if st.errors:
            for c in st.errors:
                self._error(ref.policy_type, ref.policy_id, st.index,
                            f"Statement[{st.index}].Condition.{c.operator}: {c.error}")
        res_formula = dnf.TRUE
        if st.star:
            pass  # names every resource (CompiledStatement.star): what the checks below would find
        elif st.resources is not None and self.discovery and any(
            pat.var_keys and not pat.var_keys <= self.ctx.keys() for pat in st.resources
        ):
            res_formula = self._resource_residual(st, ref)
            if not res_formula:
                return None
        elif st.resources is not None:
            hit = False
            for pat in st.resources:
                try:
                    if pat.matches(self.resource, self.ctx):
                        hit = True
                        break
                except Unresolved:
                    # "the resource that includes a policy variable with no value will not match any
                    # resource", in Resource and NotResource alike
                    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value).
                    continue
            if hit == st.not_resource:
                return None
        strength = Strength.DIRECT
        if check_principal:
            if st.principal is not None:
                strength = principal_strength(st.principal, self.principal)
                if strength == Strength.NONE:
                    return None
            elif st.not_principal is not None:
                # A Deny with NotPrincipal always applies to a principal with a permissions boundary
                # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
                boundary_quirk = not st.is_allow and self.has_boundary and self.principal.is_iam
                if not boundary_quirk and not not_principal_applies(st.not_principal, self.principal):
                    return None
        if not self.discovery:
            # Strict mode: the context is the whole context, so every clause is TRUE or FALSE and the
            # statement's formula TRUE when they all hold (the loop below, without its residual atoms).
            ctx = self.ctx
            for c in st.clauses:
                if c.error is not None:
                    if st.is_allow:
                        return None  # as below: an unevaluable Allow grants nothing, a Deny applies
                    continue
                if c.evaluate(ctx, True) == FALSE:
                    return None
            return _Match(ref, dnf.TRUE, strength)  # positional: made for every statement that applies
        lits: list[dnf.Lit] = []
        for c in st.clauses:
            if c.error is not None:
                # Unevaluable clause: an Allow with it grants nothing (AWS would reject the document);
                # a Deny with it is assumed to apply (strict, above) or left as a residual (discovery), so a
                # broken Deny never silently allows.
                if st.is_allow:
                    return None
                lits.append((self._atom(c, ref, c.values), False))
                continue
            # Discovery mode does not guess: a key (or a variable's key) nobody supplied is unknown.
            supplied = c.key_l in self.ctx and (not c.var_keys or all(k in self.ctx for k in c.var_keys))
            r = c.evaluate(self.ctx, supplied)
            if r == FALSE:
                return None
            if r == UNKNOWN:
                lits.append((self._atom(c, ref, c.resolved_values(self.ctx)), False))
        formula = dnf.of_conj(frozenset(lits)) if lits else dnf.TRUE
        if res_formula is not dnf.TRUE:
            formula = dnf.and_(res_formula, formula)
        return _Match(ref, formula, strength)

    def _resource_residual(self, st: CompiledStatement, ref: StatementRef) -> DNF:
        """Discovery mode, a Resource/NotResource entry with a variable nobody supplied: the entry
        matches when the variable's key takes one of the values that make it match the resource, so
        that becomes the residual condition (``StringEquals key [values]``). Where the values cannot
        be enumerated, the residual is "the key has a value" (``StringLike key *``), which over-
        approximates: discovery must not miss a path."""
        assert st.resources is not None
        entries: list[DNF] = []
        for pat in st.resources:
            if pat.var_keys and not pat.var_keys <= self.ctx.keys():
                found = pat.candidates(self.resource, self.ctx)
                if found is None:
                    key = sorted(pat.var_keys - self.ctx.keys())[0]
                    aid = self._atom_raw("StringLike", key, ("*",), ref)
                elif not found[1]:
                    entries.append(dnf.FALSE)
                    continue
                else:
                    aid = self._atom_raw("StringEquals", found[0], tuple(sorted(found[1])), ref)
                entries.append(dnf.of_conj(frozenset({(aid, False)})))
                continue
            try:
                hit = pat.matches(self.resource, self.ctx)
            except Unresolved:
                hit = False
            entries.append(dnf.TRUE if hit else dnf.FALSE)
        if st.not_resource:
            return dnf.all_of([dnf.not_(e) for e in entries])
        return dnf.any_of(entries)

    def policy(self, np: NamedPolicy, ptype: PolicyType, check_principal: bool) -> _PolicyOutcome:
        out = _PolicyOutcome()
        for st, ref in compiled(np.policy).plan(self.action_l, ptype, np.policy_id):
            if st.plain:
                # Nothing of the request to check (CompiledStatement.plain): what ``statement`` returns for it.
                (out.allows if st.is_allow else out.denies).append(_Match(ref, dnf.TRUE, Strength.DIRECT))
                continue
            m = self.statement(st, ref, check_principal)
            if m is None:
                continue
            (out.allows if st.is_allow else out.denies).append(m)
        return out


@dataclass(slots=True, kw_only=True)
class _Inputs:
    """The formulas ``_combine`` decides on."""

    principal: RequestPrincipal
    same_account: bool
    resource_policy_required: bool
    trust_policy: bool
    deny: DNF
    scp: DNF
    rcp: DNF
    identity: DNF
    boundary: DNF
    session: DNF
    res_direct: DNF
    res_role: DNF
    res_account: DNF
    vpce: DNF = dnf.TRUE


def _combine(k: _Inputs) -> DNF:
    """AWS's decision order. Returns the formula under which the request is allowed."""
    and_, not_, or_ = dnf.and_, dnf.not_, dnf.or_

    # 1. An explicit Deny in any applicable policy wins.
    #    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
    allowed = not_(k.deny)
    # 2-3. RCPs (resource's account) and SCPs (principal's account): every level, root to account,
    #    needs an Allow; an empty chain means "not in an organization".
    #    https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html
    allowed = and_(allowed, and_(k.rcp, k.scp))
    # A VPC endpoint policy, when the request goes through one, must allow it as well.
    allowed = and_(allowed, k.vpce)
    any_resource = or_(k.res_direct, or_(k.res_role, k.res_account))
    p = k.principal
    identity_side = and_(k.identity, and_(k.boundary, k.session))
    if not p.is_iam:
        # 4a. Anonymous callers, AWS services and federation providers have no identity policies:
        #     only the resource-based policy (or trust policy) can grant.
        grant = any_resource
    elif not k.same_account:
        # 4b. Cross-account: the caller's account must allow (identity, boundary, session) AND the
        #     resource's policy must allow the caller or its account.
        #     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
        grant = and_(identity_side, any_resource)
    elif k.trust_policy:
        # 4c. Same account, role trust policy: it must allow. Naming the caller spares it the identity
        #     policy but not its permissions boundary: "If a permissions boundary is set for the user,
        #     then it must allow the sts:AssumeRole action"
        #     (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_update-role-trust-policy.html);
        #     naming the account delegates to identity policies.
        named = and_(or_(k.res_direct, k.res_role), and_(k.boundary, k.session))
        grant = or_(named, and_(k.res_account, identity_side))
    elif k.resource_policy_required:
        # 4d. Same account, KMS key policy: it must allow. Naming the caller (or its session) is
        #     enough; naming the role is limited by boundary and session policy; naming the account
        #     (arn:aws:iam::ACCOUNT:root) delegates to identity policies.
        #     https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
        grant = or_(
            k.res_direct,
            or_(and_(k.res_role, and_(k.boundary, k.session)), and_(k.res_account, identity_side)),
        )
    else:
        # 4e. Same account: an Allow in either the identity-based or the resource-based policy is
        #     enough. A resource policy naming the user or session ARN is not limited by implicit
        #     denies of identity, boundary or session policies; naming the role ARN is limited by
        #     boundary and session policies; naming the account delegates to identity policies.
        grant = or_(k.res_direct, or_(and_(k.res_role, and_(k.boundary, k.session)), identity_side))
    return and_(allowed, grant)


def _is_public_statement(st: CompiledStatement) -> bool:
    """An Allow open to everyone, per S3's definition of a public bucket policy: Principal "*" with no
    condition pinning a fixed principal, account, organization, VPC, source or IP range
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html#access-control-block-public-access-policy-status)."""
    if not st.is_allow:
        return False
    spec = st.principal
    open_principal = st.not_principal is not None or (spec is not None and (spec.wildcard or "*" in spec.aws))
    if not open_principal:
        return False
    for c in st.clauses:
        pinned = c.key_l in _NON_PUBLIC_KEYS and not c.negated and not c.set_op
        if pinned and c.family in ("str", "arn", "stri") and all("*" not in str(v) and "?" not in str(v) for v in c.values):
            return False
        if c.key_l == "aws:sourceip" and c.family == "ip" and not c.negated:
            return False
    return True


_NON_PUBLIC_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceorgid",
        "aws:userid",
        "s3:dataaccesspointaccount",
        "s3:dataaccesspointarn",
    }
)


def _is_kms_key(resource: str) -> bool:
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[2] == "kms" and parts[5].startswith("key/")


def _is_trust(resource: str, action_l: str) -> bool:
    return action_l.startswith("sts:") and ":iam::" in resource and ":role/" in resource


def _resource_policy_required(resource: str, action_l: str) -> bool:
    parts = resource.split(":", 5)
    if len(parts) != 6:
        return False
    service, res = parts[2], parts[5]
    # KMS: "no principal, including the account root user, can use a key unless the key policy
    # allows it" (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html).
    if service == "kms" and res.startswith("key/"):
        return True
    # Role trust policies: assuming a role needs the trust policy's Allow
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_compare-resource-policies.html).
    return service == "iam" and res.startswith("role/") and action_l.startswith("sts:")


def authorize(request: Request, policies: PolicySet, *, mode: Mode = Mode.STRICT) -> Decision:
    """Decide one request against the policies that apply to it.

    Raises :class:`InputError` for a malformed request; policies that cannot be evaluated are
    reported in ``Decision.errors``.
    """
    ev = _Evaluation(request, policies, mode)
    p = ev.principal
    is_slr = p.is_service_linked_role
    deny_parts: list[_Match] = []
    identity_allows: list[_Match] = []
    resource_allows: list[_Match] = []

    def run(np: NamedPolicy | None, ptype: PolicyType, check_principal: bool = False) -> _PolicyOutcome | None:
        if np is None:
            return None
        out = ev.policy(np, ptype, check_principal)
        deny_parts.extend(out.denies)
        return out

    # Identity side: the root user has no identity policies and full access in its own account.
    if p.kind == PrincipalKind.ROOT:
        identity = dnf.TRUE
    elif p.is_iam:
        found: list[DNF] = []
        for np in policies.identity:
            o = run(np, PolicyType.IDENTITY)
            if o is not None:
                identity_allows.extend(o.allows)
                found.extend(m.formula for m in o.allows)
        identity = dnf.any_of(found)
    else:
        identity = dnf.FALSE

    def allow_of(np: NamedPolicy | None, ptype: PolicyType) -> DNF:
        o = run(np, ptype)
        if o is None:
            return dnf.TRUE  # no such policy: no limit
        return dnf.any_of([m.formula for m in o.allows])

    boundary = allow_of(policies.permission_boundary, PolicyType.PERMISSION_BOUNDARY) if p.is_iam else dnf.TRUE
    session = allow_of(policies.session, PolicyType.SESSION) if p.is_iam else dnf.TRUE

    # SCPs limit IAM principals of member accounts, not service-linked roles, not services.
    scp_applies = p.is_iam and not is_slr and bool(policies.scps)
    gaps: list[OrgLevelGap] = []
    scp = (
        dnf.all_of([_level(run, level, PolicyType.SCP, i, _nth(policies.scp_levels, i), gaps)
                    for i, level in enumerate(policies.scps)])
        if scp_applies
        else dnf.TRUE
    )
    # RCPs apply to resources of the services that support them, not to service-linked roles'
    # actions; the caller drops them for management-account resources and AWS managed KMS keys.
    rcp_applies = (
        bool(policies.rcps)
        and rcp_supported(ev.service)
        and not is_slr
        and not (ev.action_l.startswith("sts:") and ":role/aws-service-role/" in ev.resource)
        # "The kms:RetireGrant permission isn't valid in an RCP"
        # (https://docs.aws.amazon.com/kms/latest/developerguide/resource-control-policies.html).
        and ev.action_l != "kms:retiregrant"
    )
    rcp = (
        dnf.all_of([_level(run, level, PolicyType.RCP, i, _nth(policies.rcp_levels, i), gaps, check_principal=True)
                    for i, level in enumerate(policies.rcps)])
        if rcp_applies
        else dnf.TRUE
    )

    res_direct, res_role, res_account = dnf.FALSE, dnf.FALSE, dnf.FALSE
    same_account = p.account is not None and p.account == ev.resource_account
    if policies.resource is not None:
        o = run(policies.resource, PolicyType.RESOURCE, check_principal=True)
        assert o is not None
        restricted = (
            policies.restrict_public_buckets
            and ev.service == "s3"
            and not same_account
            and p.kind != PrincipalKind.SERVICE
            and any(_is_public_statement(st) for st in compiled(policies.resource.policy).statements)
        )
        if restricted:
            # RestrictPublicBuckets: a public bucket policy serves only AWS services and principals
            # of the bucket owner's account.
            o.allows.clear()
        resource_allows.extend(o.allows)
    if policies.kms_grants and ev.service == "kms" and _is_kms_key(ev.resource):
        # A grant allows its grantee alongside the key policy (kms_grants.py).
        for np in policies.kms_grants:
            o = run(np, PolicyType.RESOURCE, check_principal=True)
            assert o is not None
            resource_allows.extend(o.allows)
    if resource_allows:
        buckets: dict[Strength, list[DNF]] = {Strength.DIRECT: [], Strength.ROLE: [], Strength.ACCOUNT: []}
        for m in resource_allows:
            buckets[m.strength].append(m.formula)
        res_direct = dnf.any_of(buckets[Strength.DIRECT])
        res_role = dnf.any_of(buckets[Strength.ROLE])
        res_account = dnf.any_of(buckets[Strength.ACCOUNT])
    # A request through a VPC endpoint needs the endpoint policy's Allow as well
    # (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html); its Deny is
    # among the explicit denies.
    vpce = dnf.TRUE
    if policies.vpc_endpoint_policy is not None:
        o = run(policies.vpc_endpoint_policy, PolicyType.VPC_ENDPOINT, check_principal=True)
        assert o is not None
        vpce = dnf.any_of([m.formula for m in o.allows])

    inputs = _Inputs(
        principal=p,
        same_account=same_account,
        resource_policy_required=_resource_policy_required(ev.resource, ev.action_l),
        trust_policy=_is_trust(ev.resource, ev.action_l),
        deny=dnf.any_of([m.formula for m in deny_parts]),
        scp=scp,
        rcp=rcp,
        identity=identity,
        boundary=boundary,
        session=session,
        res_direct=res_direct,
        res_role=res_role,
        res_account=res_account,
        vpce=vpce,
    )
    try:
        final = _combine(inputs)
    except dnf.TooComplexError:
        d = _refuse(ev, policies, _too_complex(ev))
    else:
        d = _refuse(ev, policies, _decision(ev, inputs, final, deny_parts, identity_allows, resource_allows,
                                            scp_applies, rcp_applies, tuple(gaps)))
    return replace(d, unsupported_keys=ev.unsupported) if ev.unsupported else d


def _refuse(ev: _Evaluation, policies: PolicySet, d: Decision) -> Decision:
    """6. Service rules: what the service refuses whatever the policies say (service_rules.py). An
    explicit deny stays one (authorization comes first); anything the policies would allow becomes
    an implicit deny naming the rule."""
    rule = refusal(ev.principal, ev.action_l, ev.resource, policies.aws_managed_resource)
    if rule is None:
        return d
    if d.decision is DecisionKind.ALLOWED:
        return Decision(decision=DecisionKind.IMPLICITLY_DENIED, errors=d.errors, refused_by=rule.ref)
    return replace(d, refused_by=rule.ref)


def _level(
    run: Any,
    level: tuple[NamedPolicy, ...],
    ptype: PolicyType,
    index: int,
    where: OrgLevelRef | None,
    gaps: list[OrgLevelGap],
    check_principal: bool = False,
) -> DNF:
    """One level of the SCP or RCP chain: the disjunction of its Allows. Its statements are tagged
    with the level (one policy can be attached at several), and a level with no Allow is recorded:
    "every level ... must explicitly allow it"
    (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_inheritance_auth.html)."""
    parts: list[DNF] = []
    for np in level:
        o = run(np, ptype, check_principal)
        if where is not None:
            for m in (*o.allows, *o.denies):
                m.ref = replace(m.ref, level=where)
        parts.extend(m.formula for m in o.allows)
    out = dnf.any_of(parts)
    if dnf.is_false(out):
        gaps.append(OrgLevelGap(policy_type=ptype, index=index, level=where,
                                policy_ids=tuple(np.policy_id for np in level)))
    return out


def _nth(levels: tuple[OrgLevelRef, ...], i: int) -> OrgLevelRef | None:
    return levels[i] if i < len(levels) else None


def _decision(
    ev: _Evaluation,
    k: _Inputs,
    final: DNF,
    denies: list[_Match],
    identity_allows: list[_Match],
    resource_allows: list[_Match],
    scp_applies: bool,
    rcp_applies: bool,
    gaps: tuple[OrgLevelGap, ...] = (),
) -> Decision:
    errors = tuple(ev.errors)
    if dnf.is_true(final):
        grants = [m.ref for m in identity_allows if m.formula] + [m.ref for m in resource_allows]  # not FALSE
        return _new_decision(decision=DecisionKind.ALLOWED, reasons=_unique(grants), errors=errors, blocked_by=(),
                             conditions=(), org_gaps=(), refused_by=None, unsupported_keys=())
    if dnf.is_false(final):
        hard_denies = [m for m in denies if dnf.is_true(m.formula)]
        if hard_denies:
            types = _unique_types(m.ref.policy_type for m in hard_denies)
            return Decision(
                decision=DecisionKind.EXPLICITLY_DENIED,
                reasons=_unique([m.ref for m in hard_denies]),
                blocked_by=types,
                errors=errors,
            )
        return Decision(
            decision=DecisionKind.IMPLICITLY_DENIED,
            blocked_by=_blocked_by(k, scp_applies, rcp_applies),
            errors=errors,
            org_gaps=gaps,
        )
    # Discovery mode: allowed under the residual conditions.
    conditions = tuple(
        sorted(
            (_residual_term(ev, term) for term in final),
            key=lambda t: [(c.key.lower(), c.operator, repr(c.values), c.negated) for c in t],
        )
    )
    used_atoms = {a for term in final for a, _ in term}
    reasons = [m.ref for m in identity_allows + resource_allows if not dnf.is_false(m.formula)]
    reasons += [m.ref for m in denies if any(a in used_atoms for t in m.formula for a, _ in t)]
    return Decision(decision=DecisionKind.ALLOWED, reasons=_unique(reasons), conditions=conditions, errors=errors)


# Made for every new document and every allowed request (model/slots.py says why not through __init__).
_new_named = maker(NamedPolicy)
_new_decision = maker(Decision)


def _residual_term(ev: _Evaluation, term: dnf.Conj) -> tuple[ResidualCondition, ...]:
    out = []
    for aid, neg in term:
        base = ev.atom_list[aid]
        out.append(
            ResidualCondition(operator=base.operator, key=base.key, values=base.values, negated=neg, source=base.source)
        )
    out.sort(key=lambda c: (c.key.lower(), c.operator, repr(c.values), c.negated))
    return tuple(out)


def _blocked_by(k: _Inputs, scp_applies: bool, rcp_applies: bool) -> tuple[PolicyType, ...]:
    t = dnf.is_true
    ident, bound, sess = t(k.identity), t(k.boundary), t(k.session)
    r_direct, r_role, r_acct = t(k.res_direct), t(k.res_role), t(k.res_account)
    any_r = r_direct or r_role or r_acct
    if not (ident and k.principal.is_iam) and not any_r:
        return ()  # nothing granted the request, so nothing "blocked" it
    out: list[PolicyType] = []
    if scp_applies and not t(k.scp):
        out.append(PolicyType.SCP)
    if rcp_applies and not t(k.rcp):
        out.append(PolicyType.RCP)
    if not t(k.vpce):
        out.append(PolicyType.VPC_ENDPOINT)
    if k.principal.is_iam:
        if k.same_account:
            if k.resource_policy_required and not any_r:
                out.append(PolicyType.RESOURCE)
            if k.resource_policy_required and r_acct and not ident and not r_direct:
                out.append(PolicyType.IDENTITY)
        else:
            if any_r and not ident:
                out.append(PolicyType.IDENTITY)
            if ident and not any_r:
                out.append(PolicyType.RESOURCE)
        if not k.same_account:
            limited = ident
        elif k.trust_policy:
            limited = True
        else:
            limited = (ident or r_role or r_acct) and not r_direct
        if limited:
            if not bound:
                out.append(PolicyType.PERMISSION_BOUNDARY)
            if not sess:
                out.append(PolicyType.SESSION)
    return tuple(out)


def _too_complex(ev: _Evaluation) -> Decision:
    msg = f"the residual conditions have more than {dnf.MAX_TERMS} alternatives; not listed"
    errors = (*ev.errors, EvaluationError(policy_type=PolicyType.IDENTITY, policy_id="<engine>",
                                          statement_index=None, message=msg))
    if not ev.discovery:  # pragma: no cover - strict formulas are always TRUE or FALSE
        return Decision(decision=DecisionKind.IMPLICITLY_DENIED, errors=errors)
    marker = ResidualCondition(operator="Unlisted", key="*", values=(msg,))
    return Decision(decision=DecisionKind.ALLOWED, conditions=((marker,),), errors=errors)


def _unique(refs: list[StatementRef]) -> tuple[StatementRef, ...]:
    # First occurrences in order (a dict keeps insertion order; one hash per ref).
    return tuple(dict.fromkeys(refs))


def _unique_types(types: Any) -> tuple[PolicyType, ...]:
    out: list[PolicyType] = []
    for t in types:
        if t not in out:
            out.append(t)
    return tuple(out)
