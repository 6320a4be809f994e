"""Wildcards and policy variables, compiled once per policy string.

Policy variables (``${aws:username}``, ``${aws:PrincipalTag/team, 'none'}``, ``${*}``, ``${?}``,
``${$}``) are substituted only in policies with ``"Version": "2012-10-17"``; in older or unversioned
policies they are literal text
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
A variable whose key the request does not carry (and that has no default) "causes the statement
to be invalid" per the same page: the caller treats it as a non-match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from iamgraph.model.memo import SecondSightCache

_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_BODY = re.compile(r"\s*([^,\s]+)\s*(?:,\s*'([^']*)'\s*)?")
# ${*}, ${?} and ${$} stand for the literal character: they exist so a pattern can say "*" without
# it being a wildcard.
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


class Unresolved(Exception):
    """A policy variable names a key the request context does not have (and no default)."""


@dataclass(frozen=True, slots=True)
class _Var:
    key: str  # lowercased: condition keys are case-insensitive
    default: str | None
    literal: str | None  # for ${*} ${?} ${$}


Token = str | _Var


def tokenize(text: str, *, variables: bool) -> tuple[Token, ...]:
    """Split a policy string into literal runs and variables (none when ``variables`` is False)."""
    if not variables or "${" not in text:
        return (text,)
    # Distinct documents repeat the part from the first variable on (``arn:aws:s3:::bucket-N/${aws:username}/*``):
    # that part is split once, and the text before it is the literal run before its first variable. (When the
    # first "${" starts no variable, the whole text is split: its first run would reach past it.)
    head, _, rest = text.partition("${")
    tail = _tail_tokens("${" + rest)
    if not head:
        return tail
    if type(tail[0]) is str:
        return _tail_tokens(text)
    return (head, *tail)


@lru_cache(maxsize=4096)
def _tail_tokens(text: str) -> tuple[Token, ...]:
    out: list[Token] = []
    pos = 0
    for m in _VAR.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        body = m.group(1)
        if body.strip() in _SPECIAL:
            out.append(_Var(key="", default=None, literal=_SPECIAL[body.strip()]))
        else:
            bm = _VAR_BODY.fullmatch(body)
            if bm is None:
                # Not a variable AWS would recognise: keep the text as written.
                out.append(m.group(0))
            else:
                out.append(_Var(key=bm.group(1).lower(), default=bm.group(2), literal=None))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return tuple(out)


def has_vars(tokens: tuple[Token, ...]) -> bool:
    return any(isinstance(t, _Var) for t in tokens)


def var_value(var: _Var, ctx: Mapping[str, Any]) -> str:
    if var.literal is not None:
        return var.literal
    value = ctx.get(var.key)
    if value is None or isinstance(value, (list, tuple)):
        # Multi-valued keys cannot be substituted into a single string.
        if var.default is not None:
            return var.default
        raise Unresolved(var.key)
    return scalar_text(value)


def scalar_text(value: Any) -> str:
    """The text AWS compares for a scalar context or policy value (JSON true -> "true")."""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def substitute(tokens: tuple[Token, ...], ctx: Mapping[str, Any]) -> str:
    """Plain substitution (for equality operators). Raises Unresolved."""
    return "".join(t if isinstance(t, str) else var_value(t, ctx) for t in tokens)


# -------------------------------------------------------------------- glob -> regex


def _glob_piece(text: str, star: str, qmark: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(qmark)
        else:
            out.append(re.escape(ch))
    return "".join(out)


def glob_regex(tokens: tuple[Token, ...], ctx: Mapping[str, Any] | None, *, arn: bool) -> str:
    """A regex source for an IAM wildcard pattern; variable values are literal.

    ``arn=True``: the pattern is an ARN, matched one colon-separated segment at a time: a wildcard in
    partition, service, region or account stays inside its segment, while the resource segment (the
    sixth) may contain ':' and '/' (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
    A pattern with fewer than six segments is matched as a whole string (its last wildcard spans
    the rest). Raises Unresolved for a variable ``ctx`` cannot fill.
    """
    out: list[str] = []
    for p in _regex_pieces(tokens, arn=arn):
        if isinstance(p, str):
            out.append(p)
        elif ctx is None:
            raise Unresolved(p.key)
        else:
            out.append(re.escape(var_value(p, ctx)))
    return "".join(out)


def _regex_pieces(tokens: tuple[Token, ...], *, arn: bool) -> tuple[str | _Var, ...]:
    colons = sum(t.count(":") for t in tokens if isinstance(t, str)) if arn else 0
    last_spans = colons < 5
    pieces: list[str | _Var] = []
    seg = 0
    for t in tokens:
        if isinstance(t, _Var):
            pieces.append(t)
            continue
        if not arn:
            pieces.append(_glob_piece(t, ".*", "."))
            continue
        for i, part in enumerate(t.split(":")):
            if i:
                pieces.append(":")
                seg += 1
            spans = seg >= 5 or (last_spans and seg == colons)
            pieces.append(_glob_piece(part, ".*" if spans else "[^:]*", "." if spans else "[^:]"))
    return tuple(pieces)


@lru_cache(maxsize=16384)
def compile_regex(source: str, ignore_case: bool = False) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


_NO_KEYS: frozenset[str] = frozenset()


class Pattern:
    """One wildcard pattern (Resource entry, StringLike/ArnLike value), with or without variables."""

    __slots__ = (
        "_dyn_prefix",
        "_pieces",
        "_regex",
        "always",
        "arn",
        "literal",
        "prefix",
        "text",
        "tokens",
        "var_keys",
    )

    def __init__(self, text: str, variables: bool, arn: bool) -> None:
        self.text = text
        self.arn = arn
        self.always = text == "*"
        self.literal: str | None = None
        self.prefix: str | None = None
        self._regex: re.Pattern[str] | None = None
        self._dyn_prefix = False
        self._pieces: tuple[str | _Var, ...] = ()
        if not variables or "${" not in text:
            # The common case, without variables: no tokens to look through.
            self.tokens: tuple[Token, ...] = (text,)
            self.var_keys: frozenset[str] = _NO_KEYS
            dynamic = False
        else:
            head, _, rest = text.partition("${")
            tail = _tail_facts("${" + rest)
            if type(tail[0][0]) is not str:
                # tokenize's split (head, then the tail's tokens), with what is derived from the tail made once
                # per tail: distinct documents repeat it (``arn:aws:s3:::bucket-N/${aws:username}/*``).
                self.tokens = (head, *tail[0]) if head else tail[0]
                self.var_keys, dynamic, lits = tail[1], tail[2], head + tail[3]
            else:
                self.tokens = tokenize(text, variables=variables)
                self.var_keys = frozenset(t.key for t in self.tokens if isinstance(t, _Var) and t.literal is None)
                dynamic = has_vars(self.tokens)
                lits = "".join(t for t in self.tokens if isinstance(t, str))
        if dynamic:
            last = self.tokens[-1]
            # "arn:aws:s3:::b/${aws:username}/*": substitute, then a prefix test.
            self._dyn_prefix = (
                isinstance(last, str) and last.endswith("*") and "?" not in lits and lits.count("*") == 1
            )
            if not self._dyn_prefix:
                self._pieces = _regex_pieces(self.tokens, arn=arn)
        else:
            if "*" not in text and "?" not in text:
                self.literal = text
            elif text.endswith("*") and "?" not in text and "*" not in text[:-1]:
                # "arn:aws:s3:::bucket/*", the only wildcard one trailing "*": a plain prefix test, no regex to
                # build or run. For ARNs too: a trailing "*" sits in the resource segment (which may contain
                # ':'), or in the last segment of a short pattern, which glob_regex also lets span the rest.
                self.prefix = text[:-1]
            else:
                self._regex = compile_regex(glob_regex(self.tokens, None, arn=arn))

    @property
    def dynamic(self) -> bool:
        return self.literal is None and self._regex is None and self.prefix is None and not self.always

    def matches(self, value: str, ctx: Mapping[str, Any]) -> bool:
        """Raises Unresolved when a variable cannot be substituted."""
        if self.always:
            return True
        if self.literal is not None:
            return value == self.literal
        if self.prefix is not None:
            return value.startswith(self.prefix)
        regex = self._regex
        if regex is None:
            if self._dyn_prefix:
                head = "".join([t if isinstance(t, str) else var_value(t, ctx) for t in self.tokens])
                return value.startswith(head[:-1])
            source = "".join(p if isinstance(p, str) else re.escape(var_value(p, ctx)) for p in self._pieces)
            regex = compile_regex(source)
        return regex.fullmatch(value) is not None

    def candidates(self, value: str, ctx: Mapping[str, Any]) -> tuple[str, frozenset[str]] | None:
        """For a pattern with one variable whose key ``ctx`` lacks: (that key, every value of it that
        makes the pattern match ``value``). None when that cannot be enumerated cheaply (several unknown
        variables, or a wildcard before the variable).
        """
        unknown = [i for i, t in enumerate(self.tokens) if isinstance(t, _Var) and t.literal is None
                   and t.key not in ctx]
        if len(unknown) != 1:
            return None
        k = unknown[0]
        var = self.tokens[k]
        assert isinstance(var, _Var)
        before = self.tokens[:k]
        if any(isinstance(t, str) and ("*" in t or "?" in t) for t in before):
            return None
        try:
            head = substitute(before, ctx)
            pieces = _regex_pieces(self.tokens, arn=self.arn)
            at = next(i for i, p in enumerate(pieces) if p is var)
            tail = "".join(p if isinstance(p, str) else re.escape(var_value(p, ctx)) for p in pieces[at + 1 :])
        except Unresolved:
            return None
        if not value.startswith(head):
            return var.key, frozenset()
        rest = value[len(head) :]
        regex = compile_regex(tail)
        found = frozenset(rest[:j] for j in range(len(rest) + 1) if regex.fullmatch(rest[j:]))
        return var.key, found

    def resolved_text(self, ctx: Mapping[str, Any]) -> str:
        """The pattern with its variables substituted (for residual conditions)."""
        return "".join(
            t if isinstance(t, str) else ("${" + t.literal + "}" if t.literal else var_value(t, ctx))
            for t in self.tokens
        )


@lru_cache(maxsize=4096)
def _tail_facts(text: str) -> tuple[tuple[Token, ...], frozenset[str], bool, str]:
    """For a pattern's text from its first ``${`` on: its tokens, the keys of its variables, whether it has a
    variable, and its literal runs joined (what ``Pattern`` derives from the tokens)."""
    tokens = _tail_tokens(text)
    keys = frozenset(t.key for t in tokens if isinstance(t, _Var) and t.literal is None)
    return tokens, keys, has_vars(tokens), "".join(t for t in tokens if isinstance(t, str))


_resource_patterns: SecondSightCache[tuple[str, bool], Pattern] = SecondSightCache(100_000)
_plain_patterns: SecondSightCache[str, Pattern] = SecondSightCache(100_000)


def resource_pattern(text: str, variables: bool) -> Pattern:
    """The Pattern of a Resource/NotResource entry, shared by the statements that name it (immutable)."""
    if "${" not in text:
        # No variable to substitute: the same Pattern whatever the policy's version, keyed by the text alone.
        return _plain_patterns.get(text, Pattern, text, False, True)
    return _resource_patterns.get((text, variables), Pattern, text, variables, True)
