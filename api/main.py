"""The app factory. Wires settings, auth, limits, the snapshot holder and the routers; nothing else.

``iamgraph serve`` runs ``uvicorn.run("api.main:app_from_env", factory=True)`` with the settings in
``IAMGRAPH_API_*`` environment variables: the CLI layer may not import ``api`` (it is the layer above), so
uvicorn imports this module by name.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.admission import WorkPool
from api.answers import ServeKept
from api.audit import AuditLog, AuditMiddleware
from api.auth import Authenticator
from api.docs_offline import install_offline_docs
from api.errors import install_error_handlers
from api.guards import RequestGuard, redact_access_log
from api.holder import SnapshotHolder
from api.limits import BodySizeLimit, JsonShapeLimit
from api.routers import access, admin, graph, simulate, usage
from api.settings import Settings
from iamgraph import __version__
from iamgraph.change import preload as preload_change_analysis

DESCRIPTION = """\
Ask an AWS estate's snapshot who can do what, and whether an access request is safe to grant.

Every endpoint needs a bearer token (`iamgraph token create`) with the scope it names: `read`,
`evaluate` (access requests) or `admin` (snapshot reload). Errors have one shape: `{"error": {"code",
"message", "location"}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Loads the snapshot and the token file now, so a bad one fails the start, not a request."""
    settings.check()
    holder = SnapshotHolder(settings.snapshot, allow_unhashed=settings.allow_unhashed_snapshot)
    limits = settings.limits
    pool = WorkPool(workers=limits.work_threads, max_queued=limits.max_queued, per_token=limits.max_per_token)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(title="iamgraph", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    install_offline_docs(app)
    app.state.settings = settings
    app.state.holder = holder
    app.state.pool = pool
    app.state.authenticator = Authenticator(settings.token_file, allow_anonymous_local=settings.allow_anonymous_local)
    app.state.audit = AuditLog(settings.audit_log)
    install_error_handlers(app)
    # add_middleware puts each one outside the ones before it. From the outside in: the audit (it sees every
    # response, refusals included), the body size, the Authorization/query guard, the JSON shape, the kept answers
    # of repeated GETs (after every check above, and it authenticates itself); then FastAPI.
    app.add_middleware(ServeKept, holder=holder, authenticator=app.state.authenticator)
    app.add_middleware(JsonShapeLimit, max_depth=limits.max_json_depth, max_nodes=limits.max_json_values)
    app.add_middleware(RequestGuard)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(AuditMiddleware, audit=app.state.audit)
    redact_access_log()
    for module in (admin, simulate, graph, usage, access):
        app.include_router(module.router)  # every route takes api.deps.Authorized (auth, scope, query check)
    if settings.warm_graph:
        holder.current.graph()
        # What the first access-request judgement would otherwise pay (parliament, the ARN-format index, the SoD
        # rules; the base graph's resource pool and whole-graph structures: iamgraph.change.preload).
        preload_change_analysis(holder.current)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory api.main:app_from_env`` with ``IAMGRAPH_API_*`` set."""
    app = create_app(Settings.from_env())
    freeze_loaded_objects()
    return app


def freeze_loaded_objects() -> None:
    """Keep the cyclic garbage collector's full passes off the latency path of a serving process.

    Everything loaded so far (the snapshot, its index, the graph when warm) is moved out of the collector's
    sight with ``gc.freeze``: those objects live as long as the snapshot serves, yet each full collection
    walked all of them. And the youngest generation's threshold is raised from 700 to 20,000 allocations:
    each young collection promotes the objects of the requests in flight, and once enough have been promoted
    (a quarter of the long-lived objects, e.g. the answers and analyses kept after the first requests) a full
    collection runs. On the demo organization under 64 clients that was a 70-340 ms pause every ~1,000
    requests, more than the latency aim alone; with both measures none ran during the load phases
    (docs/benchmarks.md, HTTP API). The pause grows with the snapshot. Reference counting still frees
    everything; ``SnapshotHolder.reload`` unfreezes so a replaced snapshot's cycles are collected. Only in a
    server process (the uvicorn factory), never for apps built in a test process.
    https://docs.python.org/3/library/gc.html#gc.freeze"""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)


YOUNG_GC_THRESHOLD = 20_000
