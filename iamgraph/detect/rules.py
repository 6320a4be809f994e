"""The deviation rules: calls in the detection window compared with each principal's baseline.

Each rule is a function over the window's events; alerts are grouped so one deviation is one alert (three
calls in a new region are one ``new-region`` alert listing three event ids).
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from iamgraph.catalog import AccessLevel, get_catalog
from iamgraph.detect.baseline import Baselines, call_key
from iamgraph.detect.config import DetectConfig
from iamgraph.detect.types import Alert, CallEvent, Fact, PrincipalBaseline, RuleId, Severity

# Calls that switch off or weaken logging, detection, key protection or guardrails. They alert whatever the
# baseline says: an attacker's first moves are to blind the defenders (MITRE ATT&CK T1562 "Impair Defenses").
# CloudTrail: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/best-practices-security.html
# GuardDuty trusted IP lists and filters suppress findings:
# https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_upload-lists.html
# KMS: disabling or scheduling deletion makes data undecryptable:
# https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html
SENSITIVE_ACTIONS: dict[str, Severity] = {
    "cloudtrail:StopLogging": Severity.CRITICAL,
    "cloudtrail:DeleteTrail": Severity.CRITICAL,
    "cloudtrail:UpdateTrail": Severity.HIGH,
    "cloudtrail:PutEventSelectors": Severity.HIGH,
    "cloudtrail:DeleteEventDataStore": Severity.CRITICAL,
    "guardduty:DeleteDetector": Severity.CRITICAL,
    "guardduty:UpdateDetector": Severity.HIGH,
    "guardduty:DisassociateFromAdministratorAccount": Severity.HIGH,
    "guardduty:DeleteMembers": Severity.HIGH,
    "guardduty:CreateIPSet": Severity.HIGH,
    "guardduty:UpdateIPSet": Severity.HIGH,
    "guardduty:CreateFilter": Severity.MEDIUM,
    "config:StopConfigurationRecorder": Severity.CRITICAL,
    "config:DeleteConfigurationRecorder": Severity.CRITICAL,
    "config:DeleteDeliveryChannel": Severity.HIGH,
    "config:DeleteConfigRule": Severity.MEDIUM,
    "securityhub:DisableSecurityHub": Severity.CRITICAL,
    "securityhub:BatchDisableStandards": Severity.HIGH,
    "kms:PutKeyPolicy": Severity.HIGH,
    "kms:ScheduleKeyDeletion": Severity.CRITICAL,
    "kms:DisableKey": Severity.HIGH,
    "kms:DisableKeyRotation": Severity.MEDIUM,
    "organizations:LeaveOrganization": Severity.CRITICAL,
    "organizations:DetachPolicy": Severity.HIGH,
    "organizations:DeletePolicy": Severity.HIGH,
    "organizations:DisablePolicyType": Severity.HIGH,
    "s3:PutBucketPolicy": Severity.HIGH,
    "s3:DeleteBucketPolicy": Severity.MEDIUM,
    "s3:PutBucketPublicAccessBlock": Severity.HIGH,
    "s3:PutAccountPublicAccessBlock": Severity.HIGH,
    "s3:PutBucketAcl": Severity.MEDIUM,
    "iam:DeactivateMFADevice": Severity.HIGH,
    "iam:DeleteAccountPasswordPolicy": Severity.MEDIUM,
}

# Services where a principal's first-ever write is high severity, even for actions not in the list above.
SENSITIVE_SERVICES = frozenset(
    {
        "iam",
        "organizations",
        "cloudtrail",
        "kms",
        "guardduty",
        "config",
        "securityhub",
        "sso",
        "identitystore",
        "access-analyzer",
        "account",
        "sts",
    }
)


_MAX_CARRIED = 10_000


def alert_id(rule: RuleId, principal: str, subject: str, first_event: str) -> str:
    """Stable over re-runs on the same logs: the same deviation always gets the same id."""
    raw = "\x1f".join((rule.value, principal, subject, first_event))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _fact(f: Fact | None) -> dict[str, object] | None:
    if f is None:
        return None
    return {
        "first_seen": _iso(f.first_seen),
        "last_seen": _iso(f.last_seen),
        "count": f.count,
    }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def _summary(b: PrincipalBaseline) -> dict[str, object]:
    """Baseline facts every alert carries: what 'normal' was for this principal."""
    return {
        "events": b.events,
        "actions": len(b.actions),
        "regions": sorted(b.regions) if b.regions_known else None,
        "source_accounts": sorted(b.source_accounts),
        "recipient_accounts": sorted(b.recipient_accounts),
        "source_ips": len(b.source_ips) if b.ips_known else None,
        "services": sorted(b.services),
    }


@dataclass(slots=True)
class DetectionResult:
    alerts: list[Alert] = field(default_factory=list)
    events: int = 0
    """Events in the detection window."""
    no_baseline: dict[str, int] = field(default_factory=dict)
    """Principals with calls in the window and none in the baseline window (event counts). Their calls are
    only checked by the baseline-free rules (sensitive actions, denied bursts): everything would be 'new'."""
    unknown_regions: set[str] = field(default_factory=set)
    """Principals whose baseline has no region data (usage store only): ``new-region`` was not evaluated."""


class Detector:
    def __init__(self, config: DetectConfig | None = None) -> None:
        self.config = config or DetectConfig()
        cat = get_catalog()
        self._cat = cat
        self._sensitive = dict(SENSITIVE_ACTIONS)
        for pattern in self.config.extra_sensitive_actions:
            for action in cat.expand(pattern) or {pattern}:
                self._sensitive.setdefault(action, Severity.HIGH)
        self._sensitive_lower = {k.lower(): v for k, v in self._sensitive.items()}

    def _ignored(self, principal: str) -> bool:
        return any(fnmatch.fnmatchcase(principal, p) for p in self.config.ignore_principals)

    def detect(
        self, events: Iterable[CallEvent], baselines: Baselines, *, earlier_denied: Iterable[CallEvent] = ()
    ) -> DetectionResult:
        """Alerts for ``events``.

        ``earlier_denied``: refusals already checked (a previous poll) that may start a burst continuing in
        ``events``. They count for bursts only, and a burst keeps the id of its first event, so one already
        delivered is not sent again.
        """
        # The same record can arrive twice (an organization trail and an account trail both logging it, or a
        # file copied twice): one eventID is one call.
        unique: dict[str, CallEvent] = {}
        for e in events:
            if not self._ignored(e.principal):
                unique.setdefault(e.event_id, e)
        evs = sorted(unique.values(), key=lambda e: (e.time, e.event_id))
        result = DetectionResult(events=len(evs))
        alerts: list[Alert] = []
        sensitive_events: set[str] = set()
        alerts += self._sensitive_actions(evs, baselines, sensitive_events)
        alerts += self._new_actions(evs, baselines, result, sensitive_events)
        alerts += self._new_places(evs, baselines, result)
        seen_ids = {e.event_id for e in evs}
        carried = [e for e in earlier_denied if e.event_id not in seen_ids and not self._ignored(e.principal)]
        alerts += self._bursts(sorted([*carried, *evs], key=lambda e: (e.time, e.event_id)), baselines)
        floor = self.config.min_severity.rank
        seen: set[str] = set()
        for a in sorted(alerts, key=lambda a: (a.time, a.rule.value, a.id)):
            if a.severity.rank >= floor and a.id not in seen:
                seen.add(a.id)
                result.alerts.append(a)
        return result

    # ------------------------------------------------------------------ rules

    def _sensitive_actions(
        self, evs: Sequence[CallEvent], baselines: Baselines, hit: set[str]
    ) -> list[Alert]:
        out = []
        for e in evs:
            if not e.mutating:
                continue
            for action in e.actions:
                sev = self._sensitive_lower.get(action.lower())
                if sev is None:
                    continue
                hit.add(e.event_id)
                b = baselines.get(e.principal)
                # A refused attempt is worth knowing, but nothing was switched off.
                severity = Severity.MEDIUM if e.denied and sev.rank > Severity.MEDIUM.rank else sev
                out.append(
                    self._alert(
                        RuleId.SENSITIVE_ACTION,
                        severity,
                        f"{action} by {_short(e.principal)}",
                        [e],
                        action,
                        subject=action,
                        evidence={
                            "outcome": "denied" if e.denied else "allowed",
                            "error_code": e.error_code,
                            "baseline_action": _fact(b.actions.get(action)) if b else None,
                            "baseline": _summary(b) if b else None,
                        },
                    )
                )
        return out

    def _new_actions(
        self, evs: Sequence[CallEvent], baselines: Baselines, result: DetectionResult, sensitive: set[str]
    ) -> list[Alert]:
        groups: dict[tuple[str, str], list[CallEvent]] = defaultdict(list)
        for e in evs:
            if not e.mutating or e.event_id in sensitive:
                continue
            b = baselines.get(e.principal)
            if b is None:
                result.no_baseline[e.principal] = result.no_baseline.get(e.principal, 0) + 1
                continue
            for key in call_key(e):
                if key not in b.actions:
                    groups[(e.principal, key)].append(e)
        out = []
        for (principal, action), group in groups.items():
            b = baselines.get(principal)
            assert b is not None
            service = action.split(":", 1)[0]
            level = self._cat.access_level(action)
            allowed = [e for e in group if not e.denied]
            if not allowed:
                severity = Severity.LOW
            elif level is AccessLevel.PERMISSIONS_MANAGEMENT or service in SENSITIVE_SERVICES:
                severity = Severity.HIGH
            else:
                severity = Severity.MEDIUM
            out.append(
                self._alert(
                    RuleId.NEW_ACTION,
                    severity,
                    f"first use of {action} by {_short(principal)}",
                    group,
                    action,
                    subject=action,
                    evidence={
                        "access_level": level.value if level else None,
                        "calls": len(group),
                        "denied": len(group) - len(allowed),
                        "baseline_service": _fact(b.services.get(service)),
                        "baseline": _summary(b),
                    },
                )
            )
        return out

    def _new_places(
        self, evs: Sequence[CallEvent], baselines: Baselines, result: DetectionResult
    ) -> list[Alert]:
        regions: dict[tuple[str, str], list[CallEvent]] = defaultdict(list)
        accounts: dict[tuple[str, str, str], list[CallEvent]] = defaultdict(list)
        for e in evs:
            b = baselines.get(e.principal)
            if b is None:
                continue
            if e.region:
                if not b.regions_known:
                    result.unknown_regions.add(e.principal)
                elif e.region not in b.regions:
                    regions[(e.principal, e.region)].append(e)
            if e.source_account and b.source_accounts and e.source_account not in b.source_accounts:
                accounts[(e.principal, "source", e.source_account)].append(e)
            if e.recipient_account and e.recipient_account not in b.recipient_accounts:
                accounts[(e.principal, "recipient", e.recipient_account)].append(e)
        out = []
        for (principal, region), group in regions.items():
            b = baselines.get(principal)
            assert b is not None
            severity = Severity.HIGH if any(e.mutating and not e.denied for e in group) else Severity.MEDIUM
            out.append(
                self._alert(
                    RuleId.NEW_REGION,
                    severity,
                    f"{_short(principal)} called from new region {region}",
                    group,
                    _what(group),
                    subject=region,
                    evidence={
                        "new_region": region,
                        "calls": len(group),
                        "mutating": _n_mut(group),
                        "actions": _actions(group),
                        "baseline": _summary(b),
                    },
                )
            )
        for (principal, side, account), group in accounts.items():
            b = baselines.get(principal)
            assert b is not None
            severity = Severity.HIGH if any(e.mutating and not e.denied for e in group) else Severity.MEDIUM
            verb = "from" if side == "source" else "into"
            out.append(
                self._alert(
                    RuleId.NEW_ACCOUNT,
                    severity,
                    f"{_short(principal)} called {verb} new account {account}",
                    group,
                    _what(group),
                    subject=f"{side}:{account}",
                    evidence={
                        f"new_{side}_account": account,
                        "calls": len(group),
                        "mutating": _n_mut(group),
                        "actions": _actions(group),
                        "baseline": _summary(b),
                    },
                )
            )
        return out

    def _bursts(self, evs: Sequence[CallEvent], baselines: Baselines) -> list[Alert]:
        threshold, window = self.config.burst_threshold, self.config.burst_window
        denied: dict[str, list[CallEvent]] = defaultdict(list)
        for e in evs:
            if e.denied:
                denied[e.principal].append(e)
        out = []
        for principal, es in denied.items():
            i = 0
            while i + threshold <= len(es):
                if es[i + threshold - 1].time - es[i].time > window:
                    i += 1
                    continue
                # A burst: extend it while the next refusal comes within the window of the previous one.
                j = i + threshold
                while j < len(es) and es[j].time - es[j - 1].time <= window:
                    j += 1
                group = es[i:j]
                b = baselines.get(principal)
                out.append(
                    self._alert(
                        RuleId.ACCESS_DENIED_BURST,
                        Severity.MEDIUM,
                        f"{len(group)} refused calls by {_short(principal)} in {_span(group)}",
                        group,
                        _what(group),
                        subject="burst",
                        evidence={
                            "calls": len(group),
                            "threshold": threshold,
                            "window_seconds": int(window.total_seconds()),
                            "error_codes": sorted({e.error_code or "" for e in group}),
                            "actions": _actions(group),
                            "baseline": _summary(b) if b else None,
                        },
                    )
                )
                i = j
        return out

    def open_bursts(self, denied: Iterable[CallEvent]) -> list[CallEvent]:
        """Per principal, the trailing run of refusals each within the burst window of the next: what a later
        batch of events could extend into a burst. Capped so a refusal storm cannot grow it without bound."""
        window = self.config.burst_window
        by: dict[str, list[CallEvent]] = defaultdict(list)
        for e in sorted((e for e in denied if e.denied), key=lambda e: (e.time, e.event_id)):
            by[e.principal].append(e)
        out: list[CallEvent] = []
        for es in by.values():
            i = len(es) - 1
            while i > 0 and es[i].time - es[i - 1].time <= window:
                i -= 1
            out.extend(es[max(i, len(es) - _MAX_CARRIED) :])
        return out

    # ------------------------------------------------------------------ helpers

    def _alert(
        self,
        rule: RuleId,
        severity: Severity,
        title: str,
        group: Sequence[CallEvent],
        action: str | None,
        *,
        subject: str,
        evidence: dict[str, object],
    ) -> Alert:
        first = group[0]
        return Alert(
            id=alert_id(rule, first.principal, subject, first.event_id),
            rule=rule,
            severity=severity,
            title=title,
            principal=first.principal,
            identity_type=first.identity_type,
            action=action,
            time=first.time,
            last_time=group[-1].time,
            region=first.region,
            source_ip=first.source_ip,
            account_id=first.recipient_account,
            event_ids=tuple(e.event_id for e in group),
            evidence={
                **evidence,
                "event_source": first.event_source,
                "event_name": first.event_name,
                "source_ips": sorted({e.source_ip for e in group if e.source_ip}),
            },
        )


def _short(principal: str) -> str:
    return principal.rsplit(":", 1)[-1] if principal.startswith("arn:") else principal


def _actions(group: Sequence[CallEvent]) -> list[str]:
    return sorted({k for e in group for k in call_key(e)})


def _what(group: Sequence[CallEvent]) -> str:
    acts = _actions(group)
    return acts[0] if len(acts) == 1 else ", ".join(acts[:5]) + (" ..." if len(acts) > 5 else "")


def _n_mut(group: Sequence[CallEvent]) -> int:
    return sum(1 for e in group if e.mutating)


def _span(group: Sequence[CallEvent]) -> str:
    secs = int((group[-1].time - group[0].time) / timedelta(seconds=1))
    return f"{secs // 60}m{secs % 60:02d}s"
