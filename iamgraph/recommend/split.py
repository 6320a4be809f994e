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


def _pieces(head: Mapping[str, Any], st: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """A statement cut into statements with consecutive runs of its Action list, each fitting ``limit``."""
    if policy_size(_doc(head, [st])) <= limit:
        return [dict(st)]
    actions = st.get("Action")
    if not isinstance(actions, list) or len(actions) < 2:
        raise SplitError(f"statement {st.get('Sid') or ''} is larger than {limit} characters on its own "
                         "and cannot be split further")
    out: list[dict[str, Any]] = []
    run: list[Any] = []
    for a in actions:
        trial = dict(st, Action=[*run, a])
        if run and policy_size(_doc(head, [trial])) > limit:
            out.append(dict(st, Action=run))
            run = [a]
        else:
            run.append(a)
    out.append(dict(st, Action=run))
    for piece in out:
        if policy_size(_doc(head, [piece])) > limit:
            raise SplitError(f"statement {st.get('Sid') or ''} has an action entry too large for {limit} characters")
    # Distinct Sids: AWS requires Sids to be unique within a policy, and the pieces may share one.
    if "Sid" in st and len(out) > 1:
        for i, piece in enumerate(out[1:], start=2):
            piece["Sid"] = f"{st['Sid']}Part{i}"
    return out


def split_document(doc: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """The document itself when it fits; else the fewest in-order chunks a greedy pass gives, same input same
    output. Statements too large on their own are cut by their Action list."""
    if policy_size(doc) <= limit:
        return [dict(doc)]
    head = {k: v for k, v in doc.items() if k != "Statement"}
    statements = doc.get("Statement")
    if not isinstance(statements, list):
        statements = [statements]
    pieces = [p for st in statements for p in _pieces(head, st, limit)]
    out: list[list[dict[str, Any]]] = [[]]
    for p in pieces:
        if out[-1] and policy_size(_doc(head, out[-1] + [p])) > limit:
            out.append([])
        out[-1].append(p)
    return [_doc(head, chunk) for chunk in out]
