"""Bearer-token authentication (RFC 6750): 401 when the token is missing or wrong. The scope check (403) is in
``api.deps.Authorized``, the one dependency of every route."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi.security.utils import get_authorization_scheme_param

from api.errors import ApiError
from iamgraph.errors import IamGraphError
from iamgraph.serving.settings import is_loopback
from iamgraph.serving.tokens import Scope, TokenFile, TokenVerifier

log = logging.getLogger("iamgraph.api")


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    name: str
    """The token's name, as the audit log records it."""
    scopes: frozenset[Scope]


class Authenticator:
    """Verifies tokens. Re-reads the token file when it changes, so a revoked token stops working without a
    restart; a token file that becomes unreadable keeps the last good set (and is logged)."""

    def __init__(self, token_file: Path | None, *, allow_anonymous_local: bool) -> None:
        self.token_file = token_file
        self.allow_anonymous_local = allow_anonymous_local
        self._stamp: tuple[int, int] | None = None
        self.verifier: TokenVerifier | None = None
        if token_file is not None:
            self._stamp = self._stat()
            self.verifier = TokenVerifier(TokenFile(token_file).load())

    def _stat(self) -> tuple[int, int] | None:
        assert self.token_file is not None
        try:
            st = os.stat(self.token_file)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def _refresh(self) -> None:
        if self.token_file is None:
            return
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return
        try:
            self.verifier = TokenVerifier(TokenFile(self.token_file).load())
            self._stamp = stamp
        except IamGraphError as exc:
            log.error("token file not reloaded: %s", exc)

    def authenticate(self, client: str, token: str | None) -> Caller:
        """The caller presenting ``token`` (None: no bearer token sent) from the address ``client``, or ApiError 401."""
        self._refresh()
        if token is not None and self.verifier is not None:
            rec = self.verifier.verify(token)
            if rec is None:
                raise ApiError(401, "unauthorized", "the bearer token is not valid (unknown, revoked or mistyped)",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return Caller(name=rec.name, scopes=frozenset(rec.scopes))
        # Anonymous mode is for a developer's own machine: still refuse callers that are not loopback.
        if self.allow_anonymous_local and token is None and is_loopback(client):
            return Caller(name="anonymous-local", scopes=frozenset(Scope))
        if token is None:
            raise ApiError(401, "unauthorized", "this endpoint needs a bearer token (Authorization: Bearer ...)",
                           headers={"WWW-Authenticate": 'Bearer realm="iamgraph"'})
        raise ApiError(401, "unauthorized", "the bearer token is not valid",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None (no header, another scheme, no
    token): what FastAPI's ``HTTPBearer(auto_error=False)`` reads, in one place for the routes' dependency and
    for kept answers served ahead of routing (api.answers)."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials
