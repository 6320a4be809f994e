"""The edge-rule registry: every rule ``build_graph`` runs, in the order it runs them.

Order matters where one rule feeds another through the build context (``BuildContext``):

* ``AdminRule`` runs first. It fills ``ctx.definite_admins``, which ``ctx.admin_of`` and
  ``ctx.protected`` read in every later rule: a definite admin's per-target edges in its own account
  are replaced by the account admin node's edges. A rule run before it would see no admins and draw
  those per-target edges as well (more edges, same reach, many more engine calls); ``protected``
  would also cache an empty answer for the account.
* ``CreatePrincipalRule`` runs before ``AdminControlRule``: it fills ``ctx.creatable_admin`` (accounts
  where someone can create an admin principal), and ``AdminControlRule`` draws the admin node's
  edges for those accounts as well as for accounts with a definite admin.

The other rules read no state another rule writes; they are grouped by technique family, one file
per family. ``tests/graph/test_graph_edges.py`` checks both dependencies and that every ``EdgeRule``
subclass is listed here exactly once.
"""

from __future__ import annotations

from iamgraph.graph.rules.admin import AdminControlRule, AdminRule, CreatePrincipalRule
from iamgraph.graph.rules.assume import AssumeRoleRule, FederationRule
from iamgraph.graph.rules.base import EdgeRule
from iamgraph.graph.rules.compute_redeploy import LaunchTemplateRule, StackSetRule
from iamgraph.graph.rules.compute_takeover import TakeoverComputeRule
from iamgraph.graph.rules.iam import (
    CreateAccessKeyRule,
    GrantPermissionsRule,
    JoinGroupRule,
    LoginProfileRule,
    NewGroupRule,
    RemoveBoundaryRule,
    RemoveDenyRule,
    UpdateTrustRule,
)
from iamgraph.graph.rules.identity_center import IdentityCenterRule
from iamgraph.graph.rules.passrole import EcsTaskRoleOverrideRule, GlueJobRoleRule, PassRoleRule
from iamgraph.graph.rules.resources import ResourcePolicyTakeoverRule

RULES: tuple[type[EdgeRule], ...] = (
    # admin equivalence: first, see above
    AdminRule,  # writes ctx.definite_admins (read by admin_of/protected in every rule below)
    CreatePrincipalRule,  # writes ctx.creatable_admin (read by AdminControlRule)
    AdminControlRule,
    # assuming roles and federating into them
    AssumeRoleRule,
    FederationRule,
    # passing a role to new compute, or to existing compute in place of its own (passrole.py)
    PassRoleRule,
    EcsTaskRoleOverrideRule,
    GlueJobRoleRule,
    # making compute that runs with a role run the caller's code (compute_takeover.py, compute_redeploy.py)
    TakeoverComputeRule,
    LaunchTemplateRule,
    StackSetRule,
    # IAM calls on principals, groups and policies
    CreateAccessKeyRule,
    LoginProfileRule,
    UpdateTrustRule,
    GrantPermissionsRule,
    RemoveBoundaryRule,
    JoinGroupRule,
    RemoveDenyRule,
    NewGroupRule,
    # Identity Center sign-in, resource policies
    IdentityCenterRule,
    ResourcePolicyTakeoverRule,
)

__all__ = ["RULES", "EdgeRule"]
