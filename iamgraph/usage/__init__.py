"""Usage evidence: the DuckDB activity store, CloudTrail → IAM action mapping, observability, the unused report.

The recommender's entry points: ``UsageStore(path).usage_for(principal_arn, since, until)``,
``UsageStore.resources_for(principal_arn, action)`` and ``UsageStore.observability(action)``.
"""

from iamgraph.usage.store import UsageStore, UsageStoreError
from iamgraph.usage.types import (
    IngestStats,
    Observability,
    ObservabilityKind,
    Outcome,
    Source,
    UsageRecord,
)

__all__ = [
    "IngestStats",
    "Observability",
    "ObservabilityKind",
    "Outcome",
    "Source",
    "UsageRecord",
    "UsageStore",
    "UsageStoreError",
]
