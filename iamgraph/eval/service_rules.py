"""What AWS services refuse whatever the policies say: reserved names and AWS-owned entities.

No policy can grant these requests. A customer's principal cannot rewrite an AWS managed policy,
change a role that IAM Identity Center or another service owns, or take an alias AWS reserves.
Graph edges resting on such a move would be escalations AWS refuses, so the engine applies this
table after the policies (in strict and discovery mode alike): a request a rule covers is
``ImplicitlyDenied`` with ``Decision.refused_by`` naming the rule, or keeps its explicit deny.

Each rule cites the AWS page that states it (docs/engine.md, "Service rules", lists them). Only
actions the page names are listed: an action left out is evaluated by the policies alone, which
can over-report access but never hides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from iamgraph.eval.principals import RequestPrincipal
from iamgraph.eval.types import ServiceRuleRef


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRule:
    """One refusal: these actions on resources matching ``resource`` fail for every caller but
    the sessions of roles whose ARN matches ``spared_roles`` (the AWS service's own role)."""

    rule_id: str
    actions: frozenset[str]
    """Lower-case ``service:action`` names."""
    resource: str
    """A glob over the resource ARN (``*`` spans any characters, ``/`` and ``:`` included)."""
    spared_roles: str | None
    """A glob over the caller's role ARN (with its path) that the rule does not apply to."""
    reason: str
    doc: str
    aws_managed_only: bool = False
    """Applies only to a resource AWS manages (an AWS managed KMS key), which its ARN does not show:
    the caller says so (``PolicySet.aws_managed_resource``; ``SnapshotEvaluator`` from the key's
    ``KeyManager``)."""

    @property
    def ref(self) -> ServiceRuleRef:
        return ServiceRuleRef(rule_id=self.rule_id, reason=self.reason, doc=self.doc)


def _actions(*names: str) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


SERVICE_RULES: tuple[ServiceRule, ...] = (
    ServiceRule(
        rule_id="aws-managed-policy-immutable",
        # "You cannot change the permissions defined in AWS managed policies" -- AWS creates,
        # versions and deletes them; a customer can only attach them as they are.
        actions=_actions(
            "iam:CreatePolicy",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:DeletePolicy",
        ),
        resource="arn:*:iam::aws:policy/*",
        spared_roles=None,
        reason="AWS managed policies are created, versioned and deleted by AWS only",
        doc="https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html#aws-managed-policies",
    ),
    ServiceRule(
        rule_id="identity-center-reserved-role",
        # IAM Identity Center manages the AWSReservedSSO_* roles it provisions under this path; its
        # service-linked role AWSServiceRoleForSSO performs these calls on them, and IAM refuses them
        # to anyone else ("this role is only modifiable by AWS"). The list is the service-linked
        # role's, minus the reads (GetRole, ListRolePolicies) and CreateRole.
        actions=_actions(
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRolePermissionsBoundary",
            "iam:UpdateAssumeRolePolicy",
            "iam:UpdateRole",
            "iam:UpdateRoleDescription",
            "iam:DeleteRole",
        ),
        resource="arn:*:iam::*:role/aws-reserved/sso.amazonaws.com/*",
        spared_roles="arn:*:iam::*:role/aws-service-role/sso.amazonaws.com/*",
        reason="roles under /aws-reserved/sso.amazonaws.com/ are modifiable only by IAM Identity Center",
        doc="https://docs.aws.amazon.com/singlesignon/latest/userguide/using-service-linked-roles.html",
    ),
    ServiceRule(
        rule_id="service-linked-role-protected",
        # "service-linked roles are protected AWS resources. Only the service that depends on the
        # service-linked role can modify or delete the role" (UnmodifiableEntity). The description
        # stays editable by anyone allowed ("You can edit the description of any role").
        actions=_actions(
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRolePermissionsBoundary",
            "iam:UpdateAssumeRolePolicy",
            "iam:DeleteRole",
        ),
        resource="arn:*:iam::*:role/aws-service-role/*",
        spared_roles="arn:*:iam::*:role/aws-service-role/*",
        reason="service-linked roles are modifiable only by the service they are linked to",
        doc="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_update-service-linked-role.html",
    ),
    ServiceRule(
        rule_id="kms-reserved-alias",
        # "The alias name for a customer managed key cannot begin with alias/aws/. The alias/aws/
        # prefix is reserved for AWS managed key" and aliases of AWS managed keys cannot be managed.
        actions=_actions("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"),
        resource="arn:*:kms:*:*:alias/aws/*",
        spared_roles=None,
        reason="KMS aliases beginning with alias/aws/ are reserved for AWS managed keys",
        doc="https://docs.aws.amazon.com/kms/latest/developerguide/alias-create.html",
    ),
    ServiceRule(
        rule_id="kms-aws-managed-key-immutable",
        # "You cannot edit any properties of AWS managed keys ... These keys are managed by the AWS
        # services that created them": key policy, description, tags, enabled state, rotation.
        actions=_actions(
            "kms:PutKeyPolicy",
            "kms:UpdateKeyDescription",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:EnableKey",
            "kms:DisableKey",
            "kms:EnableKeyRotation",
            "kms:DisableKeyRotation",
        ),
        resource="arn:*:kms:*:*:key/*",
        spared_roles=None,
        reason="the key policy and other properties of an AWS managed KMS key are managed by AWS only",
        doc="https://docs.aws.amazon.com/kms/latest/developerguide/editing-keys.html",
        aws_managed_only=True,
    ),
)

_BY_ACTION: dict[str, tuple[ServiceRule, ...]] = {}
for _rule in SERVICE_RULES:
    for _action in _rule.actions:
        _BY_ACTION[_action] = (*_BY_ACTION.get(_action, ()), _rule)


def may_refuse(action: str, resource: str) -> bool:
    """Whether some rule covers this action on this resource, whoever asks."""
    return any(fnmatchcase(resource, r.resource) for r in _BY_ACTION.get(action.lower(), ()))


def refusal(
    principal: RequestPrincipal, action_l: str, resource: str, aws_managed_resource: bool = False
) -> ServiceRule | None:
    """The rule that makes AWS refuse the request, or None."""
    for rule in _BY_ACTION.get(action_l, ()):
        if not fnmatchcase(resource, rule.resource) or (rule.aws_managed_only and not aws_managed_resource):
            continue
        role = principal.role_arn
        if rule.spared_roles is not None and role is not None and fnmatchcase(role, rule.spared_roles):
            continue
        return rule
    return None
