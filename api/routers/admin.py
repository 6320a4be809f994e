"""Health, version, snapshot reload."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api import deps
from api.audit import audit_details
from api.deps import Call
from api.errors import responses
from api.holder import SnapshotHolder
from api.schemas import HealthResponse, ReloadResponse, VersionResponse

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/health", response_model=HealthResponse, responses=responses(401, 403))
async def health(call: Call = Depends(deps.READ)) -> HealthResponse:
    """The server is up and has a snapshot loaded."""
    return HealthResponse(status="ok", snapshot_loaded=True, graph_ready=call.state.graph_ready,
                          usage_loaded=call.settings.usage is not None)


@router.get("/version", response_model=VersionResponse, responses=responses(401, 403))
def version(call: Call = Depends(deps.READ)) -> VersionResponse:
    """iamgraph's version and the loaded snapshot's identity (content hash, collection time)."""
    from iamgraph import __version__

    try:
        from iamgraph.catalog import get_catalog

        catalog: str | None = get_catalog().data_version
    except Exception:  # the catalog is informative here; its absence must not break /version
        catalog = None
    st = call.state
    snap = st.snapshot
    return VersionResponse(iamgraph=__version__, api="v1", snapshot_hash=st.content_hash,
                           collected_at=snap.collected_at, schema_version=snap.schema_version, source=snap.source,
                           loaded_at=st.loaded_at, generation=st.generation, catalog=catalog)


@router.post("/snapshots/reload", response_model=ReloadResponse, responses=responses(409, 413))
def reload(request: Request, _: Call = Depends(deps.ADMIN)) -> ReloadResponse:
    """No body. Re-read the snapshot file and swap it in atomically: requests in flight finish on the old snapshot; a
    snapshot that cannot be read or fails its content hash is refused (409) and the old one keeps serving."""
    holder: SnapshotHolder = request.app.state.holder
    old, new = holder.reload()  # a refusal is audited with its status and message like every other call
    audit_details(request).update(previous_hash=old.content_hash, snapshot_hash=new.content_hash)
    return ReloadResponse(previous_hash=old.content_hash, snapshot_hash=new.content_hash,
                          collected_at=new.snapshot.collected_at, generation=new.generation,
                          changed=old.content_hash != new.content_hash)
