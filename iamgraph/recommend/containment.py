"""A structural proof that a proposal grants nothing the original did not: pattern against pattern, not a sample.

Every (action pattern, resource pattern) of every proposed Allow statement must be covered by one original Allow
statement:

- its action pattern contains the proposed one *as a pattern* (``s3:Get*`` contains ``s3:GetObject*``; an explicit
  list never contains a wildcard, so ``s3:Replicate*`` is never produced from four listed ``s3:Replicate...``
  actions, and a later ``s3:ReplicateFutureAction`` cannot slip in);
- its resource pattern contains the proposed one by wildcard-pattern inclusion (or both use the same
  ``NotResource`` list);
- its conditions are among the proposed statement's (the proposal is at least as strict).

Deny statements of the original must all be in the proposal, unchanged. Boundaries, SCPs and resource policies are
not touched by a proposal, so they stay as they were. Policy semantics: *, ? in Action and Resource
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html); actions match
case-insensitively, resources case-sensitively.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_VAR = re.compile(r"\$\{[^}]*\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Containment:
    contained: bool
    uncovered: tuple[str, ...] = ()
    """What no original statement covers, one line each (the first 50)."""


def _tokens(pattern: str) -> tuple[str, ...]:
    """Single characters, ``*``, ``?``, and each policy variable as one token: it stands for the same value on both
    sides, and for a value the other side knows nothing of (only an outer ``*`` takes it)."""
    out: list[str] = []
    pos = 0
    for m in _VAR.finditer(pattern):
        out.extend(pattern[pos:m.start()])
        out.append("\x00" + m.group(0))
        pos = m.end()
    out.extend(pattern[pos:])
    return tuple(out)


@functools.lru_cache(maxsize=65536)
def pattern_contains(outer: str, inner: str, *, case_sensitive: bool = True) -> bool:
    """Is every string ``inner`` matches also matched by ``outer``? Sound: True only when it is so.

    The outer ``*`` takes any run of inner tokens (an inner ``*`` included), ``?`` one inner character or ``?``,
    a literal only the same literal.
    """
    if not case_sensitive:
        outer, inner = outer.lower(), inner.lower()
    if outer == "*":
        return True  # the outer * takes every run of inner tokens, the empty one included
    if "*" not in outer and "?" not in outer and "$" not in outer:
        # Literals only: each matches the same literal of the inner pattern (never a * or ?), so the two are one
        # string. Most patterns of a proposal and its original are action and resource names.
        return outer == inner
    o, i = _tokens(outer), _tokens(inner)
    memo: dict[tuple[int, int], bool] = {}

    def go(a: int, b: int) -> bool:
        hit = memo.get((a, b))
        if hit is not None:
            return hit
        if a == len(o):
            hit = b == len(i)
        elif o[a] == "*":
            hit = go(a + 1, b) or (b < len(i) and go(a, b + 1))
        elif b == len(i) or i[b] == "*":
            hit = False
        elif o[a] == "?":
            hit = len(i[b]) == 1 and go(a + 1, b + 1)
        else:
            hit = o[a] == i[b] and i[b] != "?" and go(a + 1, b + 1)
        memo[(a, b)] = hit
        return hit

    return go(0, 0)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _statements(docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for doc in docs:
        sts = doc.get("Statement")
        out.extend(st for st in (sts if isinstance(sts, list) else [sts]) if isinstance(st, Mapping))
    return out


def _conditions(st: Mapping[str, Any]) -> set[str]:
    cond = st.get("Condition") or {}
    out: set[str] = set()
    if isinstance(cond, Mapping):
        for op, block in cond.items():
            if isinstance(block, Mapping):
                for key, values in block.items():
                    vals = sorted(_list(values))
                    out.add(json.dumps([op, key.lower(), vals]))
            else:
                out.add(json.dumps([op, str(block)]))
    return out


def _canonical(st: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in st.items() if k != "Sid"}, sort_keys=True, default=str)


def prove_contained(original: Mapping[str, Any], proposed: Sequence[Mapping[str, Any]]) -> Containment:
    """The structural proof (module docstring). Unknown statement shapes are never contained.

    The proof depends on the two documents alone, so it is kept per (original, proposal) for the process: many
    principals' policies are copies of a few templates trimmed to the same use, and each pair is proven once."""
    return _proven(json.dumps([original, list(proposed)], sort_keys=True, default=str))


@functools.lru_cache(maxsize=8192)
def _proven(documents: str) -> Containment:
    original, proposed = json.loads(documents)
    return _prove(original, proposed)


def _prove(original: Mapping[str, Any], proposed: Sequence[Mapping[str, Any]]) -> Containment:
    orig = _statements([original])
    allows = [st for st in orig if st.get("Effect") == "Allow"]
    uncovered: list[str] = []
    prop = _statements(proposed)
    kept = {_canonical(st) for st in prop}
    for st in orig:
        if st.get("Effect") != "Allow" and _canonical(st) not in kept:
            uncovered.append(f"the original Deny {_canonical(st)[:120]} is missing")
    for n, st in enumerate(prop):
        effect = st.get("Effect")
        if effect == "Deny":
            continue
        if effect != "Allow" or "NotAction" in st or "NotPrincipal" in st or "Principal" in st:
            if not any(_canonical(st) == _canonical(o) for o in allows):
                uncovered.append(f"Statement[{n}]: only an unchanged copy of an original statement can use this form")
            continue
        conds = _conditions(st)
        actions = _list(st.get("Action"))
        not_resource = "NotResource" in st
        resources = _list(st.get("NotResource" if not_resource else "Resource"))
        for action in actions:
            for resource in resources:
                if not any(_covers(o, action, resource, not_resource, resources, conds) for o in allows):
                    uncovered.append(f"Statement[{n}]: {action} on {'NotResource ' if not_resource else ''}{resource}")
    return Containment(contained=not uncovered, uncovered=tuple(uncovered[:50]))


def _covers(o: Mapping[str, Any], action: str, resource: str, not_resource: bool, resources: Sequence[str],
            conds: set[str]) -> bool:
    if not _conditions(o) <= conds:
        return False
    if "NotAction" in o:
        # Covered only as written: the same action list cannot widen (an exact action outside every NotAction
        # pattern is covered too).
        if "*" in action or "?" in action:
            return False
        if any(pattern_contains(p, action, case_sensitive=False) for p in _list(o.get("NotAction"))):
            return False
    elif not any(pattern_contains(p, action, case_sensitive=False) for p in _list(o.get("Action"))):
        return False
    if not_resource:
        # A proposed NotResource excludes what the original excluded, or more.
        return "NotResource" in o and set(_list(o.get("NotResource"))) <= set(resources)
    if "NotResource" in o:
        return False
    return any(pattern_contains(p, resource) for p in _list(o.get("Resource")))
