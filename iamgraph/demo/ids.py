"""Deterministic identifiers in AWS's shapes, derived from the seed and a name (never from the clock).

Unique-id prefixes follow https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-prefixes
(AIDA user, AROA role, AGPA group, ANPA managed policy, AIPA instance profile, AKIA access key, ASIA
temporary key).
"""

from __future__ import annotations

import hashlib
import uuid

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


class Ids:
    """Every id is a pure function of (seed, kind, name), so adding an entity elsewhere changes no other id."""

    def __init__(self, seed: int) -> None:
        self._seed = str(seed).encode()

    def digest(self, *parts: str) -> bytes:
        h = hashlib.blake2b(self._seed, digest_size=32)
        for p in parts:
            h.update(b"\x00")
            h.update(p.encode())
        return h.digest()

    def _chars(self, alphabet: str, n: int, parts: tuple[str, ...]) -> str:
        d = self.digest(*parts)
        return "".join(alphabet[d[i] % len(alphabet)] for i in range(n))

    def unique_id(self, prefix: str, *parts: str) -> str:
        """``AROA`` + 17 characters, the length IAM uses for user/role/group/policy ids."""
        return prefix + self._chars(_B32, 17, (prefix, *parts))

    def access_key_id(self, *parts: str, temporary: bool = False) -> str:
        prefix = "ASIA" if temporary else "AKIA"
        return prefix + self._chars(_B32, 16, (prefix, *parts))

    def hex(self, n: int, *parts: str) -> str:
        return self.digest(*parts).hex()[:n]

    def alnum(self, n: int, *parts: str) -> str:
        return self._chars(_ALNUM, n, parts)

    def uuid(self, *parts: str) -> str:
        return str(uuid.UUID(bytes=self.digest(*parts)[:16], version=4))

    def account_id(self, index: int) -> str:
        """A 12-digit account id that does not start with 0 (AWS ids may, but these read better)."""
        d = int.from_bytes(self.digest("account", str(index))[:8], "big")
        return str(100_000_000_000 + d % 900_000_000_000)
