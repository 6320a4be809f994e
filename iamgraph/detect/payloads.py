"""Alert → the bytes each destination expects: Slack, Microsoft Teams, RFC 5424 syslog, AWS Security Hub ASFF.

Pure functions (no I/O), so each format is tested by parsing it back.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from iamgraph.detect.types import Alert, RuleId, Severity

_EMOJI_FREE_LABEL = {
    Severity.CRITICAL: "CRITICAL",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW",
    Severity.INFORMATIONAL: "INFO",
}
_COLOR = {
    Severity.CRITICAL: "8B0000",
    Severity.HIGH: "D93F0B",
    Severity.MEDIUM: "FBCA04",
    Severity.LOW: "0E8A16",
    Severity.INFORMATIONAL: "C5DEF5",
}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def facts(alert: Alert) -> list[tuple[str, str]]:
    """The (label, value) pairs a chat message shows."""
    rows = [
        ("Rule", alert.rule.value),
        ("Severity", alert.severity.value),
        ("Principal", alert.principal),
        ("Action", alert.action or "-"),
        ("Time", _iso(alert.time)),
        ("Account", alert.account_id or "-"),
        ("Region", alert.region or "-"),
        ("Source IP", alert.source_ip or "-"),
        (
            "Events",
            ", ".join(alert.event_ids[:5])
            + (f" (+{len(alert.event_ids) - 5})" if len(alert.event_ids) > 5 else ""),
        ),
        ("Alert id", alert.id),
    ]
    return rows


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook message: ``text`` is the notification fallback, ``blocks`` the rich layout.

    https://api.slack.com/messaging/webhooks ; a section's ``fields`` holds at most 10 items.
    """
    label = _EMOJI_FREE_LABEL[alert.severity]
    text = f"[{label}] iamgraph: {alert.title}"
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{_slack_escape(v)}"} for k, v in facts(alert)[:10]]
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
            {"type": "section", "fields": fields},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _slack_escape(_baseline_line(alert))}],
            },
        ],
    }


def _slack_escape(s: str) -> str:
    # Slack's mrkdwn needs only these three escaped. https://api.slack.com/reference/surfaces/formatting
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _baseline_line(alert: Alert) -> str:
    b = alert.evidence.get("baseline")
    if not isinstance(b, dict):
        return "No baseline for this principal in the baseline window."
    regions = b.get("regions")
    return (
        f"Baseline: {b.get('events')} calls, {b.get('actions')} actions, regions "
        f"{', '.join(regions) if isinstance(regions, list) else 'unknown'}"
    )


def teams_message_card(alert: Alert) -> dict[str, Any]:
    """Office 365 connector card (Teams incoming webhook).

    https://learn.microsoft.com/en-us/outlook/actionable-messages/message-card-reference
    """
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": f"iamgraph: {alert.title}"[:200],
        "themeColor": _COLOR[alert.severity],
        "title": f"[{_EMOJI_FREE_LABEL[alert.severity]}] {alert.title}",
        "sections": [
            {
                "activityTitle": alert.rule.value,
                "facts": [{"name": k, "value": v} for k, v in facts(alert)],
                "text": _baseline_line(alert),
            }
        ],
    }


def teams_adaptive_card(alert: Alert) -> dict[str, Any]:
    """A Teams message carrying an Adaptive Card (Workflows "When a Teams webhook request is received").

    https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
    """
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"[{_EMOJI_FREE_LABEL[alert.severity]}] {alert.title}",
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(alert)]},
            {"type": "TextBlock", "text": _baseline_line(alert), "wrap": True, "isSubtle": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


# ---------------------------------------------------------------- syslog (RFC 5424)

# RFC 5424 section 6.2.1 severities.
SYSLOG_SEVERITY = {
    Severity.CRITICAL: 2,
    Severity.HIGH: 3,
    Severity.MEDIUM: 4,
    Severity.LOW: 5,
    Severity.INFORMATIONAL: 6,
}
# 32473 is the Private Enterprise Number reserved for documentation and examples (RFC 5612); an SD-ID with
# an "@" is a private one, so it cannot clash with IANA-registered ids.
SD_ID = "iamgraph@32473"
_BOM = b"\xef\xbb\xbf"


def _sd_escape(value: str) -> str:
    # RFC 5424 section 6.3.3: '"', '\' and ']' are escaped with a backslash inside PARAM-VALUE.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printusascii(value: str, limit: int) -> str:
    # HOSTNAME, APP-NAME, PROCID and MSGID are PRINTUSASCII (33..126), with a length limit; "-" is NILVALUE.
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def syslog_message(
    alert: Alert,
    *,
    facility: int = 10,
    app_name: str = "iamgraph",
    hostname: str | None = None,
    procid: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """One RFC 5424 message: header, one SD-ELEMENT with the alert's key fields, and the alert as JSON (UTF-8
    with a BOM, as section 6.4 asks for UTF-8 MSG)."""
    pri = facility * 8 + SYSLOG_SEVERITY[alert.severity]
    ts = _iso(now or datetime.now(UTC))
    host = _printusascii(hostname if hostname is not None else socket.gethostname(), 255)
    header = (
        f"<{pri}>1 {ts} {host} {_printusascii(app_name, 48)} "
        f"{_printusascii(procid if procid is not None else str(os.getpid()), 128)} "
        f"{_printusascii(alert.rule.value, 32)}"
    )
    params = {
        "id": alert.id,
        "rule": alert.rule.value,
        "severity": alert.severity.value,
        "principal": alert.principal,
        "action": alert.action or "",
        "eventTime": _iso(alert.time),
        "region": alert.region or "",
        "sourceIp": alert.source_ip or "",
        "account": alert.account_id or "",
    }
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items()) + "]"
    msg = json.dumps(alert.to_json(), separators=(",", ":"), sort_keys=True).encode()
    return f"{header} {sd} ".encode() + _BOM + msg


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1 octet-counting framing for syslog over TCP: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode() + b" " + message


# ---------------------------------------------------------------- AWS Security Hub (ASFF)

_ASFF_TYPES = {
    RuleId.SENSITIVE_ACTION: "TTPs/Defense Evasion",
    RuleId.NEW_ACTION: "Unusual Behaviors/User",
    RuleId.NEW_REGION: "Unusual Behaviors/User",
    RuleId.NEW_ACCOUNT: "Unusual Behaviors/User",
    RuleId.ACCESS_DENIED_BURST: "TTPs/Discovery",
}


def asff_finding(
    alert: Alert,
    *,
    product_account: str | None = None,
    region: str = "us-east-1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """An AWS Security Finding Format finding (BatchImportFindings input), with every required attribute.

    https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html
    A custom integration's ProductArn is ``arn:aws:securityhub:<region>:<account>:product/<account>/default``.
    https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-custom-providers.html
    """
    account = alert.account_id if alert.account_id and alert.account_id.isdigit() else product_account
    if not account:
        raise ValueError("ASFF needs an AwsAccountId: the alert names none and no product account was given")
    prod = product_account or account
    partition = (
        "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    )
    stamp = _iso(now or datetime.now(UTC))
    principal = alert.principal
    if principal.startswith("arn:"):
        resource = {
            "Type": "AwsIamRole"
            if ":role/" in principal
            else "AwsIamUser"
            if ":user/" in principal
            else "Other",
            "Id": principal,
            "Partition": partition,
        }
    else:
        resource = {"Type": "Other", "Id": principal, "Partition": partition}
    if alert.region:
        resource["Region"] = alert.region
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"iamgraph/detect/{alert.id}",
        "ProductArn": f"arn:{partition}:securityhub:{region}:{prod}:product/{prod}/default",
        "GeneratorId": f"iamgraph-detect/{alert.rule.value}",
        "AwsAccountId": account,
        "Types": [_ASFF_TYPES[alert.rule]],
        "FirstObservedAt": _iso(alert.time),
        "LastObservedAt": _iso(alert.last_time),
        "CreatedAt": _iso(alert.time),
        "UpdatedAt": stamp,
        "Severity": {"Label": alert.severity.value, "Original": alert.severity.value},
        "Title": alert.title[:256],
        "Description": _asff_description(alert)[:1024],
        "Resources": [resource],
        "ProductFields": {
            "iamgraph/rule": alert.rule.value,
            "iamgraph/action": alert.action or "",
            "iamgraph/sourceIp": alert.source_ip or "",
            "iamgraph/eventIds": ",".join(alert.event_ids)[:1024],
        },
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }


def _asff_description(alert: Alert) -> str:
    return (
        f"{alert.title}. Rule {alert.rule.value}; principal {alert.principal}; action {alert.action or '-'}; "
        f"first event {alert.event_ids[0] if alert.event_ids else '-'} at {_iso(alert.time)}; "
        f"{len(alert.event_ids)} event(s). {_baseline_line(alert)}"
    )
