"""Residual conditions as a reader writes them: ``aws:RequestedRegion ∈ {us-east-1, eu-west-1}``.

A residual condition is a policy clause the answer depends on (``operator key values``). One that comes
from a Deny is *negated*: access needs the clause to be false, so "not aws:RequestedRegion StringNotEquals
[us-east-1]" is rendered as the positive statement it means, ``aws:RequestedRegion = us-east-1``.
Operator meanings: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
Set operators: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class _Clause(Protocol):
    @property
    def operator(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def values(self) -> tuple[Any, ...]: ...
    @property
    def negated(self) -> bool: ...


# Base operator -> (relation, relation of its negation). "∈" with one value is written "=".
_REL: dict[str, tuple[str, str]] = {
    "stringequals": ("∈", "∉"),
    "stringnotequals": ("∉", "∈"),
    "stringequalsignorecase": ("∈ (any case)", "∉ (any case)"),
    "stringnotequalsignorecase": ("∉ (any case)", "∈ (any case)"),
    "stringlike": ("matches", "does not match"),
    "stringnotlike": ("does not match", "matches"),
    "arnequals": ("matches", "does not match"),
    "arnlike": ("matches", "does not match"),
    "arnnotequals": ("does not match", "matches"),
    "arnnotlike": ("does not match", "matches"),
    "numericequals": ("∈", "∉"),
    "numericnotequals": ("∉", "∈"),
    "numericlessthan": ("<", "≥"),
    "numericlessthanequals": ("≤", ">"),
    "numericgreaterthan": (">", "≤"),
    "numericgreaterthanequals": ("≥", "<"),
    "dateequals": ("∈", "∉"),
    "datenotequals": ("∉", "∈"),
    "datelessthan": ("<", "≥"),
    "datelessthanequals": ("≤", ">"),
    "dategreaterthan": (">", "≤"),
    "dategreaterthanequals": ("≥", "<"),
    "bool": ("=", "≠"),
    "binaryequals": ("∈", "∉"),
    "ipaddress": ("in", "not in"),
    "notipaddress": ("not in", "in"),
}

_SINGLE = {"∈": "=", "∉": "≠", "∈ (any case)": "= (any case)", "∉ (any case)": "≠ (any case)"}


def _values(values: Sequence[Any]) -> str:
    texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    return texts[0] if len(texts) == 1 else "{" + ", ".join(texts) + "}"


def condition_text(c: _Clause) -> str:
    """One clause, positively: what must hold for the access."""
    op = c.operator
    quantifier = ""
    if ":" in op:
        quantifier, op = op.split(":", 1)
    if_exists = op.lower().endswith("ifexists")
    base = op[: -len("IfExists")] if if_exists else op
    low = base.lower()
    if low == "null":
        absent = str(c.values[0]).lower() == "true" if c.values else True
        if c.negated:
            absent = not absent
        return f"{c.key} is {'absent' if absent else 'present'}"
    rel_pair = _REL.get(low)
    if rel_pair is None:  # an operator we do not know how to word: say it as written
        return ("not " if c.negated else "") + f"{c.key} {c.operator} {_values(c.values)}"
    rel = rel_pair[1] if c.negated else rel_pair[0]
    if len(c.values) == 1:
        rel = _SINGLE.get(rel, rel)
    key = c.key
    if quantifier:
        q = quantifier.lower()
        # not (for any value: P) == for all values: not P, and the other way round.
        if c.negated:
            q = "forallvalues" if q == "foranyvalue" else "foranyvalue"
        key = f"{'any' if q == 'foranyvalue' else 'every'} value of {c.key}"
    text = f"{key} {rel} {_values(c.values)}"
    if if_exists:
        # IfExists: true when the key is absent. Negated, access needs the key present and the test false.
        text = f"{c.key} present and {text}" if c.negated else f"{text} (or {c.key} absent)"
    return text


def conditions_text(terms: Iterable[Iterable[_Clause]], assumptions: Iterable[str] = ()) -> str:
    """A disjunction of conjunctions: ``a and b`` or ``(a and b) or (c)``; ``-`` when unconditional."""
    parts = [" and ".join(condition_text(c) for c in term) for term in terms]
    parts = [p for p in parts if p]
    text = parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)
    text = "; ".join(t for t in (text, *assumptions) if t)
    return text or "-"
