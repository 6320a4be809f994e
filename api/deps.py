"""The one dependency every route takes: who is calling, may they, on which snapshot, under which settings.

``Authorized(scope)`` does in one step what five dependencies did before (the bearer scheme, the token check,
the snapshot state, the settings, the unknown-query check): FastAPI's dependency resolution costs a few tens of
microseconds per dependency per request, and on a cached read that was about half of the server's CPU
(docs/benchmarks.md, HTTP API). Every route still runs it, so every call is authenticated, scope-checked and
audited, refusals included; ``tests/api/test_api_answers.py`` checks that no route goes without it.

It is a subclass of FastAPI's ``HTTPBearer``, so OpenAPI still declares the bearer scheme (named
``HTTPBearer``, as before) on every route. It runs on the event loop (``async def``): verifying a token is one
SHA-256 and a ``stat`` of the token file, cheaper than the thread hop FastAPI makes for a plain ``def``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from api.audit import audit_details
from api.auth import Authenticator, Caller, bearer_token
from api.errors import ApiError
from api.holder import SnapshotHolder, State
from api.settings import Settings
from iamgraph.serving.tokens import Scope


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """What a route needs to know about its call, decided once at its start."""

    caller: Caller
    scope: Scope
    """The scope the route requires (and the caller holds)."""
    state: State
    """The snapshot state this request works on, taken once (a reload during the request does not affect it)."""
    settings: Settings


class Authorized(HTTPBearer):
    """A route's dependency: authenticate (401), check ``scope`` (403), refuse undeclared query parameters
    (422), then take the snapshot state. In that order: nothing about the request is looked at for a caller
    who has not shown a valid token, and the audit line of a 403 or 422 names the caller."""

    def __init__(self, scope: Scope) -> None:
        # scheme_name: the OpenAPI security scheme keeps the name the plain HTTPBearer gave it.
        super().__init__(auto_error=False, scheme_name="HTTPBearer",
                         description="A token from 'iamgraph token create'")
        self.required = scope
        self._known: dict[int, tuple[APIRoute, frozenset[str]]] = {}
        """Per route (by identity): the query parameters it declares, worked out on its first call."""

    async def __call__(self, request: Request) -> Call:  # type: ignore[override]
        # Not HTTPBearer's own __call__: api.auth.bearer_token reads the header as it does, in the one place the
        # kept-answer path (api.answers.ServeKept) also uses.
        app_state = request.app.state
        auth: Authenticator = app_state.authenticator
        client = request.client.host if request.client is not None else ""
        caller = auth.authenticate(client, bearer_token(request.headers.get("authorization")))
        audit_details(request)["token"] = caller.name  # the audit line names who asked, also when refused
        if self.required not in caller.scopes:
            raise ApiError(
                403, "forbidden",
                f"the token {caller.name!r} lacks the {self.required.value!r} scope this endpoint needs",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.required.value}"'},
            )
        if request.scope.get("query_string"):
            self._refuse_unknown_query(request)
        holder: SnapshotHolder = app_state.holder
        settings: Settings = app_state.settings
        return Call(caller=caller, scope=self.required, state=holder.current, settings=settings)

    def _refuse_unknown_query(self, request: Request) -> None:
        """422 for a query parameter the route does not declare: a typo (``?acton=``) must not silently widen a
        query."""
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            return
        entry = self._known.get(id(route))
        if entry is None or entry[0] is not route:
            entry = self._known[id(route)] = (route, _declared_query(route))
        known = entry[1]
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown query parameter(s): {', '.join(unknown)}"
                           + (f"; this endpoint takes {', '.join(sorted(known))}" if known else ""),
                           location="query." + unknown[0])


def _declared_query(route: APIRoute) -> frozenset[str]:
    """Every query parameter ``route`` or any of its dependencies declares (by the name a caller sends)."""
    known: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        known |= {p.alias for p in dependant.query_params}
        pending.extend(dependant.dependencies)
    return frozenset(known)


READ = Authorized(Scope.READ)
EVALUATE = Authorized(Scope.EVALUATE)
ADMIN = Authorized(Scope.ADMIN)
