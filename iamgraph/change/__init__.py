"""Change analysis: apply a change set to a snapshot view, compare before and after, give a verdict.

One judgement with three faces: the API's access requests (``POST /v1/access-requests/evaluate``),
``iamgraph request evaluate`` and ``iamgraph diff`` between two snapshots (``iamgraph.change.drift``).
"""

from iamgraph.change.evaluate import (
    Alternative,
    Base,
    Evaluation,
    Limits,
    LintFinding,
    NewAccess,
    Reason,
    SnapshotBase,
    Verdict,
    evaluate_grant,
    verdict_of,
)
from iamgraph.change.grant import (
    Applied,
    ExistingPrincipal,
    GroupGrant,
    IdentityCenterPrincipal,
    InlinePolicyGrant,
    ManagedPolicyGrant,
    Need,
    NewRole,
    PermissionSetGrant,
    PolicyRemoval,
    TrustPolicyEdit,
    What,
    Who,
    apply_grant,
)

__all__ = [
    "Alternative",
    "Applied",
    "Base",
    "Evaluation",
    "ExistingPrincipal",
    "GroupGrant",
    "IdentityCenterPrincipal",
    "InlinePolicyGrant",
    "Limits",
    "LintFinding",
    "ManagedPolicyGrant",
    "Need",
    "NewAccess",
    "NewRole",
    "PermissionSetGrant",
    "PolicyRemoval",
    "Reason",
    "SnapshotBase",
    "TrustPolicyEdit",
    "Verdict",
    "What",
    "Who",
    "apply_grant",
    "evaluate_grant",
    "verdict_of",
]
