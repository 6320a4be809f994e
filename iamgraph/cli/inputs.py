"""Strict reading of what a user types: actions, ARNs, principals, resources, snapshot and usage-store files.

Every command resolves its arguments here, so a typo (``s3:GetObjekt``, ``arn:aws:s3``, ``ghost``) is an
``InputError`` naming the option and, where it can, the nearest real names, instead of a confident answer
about something that does not exist. Only the CLI's ``handle_errors`` turns these into exits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from iamgraph.catalog import require_action as _catalog_require_action
from iamgraph.errors import InputError, NotFoundError
from iamgraph.model.arn import try_parse

if TYPE_CHECKING:
    from iamgraph.snapshot.index import SnapshotIndex
    from iamgraph.snapshot.model import Snapshot
    from iamgraph.usage.store import UsageStore

# Principals that are not IAM entities of the snapshot and that a request may still come from.
_T = TypeVar("_T")

_NON_ENTITY_PRINCIPALS = ("anonymous", "*")


def require_action(action: str, flag: str = "--action", *, allow_patterns: bool = False) -> str:
    """The catalog's spelling of ``action`` (or a pattern matching some catalog action, with ``allow_patterns``)."""
    try:
        return _catalog_require_action(action, allow_patterns=allow_patterns)
    except InputError as exc:
        raise InputError(exc.message, source=flag) from None


def require_arn(text: str, flag: str) -> str:
    """``text`` when it is a well-formed ARN with a resource part (or ``*``)."""
    if text == "*":
        return text
    parsed = try_parse(text)
    if parsed is None or not parsed.resource:
        raise InputError(f"{text!r} is not an ARN (expected arn:partition:service:region:account:resource)",
                         source=flag)
    return text


def require_resource(index: SnapshotIndex, text: str, flag: str = "--resource", *,
                     resource_account: str | None = None, action: str | None = None) -> str:
    """A resource ARN of the snapshot, or one of a kind the snapshot does not inventory (so its absence says
    nothing). A resource of an inventoried kind in an account of the snapshot that the snapshot lacks is an
    error: answering for it would describe a resource that does not exist. ``*`` and patterns pass, and so
    does any resource of a ``Create*`` action (``iam:CreateUser`` names the user it is about to create)."""
    if action is not None and action.partition(":")[2].startswith("Create"):
        return require_arn(text, flag)
    if text == "*" or "*" in text or "?" in text:
        if text != "*" and try_parse(text) is None and not text.startswith("arn:"):
            raise InputError(f"{text!r} is not an ARN or ARN pattern", source=flag)
        return text
    require_arn(text, flag)
    if _held(index, text):
        return text
    parsed = try_parse(text)
    assert parsed is not None
    if parsed.service == "s3" and not parsed.account:
        bucket = parsed.resource.split("/", 1)[0]
        bucket_arn = f"arn:{parsed.partition}:s3:::{bucket}"
        if bucket_arn in index.resources:
            return text
        if resource_account is None and any(a.startswith("arn:") and ":s3:::" in a for a in index.resources):
            near = difflib.get_close_matches(bucket_arn, [a for a in index.resources if ":s3:::" in a], n=2)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise NotFoundError(f"{flag}: the snapshot has no bucket {bucket} (give --resource-account to ask "
                                f"about a bucket outside it){hint}")
        return text
    if parsed.account not in index.accounts:
        return text  # another account's resource: the snapshot cannot say whether it exists
    kind = (parsed.service, parsed.resource_type)
    pool = [a for a in _all_arns(index) if _kind_of(a) == kind]
    if not pool:
        return text  # a kind the snapshot does not inventory
    near = difflib.get_close_matches(text, pool, n=2)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise NotFoundError(f"{flag}: the snapshot has no {parsed.service} {parsed.resource_type or 'resource'} "
                        f"{text}{hint}")


def _kind_of(arn: str) -> tuple[str, str] | None:
    p = try_parse(arn)
    return (p.service, p.resource_type) if p is not None else None


def _all_arns(index: SnapshotIndex) -> Iterable[str]:
    yield from index.resources
    yield from index.roles
    yield from index.users
    yield from index.groups
    yield from index.compute
    yield from index.policies


def _held(index: SnapshotIndex, arn: str) -> bool:
    return any(arn in pool for pool in (index.resources, index.roles, index.users, index.groups, index.compute,
                                         index.policies))


def resolve_principal(index: SnapshotIndex, text: str, flag: str = "--principal", *,
                      allow_external: bool = False) -> str:
    """The snapshot's ARN for a principal written as an ARN, ``role/name`` / ``user/name`` / ``group/name``
    (with or without a path), or a bare name unique among the snapshot's users, roles and groups.

    ``allow_external``: also accept principals that are not IAM entities of the snapshot but can make a
    request (``anonymous``, a service principal, an account root, a federated or assumed-role session whose
    role the snapshot holds), as ``simulate`` does."""
    text = text.strip()
    if not text:
        raise InputError("a principal is required", source=flag)
    entities: dict[str, str] = {}
    for pool in (index.users, index.roles, index.groups):
        for arn in pool:
            entities[arn] = arn
    if text in entities:
        return text
    if text.startswith("arn:"):
        parsed = try_parse(text)
        if parsed is None:
            raise InputError(f"{text!r} is not an ARN (expected arn:partition:service:region:account:resource)",
                             source=flag)
        if allow_external:
            return text  # the evaluator names what it cannot find (an IAM user or role the snapshot lacks)
        raise NotFoundError(f"{flag}: the snapshot has no principal {text}{_hint(text, entities)}")
    if allow_external and (text in _NON_ENTITY_PRINCIPALS or text.endswith(".amazonaws.com")):
        return text
    kind, _, name = text.partition("/") if "/" in text else ("", "", text)
    if kind and kind not in ("user", "role", "group"):
        kind, name = "", text
    want = text if kind else None
    hits: list[str] = []
    for arn in entities:
        res = arn.split(":", 5)[5]
        if want is not None:
            # role/name, or role/path/name: the ARN's resource part ends with the path and name given.
            if res == want or (res.startswith(kind + "/") and res.endswith("/" + name)):
                hits.append(arn)
        elif res.rsplit("/", 1)[-1] == name:
            hits.append(arn)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise InputError(f"{text!r} names {len(hits)} principals ({', '.join(sorted(hits)[:4])}"
                         + (", ..." if len(hits) > 4 else "") + "): give the ARN", source=flag)
    raise NotFoundError(f"{flag}: the snapshot has no principal {text!r}{_hint(text, entities)}")


def _hint(text: str, entities: dict[str, str]) -> str:
    names = {arn.split(":", 5)[5]: arn for arn in entities}
    key = text.split(":", 5)[5] if text.startswith("arn:") and text.count(":") >= 5 else text
    near = difflib.get_close_matches(key, list(names), n=2, cutoff=0.7)
    near += [n for n in difflib.get_close_matches(key.rsplit("/", 1)[-1],
                                                    [n.rsplit("/", 1)[-1] for n in names], n=2, cutoff=0.7)
             if n not in near]
    return f"; did you mean {', '.join(near[:3])}?" if near else ""


def load_snapshot(path: str | Path, flag: str = "--snapshot") -> Snapshot:
    """Read a snapshot file, saying which option named it when it is missing or not a snapshot."""
    from iamgraph.snapshot import read_snapshot

    p = Path(path)
    if not p.exists():
        raise InputError("no such snapshot file", source=f"{flag} {p}")
    if p.is_dir():
        raise InputError("is a directory, not a snapshot file", source=f"{flag} {p}")
    if _is_duckdb(p):
        raise InputError("is a usage store (DuckDB), not a snapshot: give it as --db", source=f"{flag} {p}")
    return read_snapshot(p)


def open_store(path: str | Path, flag: str = "--db", *, read_only: bool = True) -> UsageStore:
    """Open a usage store, refusing a snapshot file or anything else that is not a DuckDB usage store."""
    from iamgraph.usage.store import UsageStore

    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory, not a usage store", source=f"{flag} {p}")
    if p.exists() and not _is_duckdb(p):
        raise InputError("is not a usage store (DuckDB file from `iamgraph usage ingest`)"
                         + (": it looks like a snapshot; give it as --snapshot" if _looks_like_snapshot(p) else ""),
                         source=f"{flag} {p}")
    return UsageStore(p, read_only=read_only)  # says "no such usage database" itself


def _is_duckdb(p: Path) -> bool:
    # DuckDB's file header: an 8-byte checksum, then the magic "DUCK" at offset 8.
    try:
        with p.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[8:12] == b"DUCK"


def _looks_like_snapshot(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return head in (b"\x1f\x8b", b"{\n", b'{"') or head[:1] == b"{"


def require_output_file(path: str | Path, flag: str) -> Path:
    """A path a file can be written to: not a directory, in an existing, writable directory. Checked before
    the work, so a long computation is not lost to a typo in the output path."""
    import os

    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory; give a file name", source=f"{flag} {p}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"no such directory {parent}", source=f"{flag} {p}")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError("cannot write there (permission denied)", source=f"{flag} {p}")
    return p


def require_output_dir(path: str | Path, flag: str) -> Path:
    """A directory to write files into: an existing writable directory, or a new one whose parent exists."""
    import os

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError("exists and is not a directory; give a directory to write the files into",
                         source=f"{flag} {p}")
    probe = p if p.exists() else p.parent if str(p.parent) else Path(".")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError("cannot write there (permission denied)", source=f"{flag} {p}")
    return p


def write_output(path: str | Path, data: bytes, flag: str) -> None:
    """Write ``data`` to ``path`` atomically (mode 600), naming the option and the path when it cannot."""
    from iamgraph.snapshot import atomic_write_bytes

    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory; give a file name", source=f"{flag} {p}")
    try:
        atomic_write_bytes(p, data)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", source=f"{flag} {p}") from None


def alias(value: _T | None, old: _T | None, name: str, old_name: str) -> _T | None:
    """The value of an option given under its current name or under an older, hidden spelling (not both)."""
    if value is not None and old is not None and value != old:
        raise InputError(f"{old_name} is the old spelling of {name}; give one of them")
    return value if value is not None else old
