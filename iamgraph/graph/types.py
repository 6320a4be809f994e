"""The graph's vocabulary: node kinds, edge kinds, and the edge value every rule produces.

An edge is data, never a sentence: ``reason`` names a template (``EdgeKind``) and its parameters,
``statements`` the policy statements that grant it, ``conditions`` what must also hold (a
disjunction of conjunctions of residual conditions, as the engine returns them; empty = none).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from iamgraph.eval.types import ResidualCondition, StatementRef

Conditions = tuple[tuple[ResidualCondition, ...], ...]
"""A disjunction (outer) of conjunctions (inner). The empty tuple means *no condition*."""

MAX_DISJUNCTS = 64
"""Combining conditions multiplies alternatives; past this many we keep the first ones and say so."""


class NodeKind(StrEnum):
    ACCOUNT = "Account"
    USER = "User"
    GROUP = "Group"
    ROLE = "Role"
    POLICY = "Policy"
    RESOURCE = "Resource"
    PERMISSION_SET = "PermissionSet"
    SSO_USER = "IdentityCenterUser"
    SSO_GROUP = "IdentityCenterGroup"
    SAML_PROVIDER = "SAMLProvider"
    OIDC_PROVIDER = "OIDCProvider"
    EXTERNAL_ACCOUNT = "ExternalAccount"
    """An AWS account outside the snapshot, named by a trust or resource policy."""
    PUBLIC = "Public"
    """Everyone, including anonymous callers (``"Principal": "*"``)."""
    SERVICE = "Service"
    """An AWS service principal (``lambda.amazonaws.com``)."""
    FEDERATED = "Federated"
    """A web identity provider not in the snapshot (``accounts.google.com``, ``cognito-identity.amazonaws.com``)."""
    NEW_PRINCIPAL = "NewPrincipal"
    """A user or role someone could create in an account (``new-principal:<account>``)."""


class EdgeKind(StrEnum):
    """Every relationship the graph holds. Capability edges are those in ``ACTS_AS`` and ``GRANTS``."""

    # structure
    MEMBER_OF = "MemberOf"
    SSO_MEMBER_OF = "IdentityCenterMemberOf"
    SSO_ASSIGNED = "PermissionSetAssigned"
    # acting as another principal
    ASSUME_ROLE = "AssumeRole"
    FEDERATION = "Federation"
    SSO_SIGN_IN = "IdentityCenterSignIn"
    CREATE_ACCESS_KEY = "CreateAccessKey"
    LOGIN_PROFILE = "LoginProfile"
    UPDATE_TRUST_THEN_ASSUME = "UpdateAssumeRolePolicyThenAssume"
    SSM_COMMAND = "SsmCommand"
    EC2_INSTANCE_CONNECT = "Ec2InstanceConnect"
    PASS_ROLE_TO_COMPUTE = "PassRoleToNewCompute"
    TAKEOVER_COMPUTE = "TakeOverCompute"
    JOIN_GROUP = "AddUserToGroup"
    CREATE_PRINCIPAL = "CreatePrincipal"
    """Creating a user or role, giving it a policy, and acting as it."""
    # changing a principal's permissions
    GRANT_PERMISSIONS = "GrantPermissions"
    REMOVE_BOUNDARY = "RemovePermissionsBoundary"
    REMOVE_DENY = "RemoveDenyPolicy"
    """Taking away (or overwriting) an identity policy that holds a Deny statement."""
    # resources
    RESOURCE_POLICY_TAKEOVER = "ResourcePolicyTakeover"
    # admin
    ADMIN = "AdminEquivalent"
    ADMIN_CONTROL = "AdminControl"
    """From an account's admin node to each principal of the account: a definite admin can become any of them."""


ACTS_AS: frozenset[EdgeKind] = frozenset(
    {
        EdgeKind.ASSUME_ROLE,
        EdgeKind.FEDERATION,
        EdgeKind.SSO_SIGN_IN,
        EdgeKind.SSO_MEMBER_OF,
        EdgeKind.CREATE_ACCESS_KEY,
        EdgeKind.LOGIN_PROFILE,
        EdgeKind.UPDATE_TRUST_THEN_ASSUME,
        EdgeKind.SSM_COMMAND,
        EdgeKind.EC2_INSTANCE_CONNECT,
        EdgeKind.PASS_ROLE_TO_COMPUTE,
        EdgeKind.TAKEOVER_COMPUTE,
        EdgeKind.CREATE_PRINCIPAL,
        EdgeKind.ADMIN,
        EdgeKind.ADMIN_CONTROL,
    }
)
"""Edges ``A -> B`` after which A holds B's credentials (or runs code as B): paths follow these."""

MODIFIES: frozenset[EdgeKind] = frozenset(
    {EdgeKind.GRANT_PERMISSIONS, EdgeKind.REMOVE_BOUNDARY, EdgeKind.REMOVE_DENY, EdgeKind.JOIN_GROUP}
)
"""Edges ``A -> B`` after which B has more permissions; they help whoever controls both A and B."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why an edge exists, as data: the technique (``via``: the actions used) and what it acts on."""

    via: tuple[str, ...]
    """The actions the technique needs, in order (``iam:PassRole``, ``lambda:CreateFunction``, ...)."""
    target: str | None = None
    """The resource acted on when it is not the edge's end node (a policy, a function, an instance)."""
    service: str | None = None
    """The service principal a role is passed to, or the compute kind taken over."""
    note: str | None = None
    """A short fact for the reader (a technique name from the public catalogs)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """One edge. ``conditions`` empty means the edge holds without residual conditions."""

    kind: EdgeKind
    source: str
    target: str
    reason: Reason
    statements: tuple[StatementRef, ...] = ()
    conditions: Conditions = ()
    assumptions: tuple[str, ...] = ()
    """Facts nobody supplied that the edge depends on (an external account's own policies)."""

    @property
    def conditional(self) -> bool:
        return bool(self.conditions) or bool(self.assumptions)


def and_conditions(a: Conditions, b: Conditions) -> Conditions:
    """The conjunction of two DNF conditions. ``()`` is *true*; the result stays in DNF."""
    if not a:
        return b
    if not b:
        return a
    out: list[tuple[ResidualCondition, ...]] = []
    for left in a:
        for right in b:
            merged = left + tuple(c for c in right if c not in left)
            if merged not in out:
                out.append(merged)
            if len(out) >= MAX_DISJUNCTS:
                return tuple(out)
    return tuple(out)
