"""The scoreboard of the demo organization: what the analyses answered, checked against what was planted.

``score`` is the one place that decides whether a planted finding was found (or a near miss rightly not
reported); ``iamgraph demo`` prints its checks and the tests assert on them. An analysis left out of
``Analyses`` (None) was not run: its checks are left out, not failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from iamgraph.demo.planted import PlantedItem, PlantedKind
from iamgraph.detect.types import Alert
from iamgraph.query import Conflict, Escalation, Exposure, SensitiveAccess
from iamgraph.query.sensitive import AccessKind
from iamgraph.recommend.recommender import ProposalStatus, Recommendation
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.unused import Finding


class CheckKind(StrEnum):
    PRIVESC = "privesc"
    PRIVESC_NEAR_MISS = "near miss (privesc)"
    EXPOSURE = "exposure"
    EXPOSURE_NEAR_MISS = "near miss (exposure)"
    SOD = "sod"
    SENSITIVE = "sensitive"
    UNUSED = "unused"
    RECOMMEND = "recommend"
    DEVIATION = "deviation"
    DETECT_NEAR_MISS = "near miss (detect)"
    CREDENTIALS = "credentials"

    @property
    def near_miss(self) -> bool:
        """A check that passes when nothing is reported."""
        return self.value.startswith("near miss")


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    kind: CheckKind
    item_id: str
    """The planted item's id (``normal-activity`` for the detect near miss, which is no single item)."""
    ok: bool
    """Found; for a near miss, not reported."""
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Analyses:
    """What each analysis answered on the demo organization; None for an analysis that was not run."""

    escalations: tuple[Escalation, ...] | None = None
    """``privesc(graph)``"""
    exposures: tuple[Exposure, ...] | None = None
    """``exposure(graph)``"""
    conflicts: tuple[Conflict, ...] | None = None
    """``sod(graph)``"""
    pii_access: tuple[SensitiveAccess, ...] | None = None
    """``sensitive(graph, "DataClassification=PII")``"""
    unused: tuple[Finding, ...] | None = None
    """The findings of the unused report for ``unused_principals(items)``."""
    recommendations: tuple[Recommendation, ...] | None = None
    """``recommend_all`` for ``recommend_principals(items)``."""
    alerts: tuple[Alert, ...] | None = None
    """Deviation alerts on the last day of activity against the days before it."""
    credentials: tuple[tuple[str, ...], ...] | None = None
    """``credential_rows(snapshot, now)``: (who, issue, severity, detail)."""


# Near misses the generator plants next to real findings: the same grants, blocked by a Deny, a boundary,
# an SCP, an iam:PassedToService condition, a resource constraint or an iam:PolicyARN condition; a public
# bucket policy under the data-perimeter RCP; a GitHub OIDC trust pinned by its sub (docs/demo-org.md).
PRIVESC_NEAR_MISSES = frozenset({
    "nearmiss.deny", "nearmiss.boundary", "nearmiss.passed-to-service", "nearmiss.resource-constraint", "nearmiss.scp",
    "nearmiss.detach-other-policy",
})
EXPOSURE_NEAR_MISSES = frozenset({"nearmiss.public-bucket-under-rcp", "nearmiss.github-oidc-with-sub"})

# The rule of iamgraph/data/sod-rules.yaml each planted separation-of-duties item is an instance of.
SOD_RULES = {
    "sod.create-user-and-attach-admin": "SOD-IAM-CREATE-VS-ADMIN",
    "sod.cloudtrail-and-log-deletion": "SOD-CLOUDTRAIL-MANAGE-VS-ERASE",
    "sod.kms-admin-and-decrypt": "SOD-KMS-ADMIN-VS-USE",
}

_UNUSED_KINDS = (PlantedKind.UNUSED_PERMISSIONS, PlantedKind.UNUSED_ROLE, PlantedKind.UNUSED_CREDENTIALS)
_RECOMMEND_KINDS = (PlantedKind.UNUSED_PERMISSIONS, PlantedKind.OVER_BROAD)


def unused_principals(items: Sequence[PlantedItem]) -> list[str]:
    """The principals planted with unused access: whom to ask the unused report about."""
    return sorted({p for i in items if i.kind in _UNUSED_KINDS for p in i.principals})


def recommend_principals(items: Sequence[PlantedItem]) -> list[str]:
    """The principals planted with unused or over-broad grants: whom to propose trimmed policies for."""
    return sorted({p for i in items if i.kind in _RECOMMEND_KINDS for p in i.principals})


def score(items: Sequence[PlantedItem], snapshot: Snapshot, analyses: Analyses) -> tuple[Check, ...]:
    """One check per planted item an analysis that was run should find (or not report), in the order of
    ``Analyses``' fields, items in planted order."""
    out: list[Check] = []
    for field, scorer in _SCORERS:
        answer = getattr(analyses, field)
        if answer is not None:
            out += scorer(items, answer, snapshot)
    return tuple(out)


def _escalations(items: Sequence[PlantedItem], escalations: tuple[Escalation, ...], _: Snapshot) -> list[Check]:
    escalating = {e.principal for e in escalations}
    out = []
    for item in items:
        reported = any(p in escalating for p in item.principals)
        if item.kind is PlantedKind.PRIVILEGE_ESCALATION:
            out.append(Check(kind=CheckKind.PRIVESC, item_id=item.id, ok=reported, note=item.technique))
        elif item.id in PRIVESC_NEAR_MISSES:
            out.append(Check(kind=CheckKind.PRIVESC_NEAR_MISS, item_id=item.id, ok=not reported,
                             note="must not be reported"))
    return out


def _exposures(items: Sequence[PlantedItem], exposures: tuple[Exposure, ...], _: Snapshot) -> list[Check]:
    found = {(x.principal, x.resource) for x in exposures}
    exposed = {x.resource for x in exposures}
    out = []
    for item in items:
        if item.kind in (PlantedKind.EXTERNAL_EXPOSURE, PlantedKind.EXTERNAL_ACCESS):
            ok = any((p, item.resources[0]) in found for p in item.principals)
            out.append(Check(kind=CheckKind.EXPOSURE, item_id=item.id, ok=ok, note=item.technique))
        elif item.id in EXPOSURE_NEAR_MISSES:
            out.append(Check(kind=CheckKind.EXPOSURE_NEAR_MISS, item_id=item.id,
                             ok=item.resources[0] not in exposed, note="must not be reported"))
    return out


def _conflicts(items: Sequence[PlantedItem], conflicts: tuple[Conflict, ...], _: Snapshot) -> list[Check]:
    # The conflict must be the rule the item plants, not any rule the principal happens to break.
    held = {(c.rule.id, c.principal) for c in conflicts}
    return [
        Check(kind=CheckKind.SOD, item_id=item.id, ok=(SOD_RULES.get(item.id), item.principals[0]) in held,
              note=item.technique)
        for item in items if item.kind is PlantedKind.SEPARATION_OF_DUTIES
    ]


def _pii_access(items: Sequence[PlantedItem], access: tuple[SensitiveAccess, ...], snapshot: Snapshot) -> list[Check]:
    out = []
    for item in items:
        if item.kind is not PlantedKind.SENSITIVE_DATA_ACCESS:
            continue
        readers = {a.access.principal for a in access if a.resource == item.resources[0] and a.kind is AccessKind.READ}
        # A group is not a principal: the finding is that every member of the group can read.
        members = _members(item.principals, snapshot)
        ok = bool(members) and members <= readers
        out.append(Check(kind=CheckKind.SENSITIVE, item_id=item.id, ok=ok,
                         note=f"{item.technique} ({len(members)} members)"))
    return out


def _members(principals: Sequence[str], snapshot: Snapshot) -> set[str]:
    """The users of each group ARN (in the group's account), or the principals themselves when none is a group."""
    groups = [p for p in principals if ":group/" in p]
    if not groups:
        return set(principals)
    return {
        u.arn for acct in snapshot.accounts for u in acct.users for g in groups
        if g.split(":")[4] == acct.account_id and g.rsplit("/", 1)[-1] in u.groups
    }


def _unused(items: Sequence[PlantedItem], findings: tuple[Finding, ...], _: Snapshot) -> list[Check]:
    with_findings = {f.principal_arn for f in findings}
    return [
        Check(kind=CheckKind.UNUSED, item_id=item.id, ok=any(p in with_findings for p in item.principals),
              note=item.technique)
        for item in items if item.kind in _UNUSED_KINDS
    ]


def _recommendations(items: Sequence[PlantedItem], recs: tuple[Recommendation, ...], _: Snapshot) -> list[Check]:
    proposals = {r.principal_arn: r.proposals for r in recs}
    out = []
    for item in items:
        if item.kind not in _RECOMMEND_KINDS:
            continue
        props = [p for a in item.principals for p in proposals.get(a, ())]
        emitted = [p for p in props if p.status is ProposalStatus.EMITTED and p.verification and p.verification.passed]
        removed = {a.lower() for p in emitted for a in p.removed_actions}
        wanted = [a.lower() for a in item.detail("unused_actions", [])]
        ok = bool(emitted) and all(a in removed for a in wanted)
        out.append(Check(kind=CheckKind.RECOMMEND, item_id=item.id, ok=ok,
                         note=f"{len(emitted)} verified proposal(s); removes {len(removed)} actions"))
    return out


def _alerts(items: Sequence[PlantedItem], alerts: tuple[Alert, ...], _: Snapshot) -> list[Check]:
    deviations = [i for i in items if i.kind is PlantedKind.DEVIATION]
    out = [
        Check(kind=CheckKind.DEVIATION, item_id=item.id, ok=any(a.principal in item.principals for a in alerts),
              note=item.technique)
        for item in deviations
    ]
    stray = [a for a in alerts if not any(a.principal in i.principals for i in deviations)]
    out.append(Check(kind=CheckKind.DETECT_NEAR_MISS, item_id="normal-activity", ok=not stray,
                     note=f"{len(stray)} alerts on ordinary calls"))
    return out


def _credentials(items: Sequence[PlantedItem], rows: tuple[tuple[str, ...], ...], _: Snapshot) -> list[Check]:
    out = []
    for item in items:
        if item.kind is not PlantedKind.CREDENTIAL_HYGIENE:
            continue
        if item.principals[0].endswith(":root"):
            who, issue = f"root ({item.account_id})", "MFA"
        else:
            who, issue = f"{item.principals[0].rsplit('/', 1)[-1]} ({item.account_id})", "old access key"
        ok = any(r[0] == who and issue in r[1] for r in rows)
        out.append(Check(kind=CheckKind.CREDENTIALS, item_id=item.id, ok=ok, note=item.technique))
    return out


# In the order of Analyses' fields (the order the demo runs the analyses in).
_SCORERS: tuple[tuple[str, Callable[[Sequence[PlantedItem], Any, Snapshot], list[Check]]], ...] = (
    ("escalations", _escalations),
    ("exposures", _exposures),
    ("conflicts", _conflicts),
    ("pii_access", _pii_access),
    ("unused", _unused),
    ("recommendations", _recommendations),
    ("alerts", _alerts),
    ("credentials", _credentials),
)
