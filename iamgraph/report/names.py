"""Names a reader recognises, for the nodes and resources of answers.

- Identity Center users and groups are graph nodes keyed by their identity-store ids
  (``identitycenter:d-123:group/16d4...``); people know them by user name and display name.
- Statements that decided an answer (``StatementRef``) name their policy by the engine's id: a managed
  policy's ARN, ``OWNER:inline/NAME``, ``ROLE:trust``, a resource's ARN for its resource policy, an SCP's ARN;
  ``statement_text`` says which policy that is in words, and which statement (its Sid, else its index).
- Some questions are asked about a stand-in resource (the separation-of-duties rules ask "can it delete a
  bucket of this account" about ``arn:aws:s3:::iamgraph-sod``): the stand-in's name is ours, not the
  customer's, so it is shown as what it stands for ("any s3 bucket").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iamgraph.eval.types import PolicyType, StatementRef
from iamgraph.model.arn import try_parse

# Stand-in resource names used by the questions of iamgraph/data/sod-rules.yaml and the check gate.
_STAND_INS = ("iamgraph-sod", "iamgraph-check-probe")


def identity_center_names(snapshot: Any) -> dict[str, str]:
    """Graph node id -> "Identity Center user alice" / "Identity Center group Engineers"."""
    ic = getattr(snapshot, "identity_center", None)
    if ic is None:
        return {}
    store = ic.identity_store_id
    out = {f"identitycenter:{store}:user/{u.user_id}": f"Identity Center user {u.user_name}" for u in ic.users}
    out.update({f"identitycenter:{store}:group/{g.group_id}": f"Identity Center group {g.display_name}"
                for g in ic.groups})
    return out


def is_stand_in(arn: str) -> bool:
    return any(s in arn for s in _STAND_INS)


def resource_text(arn: str) -> str:
    """A resource ARN as it is shown: the part after the account, or what a stand-in stands for."""
    if is_stand_in(arn):
        p = try_parse(arn)
        if p is None:
            return "any resource"
        kind = p.resource_type or ("bucket" if p.service == "s3" else "resource")
        where = f" of account {p.account}" if p.account else ""
        return f"any {p.service} {kind}{where}"
    return arn.split(":", 5)[-1] if arn.startswith("arn:") and arn.count(":") >= 5 else arn


def policy_names(snapshot: Any) -> dict[str, str]:
    """Engine policy id -> a reader's name, for the policies whose id says nothing (SCPs and RCPs by ARN)."""
    org = getattr(snapshot, "organization", None)
    out: dict[str, str] = {}
    for p in getattr(org, "policies", None) or ():
        kind = "SCP" if p.type == "SERVICE_CONTROL_POLICY" else "RCP"
        for key in (p.arn, p.id):
            if key:
                out[key] = f'{kind} "{p.name}" ({p.id})'
    return out


def policy_text(policy_id: str, policy_type: PolicyType, names: Mapping[str, str] | None = None) -> str:
    """Which policy an engine policy id is, in words (``inline policy "jump" of user/alice``)."""
    if names and policy_id in names:
        return names[policy_id]
    if ":inline/" in policy_id:
        owner, _, name = policy_id.rpartition(":inline/")
        return f'inline policy "{name}" of {resource_text(owner)}'
    if policy_id.endswith(":trust"):
        return f"trust policy of {resource_text(policy_id.removesuffix(':trust'))}"
    if policy_type is PolicyType.RESOURCE:
        return f"resource policy of {policy_id}"
    if policy_type in (PolicyType.SCP, PolicyType.RCP):
        return f"{policy_type.value.upper()} {policy_id}"
    if policy_type is PolicyType.PERMISSION_BOUNDARY:
        return f"permissions boundary {policy_id}"
    return policy_id


def statement_text(ref: StatementRef, names: Mapping[str, str] | None = None) -> str:
    """One deciding statement: its effect, its policy and the statement (Sid, else its index in Statement)."""
    which = f'Sid "{ref.sid}"' if ref.sid else f"Statement[{ref.statement_index}]"
    return f"{ref.effect} {policy_text(ref.policy_id, ref.policy_type, names)}, {which}"
