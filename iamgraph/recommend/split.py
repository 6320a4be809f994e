"""AWS policy size limits and deterministic splitting of a proposal that exceeds them.

Limits (characters, whitespace not counted), from
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html#reference_iam-quotas-entity-length:
managed policy 6,144; role inline policies 10,240; user inline 2,048; group inline 5,120 (the inline limits
are for all of an identity's inline policies together).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from iamgraph.errors import IamGraphError

MANAGED_LIMIT = 6144
ROLE_INLINE_LIMIT = 10240
USER_INLINE_LIMIT = 2048
GROUP_INLINE_LIMIT = 5120


class SplitError(IamGraphError):
    """A single statement is too large for the limit even with one action in it."""


def policy_size(doc: Mapping[str, Any]) -> int:
    """Characters AWS counts: the document without whitespace outside strings."""
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))


def _doc(head: Mapping[str, Any], statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out = dict(head)
    out["Statement"] = list(statements)
    return out


def _with_sid(st: Mapping[str, Any], sid: str | None) -> dict[str, Any]:
    # Sid first, as written by AWS's examples; the size does not depend on the key order.
    out: dict[str, Any] = {"Sid": sid} if sid is not None else {}
    out.update((k, v) for k, v in st.items() if k != "Sid")
    return out


def unique_sids(statements: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Statements with distinct Sids: AWS requires the Sids of one policy to be unique
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html). The first statement
    with a Sid keeps it; a later duplicate becomes ``<Sid><n>`` with the smallest ``n`` >= 2 that no statement of the
    policy uses (IAM Sids are letters and digits only, so a digit suffix keeps them valid). Same input, same output."""
    taken = {str(st["Sid"]) for st in statements if "Sid" in st}
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for st in statements:
        if "Sid" not in st:
            out.append(dict(st))
            continue
        sid = str(st["Sid"])
        if sid in seen:
            n = 2
            while f"{sid}{n}" in taken:
                n += 1
            sid = f"{sid}{n}"
            taken.add(sid)
        seen.add(sid)
        out.append(_with_sid(st, sid) if sid != st["Sid"] else dict(st))
    return out


def _piece_sid(st: Mapping[str, Any], k: int) -> str | None:
    """The Sid of the ``k``-th piece (1-based) of a statement cut by its Action list."""
    if "Sid" not in st:
        return None
    return str(st["Sid"]) if k == 1 else f"{st['Sid']}Part{k}"


def _pieces(head: Mapping[str, Any], st: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """A statement cut into statements with consecutive runs of its Action list, each fitting ``limit`` with the
    Sid it will carry (measured after the rename, never before)."""
    if policy_size(_doc(head, [st])) <= limit:
        return [dict(st)]
    actions = st.get("Action")
    if not isinstance(actions, list) or len(actions) < 2:
        raise SplitError(f"statement {st.get('Sid') or ''} is larger than {limit} characters on its own "
                         "and cannot be split further")
    out: list[dict[str, Any]] = []
    run: list[Any] = []
    for a in actions:
        trial = _with_sid(dict(st, Action=[*run, a]), _piece_sid(st, len(out) + 1))
        if run and policy_size(_doc(head, [trial])) > limit:
            out.append(_with_sid(dict(st, Action=run), _piece_sid(st, len(out) + 1)))
            run = [a]
        else:
            run.append(a)
    out.append(_with_sid(dict(st, Action=run), _piece_sid(st, len(out) + 1)))
    return out


def split_document(doc: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """The document itself when it fits; else the fewest in-order chunks a greedy pass gives, same input same
    output. Statements too large on their own are cut by their Action list. Sids are made unique (:func:`unique_sids`)
    before anything is measured, and every returned document is measured as AWS counts it (:func:`policy_size`):
    one that does not fit raises :class:`SplitError`, never goes out over the limit."""
    head = {k: v for k, v in doc.items() if k != "Statement"}
    statements = doc.get("Statement")
    if not isinstance(statements, list):
        statements = [statements]
    statements = unique_sids(statements)
    whole = _doc(head, statements)
    if policy_size(whole) <= limit:
        return [whole]
    pieces = unique_sids([p for st in statements for p in _pieces(head, st, limit)])
    out: list[list[dict[str, Any]]] = [[]]
    for p in pieces:
        if out[-1] and policy_size(_doc(head, out[-1] + [p])) > limit:
            out.append([])
        out[-1].append(p)
    docs = [_doc(head, chunk) for chunk in out]
    for d in docs:
        if policy_size(d) > limit:
            raise SplitError(f"a part of {policy_size(d)} characters does not fit the {limit} allowed (one statement "
                             "is too large even cut by its actions)")
    return docs
