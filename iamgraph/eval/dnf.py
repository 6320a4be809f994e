"""Residual formulas for discovery mode: a disjunction of conjunctions of (possibly negated) atoms.

An atom is a condition clause the engine could not decide because its key was not supplied. In
strict mode every formula is either TRUE or FALSE, and the fast paths below keep that case cheap.
Formulas are kept small by dropping contradictory conjunctions (``a and not a``) and absorbed
ones (``a`` makes ``a and b`` redundant).
"""

from __future__ import annotations

Lit = tuple[int, bool]
"""(atom id, negated)."""
Conj = frozenset[Lit]
DNF = frozenset[Conj]

EMPTY: Conj = frozenset()
TRUE: DNF = frozenset({EMPTY})
FALSE: DNF = frozenset()

MAX_TERMS = 512
"""A residual larger than this is not worth listing to a human; the engine reports it as an error."""


class TooComplexError(Exception):
    """The residual formula grew past ``MAX_TERMS`` alternatives."""


def is_true(f: DNF) -> bool:
    return EMPTY in f


def is_false(f: DNF) -> bool:
    return not f


def of_conj(lits: Conj) -> DNF:
    return frozenset({lits})


def _absorb(terms: set[Conj]) -> DNF:
    if EMPTY in terms:
        return TRUE
    if len(terms) > MAX_TERMS:
        raise TooComplexError
    if len(terms) < 2:
        return frozenset(terms)
    ordered = sorted(terms, key=len)
    kept: list[Conj] = []
    for t in ordered:
        if not any(k <= t for k in kept):
            kept.append(t)
    return frozenset(kept)


def or_(a: DNF, b: DNF) -> DNF:
    if not a:
        return b
    if not b:
        return a
    if EMPTY in a or EMPTY in b:
        return TRUE
    return _absorb(set(a) | set(b))


def and_(a: DNF, b: DNF) -> DNF:
    if not a or not b:
        return FALSE
    if EMPTY in a:
        return b
    if EMPTY in b:
        return a
    out: set[Conj] = set()
    for x in a:
        for y in b:
            u = x | y
            if not _contradictory(u):
                out.add(u)
    return _absorb(out)


def not_(a: DNF) -> DNF:
    if not a:
        return TRUE
    if EMPTY in a:
        return FALSE
    result = TRUE
    for term in a:
        result = and_(result, frozenset(frozenset({(atom, not neg)}) for atom, neg in term))
        if not result:
            return FALSE
    return result


def any_of(parts: list[DNF]) -> DNF:
    out = FALSE
    for p in parts:
        out = or_(out, p)
        if EMPTY in out:
            return TRUE
    return out


def all_of(parts: list[DNF]) -> DNF:
    out = TRUE
    for p in parts:
        out = and_(out, p)
        if not out:
            return FALSE
    return out


def _contradictory(term: Conj) -> bool:
    return any((atom, not neg) in term for atom, neg in term)
