"""The policy evaluation engine: AWS's evaluation logic, with explanations and conditional answers.

``authorize`` decides a request against explicit policies; ``SnapshotEvaluator`` resolves a
principal's policies in a snapshot first. See docs/engine.md.
"""

from iamgraph.eval.engine import authorize, named_policy
from iamgraph.eval.snapshot_eval import SnapshotEvaluator
from iamgraph.eval.types import (
    ContextValue,
    Decision,
    DecisionKind,
    EvaluationError,
    Mode,
    NamedPolicy,
    OrgLevelGap,
    OrgLevelRef,
    PolicySet,
    PolicyType,
    Request,
    ResidualCondition,
    ServiceRuleRef,
    StatementRef,
)

__all__ = [
    "ContextValue",
    "Decision",
    "DecisionKind",
    "EvaluationError",
    "Mode",
    "NamedPolicy",
    "OrgLevelGap",
    "OrgLevelRef",
    "PolicySet",
    "PolicyType",
    "Request",
    "ResidualCondition",
    "ServiceRuleRef",
    "SnapshotEvaluator",
    "StatementRef",
    "authorize",
    "named_policy",
]
