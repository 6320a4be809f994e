"""Bearer-token authentication and scopes (RFC 6750): 401 when the token is missing or wrong, 403 when it
lacks the scope."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.audit import audit_details
from api.errors import ApiError
from iamgraph.errors import IamGraphError
from iamgraph.serving.settings import is_loopback
from iamgraph.serving.tokens import Scope, TokenFile, TokenVerifier

log = logging.getLogger("iamgraph.api")

_bearer = HTTPBearer(auto_error=False, description="A token from 'iamgraph token create'")


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

    def authenticate(self, request: Request, creds: HTTPAuthorizationCredentials | None) -> Caller:
        self._refresh()
        if creds is not None and self.verifier is not None:
            rec = self.verifier.verify(creds.credentials)
            if rec is None:
                raise ApiError(401, "unauthorized", "the bearer token is not valid (unknown, revoked or mistyped)",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return Caller(name=rec.name, scopes=frozenset(rec.scopes))
        if self.allow_anonymous_local and creds is None:
            client = request.client.host if request.client is not None else ""
            # Anonymous mode is for a developer's own machine: still refuse callers that are not loopback.
            if is_loopback(client):
                return Caller(name="anonymous-local", scopes=frozenset(Scope))
        if creds is None:
            raise ApiError(401, "unauthorized", "this endpoint needs a bearer token (Authorization: Bearer ...)",
                           headers={"WWW-Authenticate": 'Bearer realm="iamgraph"'})
        raise ApiError(401, "unauthorized", "the bearer token is not valid",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency that authenticates the caller and checks one scope.

    Runs on the event loop (``async def``): verifying a token is one SHA-256 and a ``stat`` of the token file,
    cheaper than the thread hop FastAPI would make for a plain ``def`` dependency."""

    async def dep(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
        auth: Authenticator = request.app.state.authenticator
        caller = auth.authenticate(request, creds)
        audit_details(request)["token"] = caller.name  # the audit line names who asked, also when refused 403
        if scope not in caller.scopes:
            raise ApiError(
                403, "forbidden", f"the token {caller.name!r} lacks the {scope.value!r} scope this endpoint needs",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope.value}"'},
            )
        return caller

    return dep
