"""Questions over the access graph: who-can, what-can, paths, privesc, blast radius, exposure, sensitive, SoD."""

from __future__ import annotations

from iamgraph.query.blast import BlastRadius, blast_radius
from iamgraph.query.exposure import Exposure, Scope, exposure
from iamgraph.query.paths import Path, simple_paths
from iamgraph.query.privesc import Escalation, EscalationKind, privesc
from iamgraph.query.sensitive import SensitiveAccess, sensitive
from iamgraph.query.sod import Conflict, SodRule, load_rules, sod
from iamgraph.query.what_can import Permission, what_can
from iamgraph.query.who_can import Access, How, WhoCanResult, who_can

__all__ = [
    "Access",
    "BlastRadius",
    "Conflict",
    "Escalation",
    "EscalationKind",
    "Exposure",
    "How",
    "Path",
    "Permission",
    "Scope",
    "SensitiveAccess",
    "SodRule",
    "WhoCanResult",
    "blast_radius",
    "exposure",
    "load_rules",
    "privesc",
    "sensitive",
    "simple_paths",
    "sod",
    "what_can",
    "who_can",
]
