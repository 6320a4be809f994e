"""The edge-rule registry. Importing this package registers every rule, in this order."""

from __future__ import annotations

from iamgraph.graph.rules import (  # noqa: F401  (modules register their rules on import)
    admin,
    assume,
    catalog_extra,
    compute,
    compute_more,
    iam,
    identity_center,
    resources,
)
from iamgraph.graph.rules.base import RULES, EdgeRule

__all__ = ["RULES", "EdgeRule"]
