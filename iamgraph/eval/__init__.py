"""The policy evaluation engine: AWS's evaluation logic, with explanations and conditional answers.

``SnapshotEvaluator.ask`` is the one question every layer above the engine asks about a snapshot
(principal, action, resource, context and policy overrides -> Decision). ``authorize`` decides a
request against explicit policies; it is for this package (and the public ``iamgraph.authorize``)
only: an import-linter contract keeps it out of the layers above. See docs/engine.md.
"""

from iamgraph.eval.engine import named_policy
from iamgraph.eval.snapshot_eval import (
    ALLOW_ALL,
    ALLOW_ALL_DOC,
    ALLOW_ALL_ID,
    Asker,
    Outsider,
    Overrides,
    SnapshotEvaluator,
    StandIn,
    ask_policies,
)
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
    "ALLOW_ALL",
    "ALLOW_ALL_DOC",
    "ALLOW_ALL_ID",
    "Asker",
    "ContextValue",
    "Decision",
    "DecisionKind",
    "EvaluationError",
    "Mode",
    "NamedPolicy",
    "OrgLevelGap",
    "OrgLevelRef",
    "Outsider",
    "Overrides",
    "PolicySet",
    "PolicyType",
    "Request",
    "ResidualCondition",
    "ServiceRuleRef",
    "SnapshotEvaluator",
    "StandIn",
    "StatementRef",
    "ask_policies",
    "named_policy",
]
