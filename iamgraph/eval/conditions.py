"""Condition operators: one small matcher per operator family, compiled once per clause.

Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and, for sets, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

Semantics implemented here:
- values listed for one key are OR'd; keys and operators of one statement are AND'd (by the caller);
- a key absent from the request makes a positive operator false and a negated one (``...Not...``)
  true; ``...IfExists`` makes an absent key true; ``Null`` tests presence;
- ``ForAllValues:`` is true when every request value matches some policy value, and also when the
  key is absent or empty; ``ForAnyValue:`` needs at least one matching value, so it is false for an
  absent or empty key; with a negated operator the negation applies to each request value;
- without a set qualifier, a multi-valued key matches a positive operator when any of its values
  matches, and a negated operator when none does;
- string comparison is case-sensitive except ``...IgnoreCase``; ``Like`` takes ``*`` and ``?``;
  ARN operators compare each of the six colon-separated segments, with wildcards, and
  ``ArnEquals`` behaves like ``ArnLike``; ``Bool`` compares "true"/"false" ignoring case;
  dates are ISO 8601 or epoch seconds; IP operators take IPv4 and IPv6 CIDR blocks.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from socket import inet_aton as _inet_aton
from typing import Any

from iamgraph.eval.patterns import Pattern, Unresolved, _Var, scalar_text, substitute, tokenize
from iamgraph.model.memo import SecondSightCache
from iamgraph.model.policy import ConditionClause

# family, negated
_BASE: dict[str, tuple[str, bool]] = {
    "stringequals": ("str", False),
    "stringnotequals": ("str", True),
    "stringequalsignorecase": ("stri", False),
    "stringnotequalsignorecase": ("stri", True),
    "stringlike": ("strlike", False),
    "stringnotlike": ("strlike", True),
    "numericequals": ("num=", False),
    "numericnotequals": ("num=", True),
    "numericlessthan": ("num<", False),
    "numericlessthanequals": ("num<=", False),
    "numericgreaterthan": ("num>", False),
    "numericgreaterthanequals": ("num>=", False),
    "dateequals": ("date=", False),
    "datenotequals": ("date=", True),
    "datelessthan": ("date<", False),
    "datelessthanequals": ("date<=", False),
    "dategreaterthan": ("date>", False),
    "dategreaterthanequals": ("date>=", False),
    "bool": ("bool", False),
    "binaryequals": ("bin", False),
    "ipaddress": ("ip", False),
    "notipaddress": ("ip", True),
    "arnequals": ("arn", False),
    "arnlike": ("arn", False),
    "arnnotequals": ("arn", True),
    "arnnotlike": ("arn", True),
    "null": ("null", False),
}

# Policy variables are honoured only with string and ARN operators:
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-conditionelement
_VARIABLE_FAMILIES = frozenset({"str", "stri", "strlike", "arn"})

TRUE = 1
FALSE = 0
UNKNOWN = -1


class ClauseError(Exception):
    """A clause that cannot be evaluated (unknown operator, value of the wrong type)."""


Matcher = Callable[[Any], bool]


class CompiledClause:
    """One ``operator: {key: values}`` entry, ready to evaluate against a request context."""

    __slots__ = (
        "_dynamic",
        "_match",
        "_patterns",
        "_texts",
        "error",
        "family",
        "if_exists",
        "key",
        "key_l",
        "negated",
        "operator",
        "set_op",
        "values",
        "var_keys",
    )

    def __init__(self, clause: ConditionClause, variables: bool) -> None:
        self.operator = clause.operator
        self.key = clause.key
        self.key_l = clause.key.lower()
        self.values = clause.values
        self.error: str | None = None
        self.set_op = ""
        self.if_exists = False
        self.negated = False
        self.family = ""
        self._match: Matcher | None = None
        self._dynamic = False
        self._patterns: tuple[Pattern, ...] = ()
        self._texts: tuple[tuple[Any, ...], ...] = ()
        self.var_keys: frozenset[str] = frozenset()
        try:
            self._compile(variables)
        except ClauseError as exc:
            self.error = str(exc)

    # -- compile ---------------------------------------------------------------------------------

    def _compile(self, variables: bool) -> None:
        name = self.operator
        low = name.lower()
        if low.startswith("forallvalues:"):
            self.set_op = "all"
            low = low[len("forallvalues:") :]
        elif low.startswith("foranyvalue:"):
            self.set_op = "any"
            low = low[len("foranyvalue:") :]
        if low.endswith("ifexists") and low != "ifexists":
            self.if_exists = True
            low = low[: -len("ifexists")]
        base = _BASE.get(low)
        if base is None:
            raise ClauseError(f"unknown condition operator {name!r}")
        self.family, self.negated = base
        if self.family == "null" and (self.if_exists or self.set_op):
            raise ClauseError(f"{name!r}: Null cannot be combined with IfExists or a set qualifier")
        if not self.values:
            raise ClauseError(f"{name} on {self.key!r} has no values")
        variables = variables and self.family in _VARIABLE_FAMILIES
        fam = self.family
        if fam in ("str", "stri"):
            texts = [tokenize(scalar_text(v), variables=variables) for v in self.values]
            self._texts = tuple(texts)
            self._dynamic = any(len(t) != 1 or not isinstance(t[0], str) for t in texts)
            if not self._dynamic:
                plain = [t[0] for t in texts if isinstance(t[0], str)]
                self._match = _str_matcher(plain, fam == "stri")
        elif fam in ("strlike", "arn"):
            self._patterns = tuple(
                Pattern(scalar_text(v), variables=variables, arn=fam == "arn") for v in self.values
            )
            self._dynamic = any(p.dynamic for p in self._patterns)
            if not self._dynamic:
                pats = self._patterns
                if fam == "arn":
                    self._match = lambda v: _is_arn(v) and any(p.matches(v, _NO_CTX) for p in pats)
                else:
                    self._match = lambda v: any(p.matches(v, _NO_CTX) for p in pats)
        if fam.startswith("num"):
            nums = [_num(v) for v in self.values]
            if any(n is None for n in nums):
                raise ClauseError(f"{name} on {self.key!r}: {self.values!r} are not all numbers")
            self._match = _cmp_matcher(fam[3:], [n for n in nums if n is not None], _num)
        elif fam.startswith("date"):
            dates = [_date(v) for v in self.values]
            if any(d is None for d in dates):
                raise ClauseError(
                    f"{name} on {self.key!r}: {self.values!r} are not all ISO 8601 dates or epoch seconds"
                )
            self._match = _cmp_matcher(fam[4:], [d for d in dates if d is not None], _date)
        if self._dynamic:
            toks = [t for ts in self._texts for t in ts] + [t for p in self._patterns for t in p.tokens]
            self.var_keys = frozenset(t.key for t in toks if isinstance(t, _Var) and t.literal is None)
        if fam == "bool" or fam == "null":
            flags = [_bool(v) for v in self.values]
            if any(f is None for f in flags):
                raise ClauseError(f"{name} on {self.key!r}: values must be true or false, not {self.values!r}")
            wanted = frozenset(f for f in flags if f is not None)
            self._match = lambda v: _bool(v) in wanted
        elif fam == "bin":
            blobs = [_b64(v) for v in self.values]
            self._match = lambda v: _b64(v) in blobs
        elif fam == "ip":
            nets = []
            for v in self.values:
                try:
                    nets.append(ipaddress.ip_network(scalar_text(v).strip(), strict=False))
                except ValueError:
                    raise ClauseError(f"{name} on {self.key!r}: {v!r} is not an IP address or CIDR") from None
            v4 = tuple((int(n.network_address), int(n.netmask)) for n in nets if n.version == 4)
            self._match = lambda v: _ip_in(v, nets, v4)

    # -- evaluate --------------------------------------------------------------------------------

    def matcher(self, ctx: Mapping[str, Any]) -> Matcher:
        """The per-value predicate "some policy value matches", variables substituted.

        A variable with no value makes its policy value null, which equals and resembles nothing:
        positive operators do not match it and negated ones do
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value).
        """
        if self._match is not None:
            return self._match
        if self.family in ("str", "stri"):
            resolved: list[str] = []
            for t in self._texts:
                try:
                    resolved.append(substitute(t, ctx))
                except Unresolved:
                    continue
            return _str_matcher(resolved, self.family == "stri")
        live: list[Pattern] = []
        for p in self._patterns:
            try:
                if p.dynamic:
                    p.matches("", ctx)
                live.append(p)
            except Unresolved:
                continue
        if self.family == "arn":
            return lambda v: _is_arn(v) and any(p.matches(v, ctx) for p in live)
        return lambda v: any(p.matches(v, ctx) for p in live)

    def resolved_values(self, ctx: Mapping[str, Any]) -> tuple[Any, ...]:
        """Policy values with variables substituted where possible (for residual conditions)."""
        if not self._dynamic:
            return self.values
        out: list[Any] = []
        if self._texts:
            for t, raw in zip(self._texts, self.values, strict=True):
                try:
                    out.append(substitute(t, ctx))
                except Unresolved:
                    out.append(raw)
        else:
            for p in self._patterns:
                try:
                    out.append(p.resolved_text(ctx))
                except Unresolved:
                    out.append(p.text)
        return tuple(out)

    def evaluate(self, ctx: Mapping[str, Any], supplied: bool) -> int:
        """TRUE, FALSE or UNKNOWN. ``supplied``: the key is in ``ctx`` (None there means "known absent").

        UNKNOWN is returned only when ``supplied`` is False (discovery mode, key not given).
        """
        if not supplied:
            return UNKNOWN
        value = ctx.get(self.key_l)
        if type(value) in _SCALAR and not self.set_op and self.family != "null":
            # The common case: one value, no set operator (the same outcome as the general path below,
            # whose tuple of one value it skips).
            return TRUE if (self._match or self.matcher(ctx))(value) != self.negated else FALSE
        present = value is not None and not (isinstance(value, (list, tuple)) and len(value) == 0)
        if self.family == "null":
            # Null: true means "the key is absent". An empty multi-valued key counts as absent.
            return TRUE if self._match is not None and self._match(not present) else FALSE
        values: tuple[Any, ...] | list[Any]
        if value is None:
            values = ()
        elif isinstance(value, (list, tuple)):
            values = value
        else:
            values = (value,)
        if self.set_op:
            if len(values) == 1 and values[0] == "":
                # "resolves to a null dataset, such as an empty string"
                # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
                values = ()
            if not values:
                if self.if_exists and value is None:
                    return TRUE
                # ForAllValues: vacuously true; ForAnyValue: nothing to match.
                return TRUE if self.set_op == "all" else FALSE
            match = self.matcher(ctx)
            neg = self.negated
            if self.set_op == "all":
                return TRUE if all(match(v) != neg for v in values) else FALSE
            return TRUE if any(match(v) != neg for v in values) else FALSE
        if not values:
            if self.if_exists:
                return TRUE
            # Absent key: the values "do not match"; a negated operator is therefore satisfied.
            return TRUE if self.negated else FALSE
        match = self.matcher(ctx)
        hit = any(match(v) for v in values)
        return TRUE if hit != self.negated else FALSE


_NO_CTX: Mapping[str, Any] = {}
_SCALAR = frozenset({str, bool, int, float})


def _str_matcher(plain: list[str], ignore_case: bool) -> Matcher:
    if ignore_case:
        folded = frozenset(p.casefold() for p in plain)
        return lambda v: scalar_text(v).casefold() in folded
    wanted = frozenset(plain)
    return lambda v: scalar_text(v) in wanted


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _cmp_matcher(op: str, refs: list[Any], parse: Callable[[Any], Any]) -> Matcher:
    # Decimals and floats compare to a bool; operator's functions spare a Python call per comparison.
    cmp = _CMP[op]
    if len(refs) == 1:
        ref = refs[0]

        def match_one(v: Any) -> bool:
            x = parse(v)
            return x is not None and cmp(x, ref)

        return match_one

    def match(v: Any) -> bool:
        x = parse(v)
        return x is not None and any(cmp(x, r) for r in refs)

    return match


def _num(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


_EPOCH = re.compile(r"^-?\d+(\.\d+)?$")


def _date(v: Any) -> float | None:
    """Seconds since the epoch for an ISO 8601 date/time or an epoch-seconds value."""
    if type(v) is str:
        return _date_text(v)
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if not isinstance(v, str):
        return None
    return _date_text(v)


@lru_cache(maxsize=4096)
def _date_text(v: str) -> float | None:
    text = v.strip()
    if _EPOCH.match(text):
        return float(text)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if dt.tzinfo is None:
        # AWS dates without an offset are UTC.
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        low = v.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    return None


def _b64(v: Any) -> bytes | str:
    text = scalar_text(v)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text


@lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text.strip())


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""Dotted-quad IPv4 exactly as ``ipaddress`` accepts it (ASCII digits, no leading zeros, each at most 255)."""


_ipv4 = _IPV4.fullmatch
_int_of = int.from_bytes


def _ip_in(v: Any, nets: list[Any], v4: tuple[tuple[int, int], ...]) -> bool:
    """Whether the address (or CIDR) ``v`` is in one of ``nets``; ``v4``: their IPv4 networks as (address,
    mask) integers, for a plain IPv4 address (most requests) without building an ``ipaddress`` object."""
    text = (v if type(v) is str else scalar_text(v)).strip()
    if _ipv4(text):
        # The pattern let through only a dotted quad of four decimal octets, which inet_aton reads as ipaddress
        # does (it would also take shorter forms, which the pattern refuses).
        x = _int_of(_inet_aton(text), "big")
        for net, mask in v4:  # noqa: SIM110 - a loop: any() over a generator costs a frame per request
            if x & mask == net:
                return True
        return False
    try:
        addr = _ip(scalar_text(v))
    except ValueError:
        try:
            # A request might carry a CIDR (some services give one); it matches when fully inside.
            inner = ipaddress.ip_network(scalar_text(v).strip(), strict=False)
        except ValueError:
            return False
        return any(inner.version == n.version and inner.subnet_of(n) for n in nets)
    return any(addr.version == n.version and addr in n for n in nets)


def _is_arn(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("arn:") and v.count(":") >= 5


_ClauseKey = tuple[str, str, tuple[Any, ...], tuple[type, ...], bool]
_clauses: SecondSightCache[_ClauseKey, CompiledClause] = SecondSightCache(50_000)


def compiled_clause(clause: ConditionClause, variables: bool) -> CompiledClause:
    """The compiled form of ``clause``, shared by the statements that carry it: a CompiledClause holds no
    state of a request (its matchers read the context they are given).

    The key holds the values' types: Python's equality has ``1 == True`` (and ``(1,) == (True,)``), but a JSON
    ``true`` and ``1`` are different policy values ("true" and "1" as text, a boolean and a number), so
    ``StringEquals {"k": 1}`` must not answer for ``StringEquals {"k": true}`` seen later."""
    values = clause.values
    return _clauses.get((clause.operator, clause.key, values, tuple(map(type, values)), variables),
                        CompiledClause, clause, variables)
