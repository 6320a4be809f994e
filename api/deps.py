"""Dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from api.audit import AuditLog
from api.holder import SnapshotHolder, State
from api.settings import Settings


def state(request: Request) -> State:
    """The snapshot state this request works on, taken once (a reload during the request does not affect it)."""
    holder: SnapshotHolder = request.app.state.holder
    return holder.current


def settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def audit(request: Request) -> AuditLog:
    a: AuditLog = request.app.state.audit
    return a
