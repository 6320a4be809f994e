"""API bearer tokens: created once, stored only as salted hashes in a JSON token file.

Lives below both faces because ``iamgraph token create`` (the CLI) writes the file and the HTTP API
(``api``) reads it; neither face imports the other.

A token reads ``igt_<id>_<secret>``: ``id`` (public, 12 hex characters) finds the record, ``secret``
(32 random bytes, base64url) is checked against ``sha256(salt || secret)`` with ``hmac.compare_digest``.
A fast hash is enough here because the secret has 256 bits of entropy (nothing to brute-force, unlike
a password); a slow KDF would only add latency to every API call.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from iamgraph.errors import InputError
from iamgraph.snapshot.io import atomic_write_bytes

TOKEN_FILE_VERSION = 1
_TOKEN_RE = re.compile(r"^igt_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Scope(StrEnum):
    READ = "read"
    """Graph and usage questions, simulate, health, version."""
    EVALUATE = "evaluate"
    """Access-request evaluation (written to the audit log)."""
    ADMIN = "admin"
    """Snapshot reload."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    token_id: str
    name: str
    scopes: tuple[Scope, ...]
    salt: str
    """hex"""
    digest: str
    """hex sha256(salt || secret)"""
    created_at: str
    revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.token_id,
            "name": self.name,
            "scopes": [s.value for s in self.scopes],
            "salt": self.salt,
            "sha256": self.digest,
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """``read,evaluate`` -> scopes, in a fixed order; an unknown word is an InputError naming it."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if not words:
        raise InputError("give at least one scope: read, evaluate, admin", location="--scopes")
    known = {s.value for s in Scope}
    bad = [w for w in words if w not in known]
    if bad:
        raise InputError(f"unknown scope(s) {', '.join(bad)}; use read, evaluate, admin", location="--scopes")
    return tuple(s for s in Scope if s.value in words)


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode("ascii")).hexdigest()


class TokenFile:
    """The token file: ``{"version": 1, "tokens": [record, ...]}``, rewritten atomically on every change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> list[TokenRecord]:
        """The records; a missing file is empty. A malformed file is an InputError naming the place."""
        src = str(self.path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", source=src) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc}", source=src) from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise InputError('expected an object {"version": 1, "tokens": [...]}', source=src)
        if data.get("version") != TOKEN_FILE_VERSION:
            raise InputError(f"unsupported token file version {data.get('version')!r}", source=src,
                             location="version")
        out: list[TokenRecord] = []
        for i, item in enumerate(data["tokens"]):
            where = f"tokens[{i}]"
            try:
                rec = TokenRecord(
                    token_id=str(item["id"]),
                    name=str(item["name"]),
                    scopes=parse_scopes(",".join(item["scopes"])),
                    salt=str(item["salt"]),
                    digest=str(item["sha256"]),
                    created_at=str(item.get("created_at", "")),
                    revoked=bool(item.get("revoked", False)),
                )
                bytes.fromhex(rec.salt)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"malformed token record ({exc})", source=src, location=where) from None
            except InputError as exc:
                raise InputError(exc.message, source=src, location=where) from None
            out.append(rec)
        return out

    def _save(self, records: list[TokenRecord]) -> None:
        body = {"version": TOKEN_FILE_VERSION, "tokens": [r.to_json() for r in records]}
        atomic_write_bytes(self.path, orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
        # The file holds hashes only, but there is no reason for anyone else to read it.
        os.chmod(self.path, 0o600)

    def create(self, name: str, scopes: tuple[Scope, ...]) -> tuple[str, TokenRecord]:
        """Add a token; returns the token text (shown once, never stored) and its record."""
        if not _NAME_RE.match(name):
            raise InputError("a token name is 1-64 characters: letters, digits, '.', '_', '@', '-'",
                             location="--name")
        records = self.load()
        if any(r.name == name and not r.revoked for r in records):
            raise InputError(f"an active token named {name!r} exists; revoke it first", location="--name")
        token_id = secrets.token_hex(6)
        while any(r.token_id == token_id for r in records):
            token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        rec = TokenRecord(
            token_id=token_id,
            name=name,
            scopes=scopes,
            salt=salt.hex(),
            digest=_digest(salt, secret),
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self._save([*records, rec])
        return f"igt_{token_id}_{secret}", rec

    def revoke(self, name_or_id: str) -> TokenRecord:
        records = self.load()
        hit = [r for r in records if not r.revoked and name_or_id in (r.name, r.token_id)]
        if not hit:
            raise InputError(f"no active token named or with id {name_or_id!r}", source=str(self.path))
        out = [TokenRecord(**{**_fields(r), "revoked": True}) if r in hit else r for r in records]
        self._save(out)
        return hit[0]


def _fields(r: TokenRecord) -> dict[str, Any]:
    return {f: getattr(r, f) for f in TokenRecord.__slots__}


class TokenVerifier:
    """Checks presented tokens against loaded records. Built once per server start."""

    def __init__(self, records: list[TokenRecord]) -> None:
        self._by_id = {r.token_id: r for r in records if not r.revoked}

    def verify(self, token: str) -> TokenRecord | None:
        m = _TOKEN_RE.match(token)
        if m is None:
            # Still do one hash so a malformed token costs about as much as a wrong one.
            _digest(b"\0" * 16, token[:64])
            return None
        rec = self._by_id.get(m["id"])
        salt = bytes.fromhex(rec.salt) if rec is not None else b"\0" * 16
        expected = rec.digest if rec is not None else "0" * 64
        ok = hmac.compare_digest(_digest(salt, m["secret"]), expected)
        return rec if ok and rec is not None else None
