"""High-risk actions a proposal keeps, flagged so a reviewer sees them by name.

Two sources, both data:

- the catalog's access level: every action the Service Authorization Reference classifies as
  ``Permissions management`` (it changes who can do what:
  https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html);
- a documented list of actions that are destructive or disable a safeguard although their level is ``Write``
  (``HIGH_RISK`` below, each with the AWS page that says why). Some are high-risk only on ``*``: passing or assuming
  any role at all.

A flagged action is never folded into a wildcard the trimmer makes (:func:`iamgraph.recommend.trim.trim_document`):
it stays listed by name, and the proposal lists it in ``flagged``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iamgraph.catalog import AccessLevel, get_catalog
from iamgraph.model.policy import parse_policy


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskRule:
    reason: str
    only_on_star: bool = False
    """High-risk only when the statement's resource is ``*`` (or a ``NotResource``)."""


# Lower-case action -> why. Keep each entry tied to the AWS page that says what the action can do.
HIGH_RISK: Mapping[str, RiskRule] = {
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
    "iam:passrole": RiskRule(reason="passes any role to a service (privilege escalation)", only_on_star=True),
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html
    "sts:assumerole": RiskRule(reason="assumes any role that trusts the account", only_on_star=True),
    # https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-closing.html
    "account:closeaccount": RiskRule(reason="closes the AWS account"),
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_leave-as-member.html
    "organizations:leaveorganization": RiskRule(reason="takes the account out of the organization and its SCPs"),
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-bypass
    "s3:bypassgovernanceretention": RiskRule(reason="overrides S3 Object Lock governance-mode retention"),
    # https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html ("destructive and potentially
    # dangerous": data encrypted under a deleted key cannot be decrypted)
    "kms:schedulekeydeletion": RiskRule(reason="schedules deletion of a KMS key (its data becomes unreadable)"),
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delete-trails-console.html
    "cloudtrail:stoplogging": RiskRule(reason="stops the audit trail"),
    "cloudtrail:deletetrail": RiskRule(reason="deletes the audit trail"),
    # https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_suspend-disable.html
    "guardduty:deletedetector": RiskRule(reason="disables GuardDuty and deletes its findings"),
    # https://docs.aws.amazon.com/aws-backup/latest/devguide/deleting-backups.html
    "backup:deleterecoverypoint": RiskRule(reason="deletes a backup"),
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html
    "iam:createaccesskey": RiskRule(reason="creates long-term credentials for a user"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskFlag:
    action: str
    reason: str
    """``Permissions management`` (the catalog's access level) and/or the documented reason."""


def is_high_risk(action: str) -> bool:
    """Flagged on some resource: never folded into a wildcard the trimmer makes."""
    return action.lower() in HIGH_RISK or get_catalog().access_level(action) is AccessLevel.PERMISSIONS_MANAGEMENT


def flag_actions(documents: Iterable[Mapping[str, Any]]) -> tuple[RiskFlag, ...]:
    """Every high-risk action the Allow statements of ``documents`` grant, once each, in action order."""
    cat = get_catalog()
    reasons: dict[str, list[str]] = {}
    for doc in documents:
        for st in parse_policy(dict(doc), source="<proposal>", principal=False).statements:
            if not st.is_allow:
                continue
            on_star = st.resource is None or "*" in st.resource
            for action in cat.statement_actions(st):
                why: list[str] = []
                if cat.access_level(action) is AccessLevel.PERMISSIONS_MANAGEMENT:
                    why.append(AccessLevel.PERMISSIONS_MANAGEMENT.value)
                rule = HIGH_RISK.get(action.lower())
                if rule is not None and (on_star or not rule.only_on_star):
                    why.append(rule.reason + (" (on *)" if rule.only_on_star else ""))
                if why:
                    seen = reasons.setdefault(action, [])
                    seen.extend(w for w in why if w not in seen)
    return tuple(RiskFlag(action=a, reason="; ".join(r)) for a, r in sorted(reasons.items()))
