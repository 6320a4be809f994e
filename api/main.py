"""The app factory. Wires settings, auth, limits, the snapshot holder and the routers; nothing else.

``iamgraph serve`` runs ``uvicorn.run("api.main:app_from_env", factory=True)`` with the settings in
``IAMGRAPH_API_*`` environment variables: the CLI layer may not import ``api`` (it is the layer above), so
uvicorn imports this module by name.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from api import deps
from api.audit import AuditLog
from api.auth import Authenticator
from api.docs_offline import install_offline_docs
from api.errors import install_error_handlers
from api.holder import SnapshotHolder
from api.limits import BodySizeLimit
from api.routers import access, admin, graph, simulate, usage
from api.settings import Settings
from iamgraph import __version__

DESCRIPTION = """\
Ask an AWS estate's snapshot who can do what, and whether an access request is safe to grant.

Every endpoint needs a bearer token (`iamgraph token create`) with the scope it names: `read`,
`evaluate` (access requests) or `admin` (snapshot reload). Errors have one shape: `{"error": {"code",
"message", "location"}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Loads the snapshot and the token file now, so a bad one fails the start, not a request."""
    settings.check()
    holder = SnapshotHolder(settings.snapshot)
    app = FastAPI(title="iamgraph", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None)
    install_offline_docs(app)
    app.state.settings = settings
    app.state.holder = holder
    app.state.authenticator = Authenticator(settings.token_file, allow_anonymous_local=settings.allow_anonymous_local)
    app.state.audit = AuditLog(settings.audit_log)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    for module in (admin, simulate, graph, usage, access):
        app.include_router(module.router, dependencies=[Depends(deps.no_unknown_query)])
    if settings.warm_graph:
        holder.current.graph()
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory api.main:app_from_env`` with ``IAMGRAPH_API_*`` set."""
    return create_app(Settings.from_env())
