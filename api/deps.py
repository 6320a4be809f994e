"""Dependencies shared by the routers.

Every dependency here is ``async def``: each is a few attribute reads, and FastAPI runs a plain ``def``
dependency in its thread pool, one thread hop per dependency per request. Under load those hops, each
waiting for the GIL behind the work threads, made most of the tail latency (docs/benchmarks.md, HTTP API).
"""

from __future__ import annotations

from fastapi import Request

from api.audit import AuditLog
from api.holder import SnapshotHolder, State
from api.settings import Settings


async def state(request: Request) -> State:
    """The snapshot state this request works on, taken once (a reload during the request does not affect it)."""
    holder: SnapshotHolder = request.app.state.holder
    return holder.current


async def settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


async def audit(request: Request) -> AuditLog:
    a: AuditLog = request.app.state.audit
    return a


async def no_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not declare: a typo (``?acton=``) must not silently widen a query."""
    from fastapi.routing import APIRoute

    from api.errors import ApiError

    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = {p.alias for p in route.dependant.query_params}
    for dep in route.dependant.dependencies:
        known |= {p.alias for p in dep.query_params}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown query parameter(s): {', '.join(unknown)}"
                       + (f"; this endpoint takes {', '.join(sorted(known))}" if known else ""),
                       location="query." + unknown[0])
