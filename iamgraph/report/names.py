"""Names a reader recognises, for the nodes and resources of answers.

- Identity Center users and groups are graph nodes keyed by their identity-store ids
  (``identitycenter:d-123:group/16d4...``); people know them by user name and display name.
- Some questions are asked about a stand-in resource (the separation-of-duties rules ask "can it delete a
  bucket of this account" about ``arn:aws:s3:::iamgraph-sod``): the stand-in's name is ours, not the
  customer's, so it is shown as what it stands for ("any s3 bucket").
"""

from __future__ import annotations

from typing import Any

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
