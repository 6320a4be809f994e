"""Delivery: webhook to a local HTTP receiver, syslog over UDP and TCP to local sockets, spooling while a
receiver is down, and the message formats parsed back (Slack, Teams, RFC 5424, ASFF)."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from detect_helpers import free_port, http_receiver, tcp_syslog_receiver

from iamgraph.detect.config import SinkConfig, SinkKind, SyslogProtocol, WebhookFormat
from iamgraph.detect.payloads import (
    asff_finding,
    slack_payload,
    syslog_message,
    teams_adaptive_card,
    teams_message_card,
)
from iamgraph.detect.rules import alert_id
from iamgraph.detect.sinks import AsffFileSink, SinkError, StdoutSink, SyslogSink, WebhookSink
from iamgraph.detect.spool import Spool, spool_and_deliver
from iamgraph.detect.types import Alert, RuleId, Severity


def make_alert(
    n: int = 0,
    *,
    principal: str = "arn:aws:iam::111122223333:role/app",
    severity: Severity = Severity.HIGH,
    rule: RuleId = RuleId.NEW_ACTION,
) -> Alert:
    t = datetime(2026, 11, 14, 13, n % 60, tzinfo=UTC)
    return Alert(
        id=alert_id(rule, principal, "iam:CreateUser", f"ev-{n}"),
        rule=rule,
        severity=severity,
        title=f"first use of iam:CreateUser by role/app #{n}",
        principal=principal,
        identity_type="AssumedRole",
        action="iam:CreateUser",
        time=t,
        last_time=t,
        region="us-east-1",
        source_ip="192.0.2.10",
        account_id="111122223333",
        event_ids=(f"ev-{n}",),
        evidence={"baseline": {"events": 12, "actions": 3, "regions": ["us-east-1"]}},
    )


def no_sleep(_: float) -> None:
    pass


# ---------------------------------------------------------------- webhook


def test_webhook_delivers_slack_payload(tmp_path: Path) -> None:
    with http_receiver() as rx:
        cfg = SinkConfig(name="slack", kind=SinkKind.WEBHOOK, url=f"http://127.0.0.1:{rx.server_port}/hook")
        sink = WebhookSink(cfg, sleep=no_sleep)
        reports = spool_and_deliver(tmp_path, [sink], [make_alert(1), make_alert(2)])
        sink.close()
    assert reports[0].delivered == 2 and reports[0].pending == 0
    bodies = [b for _, b in rx.received]
    assert [b["text"] for b in bodies] == [slack_payload(make_alert(i))["text"] for i in (1, 2)]
    headers = [h for h, _ in rx.received]
    assert headers[0]["Content-Type"] == "application/json"
    assert headers[0]["X-Iamgraph-Alert-Id"] == make_alert(1).id


def test_webhook_retries_with_exponential_backoff(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with http_receiver(fail_first=3) as rx:
        cfg = SinkConfig(
            name="teams",
            kind=SinkKind.WEBHOOK,
            url=f"http://127.0.0.1:{rx.server_port}/",
            format=WebhookFormat.TEAMS,
            retries=4,
            backoff_seconds=0.5,
        )
        sink = WebhookSink(cfg, sleep=sleeps.append)
        sink.send(make_alert(3))
        sink.close()
    assert rx.calls == 4 and len(rx.received) == 1
    assert sleeps == [0.5, 1.0, 2.0]
    assert rx.received[0][1]["@type"] == "MessageCard"


def test_webhook_gives_up_after_retries() -> None:
    sleeps: list[float] = []
    with http_receiver(fail_first=100) as rx:
        cfg = SinkConfig(
            name="w", kind=SinkKind.WEBHOOK, url=f"http://127.0.0.1:{rx.server_port}/", retries=2
        )
        sink = WebhookSink(cfg, sleep=sleeps.append)
        with pytest.raises(SinkError, match="HTTP 503"):
            sink.send(make_alert(4))
        sink.close()
    assert rx.calls == 3 and sleeps == [1.0, 2.0]


def test_webhook_receiver_down_for_a_while(tmp_path: Path) -> None:
    """Alerts spool while nothing listens, arrive once the receiver is back, and none arrives twice."""
    port = free_port()
    cfg = SinkConfig(name="hook", kind=SinkKind.WEBHOOK, url=f"http://127.0.0.1:{port}/", retries=1)
    first = [make_alert(i) for i in range(3)]
    sink = WebhookSink(cfg, sleep=no_sleep)
    (down,) = spool_and_deliver(tmp_path, [sink], first)
    assert down.queued == 3 and down.delivered == 0 and down.pending == 3 and down.errors
    assert len(list((tmp_path / "hook" / "pending").glob("*.json"))) == 3
    # A later run (still down) finds the same alerts again plus a new one: nothing is spooled twice.
    (still,) = spool_and_deliver(tmp_path, [sink], [*first, make_alert(3)])
    assert still.queued == 1 and still.duplicates == 3 and still.pending == 4
    with http_receiver(port=port) as rx:
        (back,) = spool_and_deliver(tmp_path, [sink], [make_alert(4)])
        assert back.delivered == 5 and back.pending == 0
        # And once more: everything is known as delivered.
        (again,) = spool_and_deliver(tmp_path, [sink], [make_alert(i) for i in range(5)])
        assert again.queued == 0 and again.delivered == 0 and again.duplicates == 5
    sink.close()
    texts = [b["text"] for _, b in rx.received]
    assert sorted(texts) == sorted(slack_payload(make_alert(i))["text"] for i in range(5))
    assert len(set(texts)) == 5
    # Backlog drained oldest first.
    assert texts[:3] == [slack_payload(a)["text"] for a in first]


def test_min_severity_per_sink(tmp_path: Path) -> None:
    lines: list[str] = []
    sink = StdoutSink(SinkConfig(name="out", kind=SinkKind.STDOUT, min_severity=Severity.HIGH), lines.append)
    spool_and_deliver(
        tmp_path, [sink], [make_alert(1, severity=Severity.LOW), make_alert(2, severity=Severity.HIGH)]
    )
    assert [json.loads(x)["id"] for x in lines] == [make_alert(2).id]


def test_corrupt_spool_file_is_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "out")
    (spool.pending_dir / "deadbeefdeadbeef.json").write_text("{not json")
    lines: list[str] = []
    rep = spool.deliver(StdoutSink(SinkConfig(name="out", kind=SinkKind.STDOUT), lines.append))
    assert rep.corrupt and lines == []
    assert (tmp_path / "out" / "corrupt" / "deadbeefdeadbeef.json").read_text() == "{not json"


# ---------------------------------------------------------------- chat payload shapes


def test_slack_payload_shape() -> None:
    a = make_alert(5, principal="arn:aws:iam::111122223333:role/<script>&x")
    p = slack_payload(a)
    assert set(p) == {"text", "blocks"} and a.title in p["text"]
    header, section, context = p["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= 150
    assert section["type"] == "section" and 1 <= len(section["fields"]) <= 10
    assert all(f["type"] == "mrkdwn" for f in section["fields"])
    principal = next(f["text"] for f in section["fields"] if f["text"].startswith("*Principal*"))
    assert "&lt;script&gt;&amp;x" in principal and "<script>" not in principal
    assert context["type"] == "context" and "us-east-1" in context["elements"][0]["text"]


def test_teams_payload_shapes() -> None:
    a = make_alert(6, severity=Severity.CRITICAL, rule=RuleId.SENSITIVE_ACTION)
    card = teams_message_card(a)
    assert card["@type"] == "MessageCard" and card["@context"] == "https://schema.org/extensions"
    assert card["summary"] and re.fullmatch(r"[0-9A-F]{6}", card["themeColor"])
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert facts["Principal"] == a.principal and facts["Alert id"] == a.id and facts["Severity"] == "CRITICAL"
    msg = teams_adaptive_card(a)
    assert msg["type"] == "message" and len(msg["attachments"]) == 1
    att = msg["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = att["content"]
    assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
    factset = next(b for b in content["body"] if b["type"] == "FactSet")
    assert {f["title"]: f["value"] for f in factset["facts"]}["Action"] == "iam:CreateUser"


# ---------------------------------------------------------------- syslog

# RFC 5424 section 6: HEADER SP STRUCTURED-DATA [SP MSG]
_HEADER = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<ver>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) "
    rb"(?P<proc>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) (?P<rest>.*)$",
    re.S,
)


def parse_rfc5424(data: bytes) -> dict[str, Any]:
    m = _HEADER.match(data)
    assert m, data[:200]
    rest = m["rest"]
    assert rest.startswith(b"[")
    # Walk the SD-ELEMENT honouring the escapes of section 6.3.3.
    sd: dict[str, str] = {}
    i = 1
    sd_id_end = rest.index(b" ", i)
    sd_id = rest[i:sd_id_end].decode()
    i = sd_id_end
    while rest[i : i + 1] == b" ":
        eq = rest.index(b"=", i)
        name = rest[i + 1 : eq].decode()
        assert rest[eq + 1 : eq + 2] == b'"'
        j = eq + 2
        val = bytearray()
        while rest[j : j + 1] != b'"':
            if rest[j : j + 1] == b"\\" and rest[j + 1 : j + 2] in (b'"', b"\\", b"]"):
                j += 1
            val += rest[j : j + 1]
            j += 1
        sd[name] = val.decode()
        i = j + 1
    assert rest[i : i + 1] == b"]"
    msg = rest[i + 1 :]
    assert msg.startswith(b" \xef\xbb\xbf"), "MSG is UTF-8 with a BOM"
    ts = m["ts"].decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)", ts)
    return {
        "pri": int(m["pri"]),
        "version": int(m["ver"]),
        "timestamp": ts,
        "host": m["host"].decode(),
        "app": m["app"].decode(),
        "procid": m["proc"].decode(),
        "msgid": m["msgid"].decode(),
        "sd_id": sd_id,
        "sd": sd,
        "msg": json.loads(msg[4:].decode()),
    }


def test_rfc5424_message_parses_back() -> None:
    a = make_alert(7, principal='arn:aws:iam::111122223333:role/we"ird]\\"name', severity=Severity.CRITICAL)
    p = parse_rfc5424(
        syslog_message(a, facility=10, app_name="iamgraph", hostname="collector 1", procid="42")
    )
    # PRI = facility * 8 + severity; CRITICAL -> 2 (Critical), facility 10 (authpriv).
    assert p["pri"] == 10 * 8 + 2 and p["version"] == 1
    assert p["host"] == "collector1" and p["app"] == "iamgraph" and p["procid"] == "42"
    assert p["msgid"] == "new-action"
    assert p["sd_id"] == "iamgraph@32473"
    assert p["sd"]["principal"] == a.principal and p["sd"]["id"] == a.id
    assert p["sd"]["eventTime"] == "2026-11-14T13:07:00.000Z"
    assert p["msg"] == a.to_json()


@pytest.mark.parametrize(
    "severity,code",
    [(Severity.HIGH, 3), (Severity.MEDIUM, 4), (Severity.LOW, 5), (Severity.INFORMATIONAL, 6)],
)
def test_syslog_severity_codes(severity: Severity, code: int) -> None:
    p = parse_rfc5424(syslog_message(make_alert(8, severity=severity), facility=4, hostname="h", procid="1"))
    assert p["pri"] == 4 * 8 + code


def test_syslog_udp_delivery(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(120)
        cfg = SinkConfig(
            name="udp",
            kind=SinkKind.SYSLOG,
            host="127.0.0.1",
            port=rx.getsockname()[1],
            protocol=SyslogProtocol.UDP,
        )
        sink = SyslogSink(cfg, sleep=no_sleep)
        (rep,) = spool_and_deliver(tmp_path, [sink], [make_alert(i) for i in range(3)])
        got = [parse_rfc5424(rx.recv(65535)) for _ in range(3)]
    assert rep.delivered == 3
    assert [g["sd"]["id"] for g in got] == [make_alert(i).id for i in range(3)]


def test_syslog_tcp_octet_counting_and_receiver_down(tmp_path: Path) -> None:
    port = free_port()
    cfg = SinkConfig(
        name="tcp", kind=SinkKind.SYSLOG, host="127.0.0.1", port=port, protocol=SyslogProtocol.TCP, retries=1
    )
    sink = SyslogSink(cfg, sleep=no_sleep)
    (down,) = spool_and_deliver(tmp_path, [sink], [make_alert(i) for i in range(2)])
    assert down.delivered == 0 and down.pending == 2
    with tcp_syslog_receiver(port=port) as rx:
        (back,) = spool_and_deliver(tmp_path, [sink], [make_alert(i) for i in range(4)])
        assert back.duplicates == 2 and back.queued == 2 and back.delivered == 4
        sink.close()  # the receiver reads until the connection closes
        # Readiness polling with a generous bound (a loaded machine), not a fixed wait.
        deadline = time.monotonic() + 120
        while len(rx.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    ids = [parse_rfc5424(m)["sd"]["id"] for m in rx.received]
    assert sorted(ids) == sorted(make_alert(i).id for i in range(4)) and len(set(ids)) == 4


# ---------------------------------------------------------------- ASFF

_ASFF_REQUIRED = {
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
}
# Types are "namespace/category/classifier"; the namespaces AWS defines:
# https://docs.aws.amazon.com/securityhub/latest/userguide/asff-type-taxonomy.html
_ASFF_NAMESPACES = {
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
}
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.mark.parametrize("rule", list(RuleId))
def test_asff_required_fields(rule: RuleId) -> None:
    a = make_alert(9, rule=rule)
    f = asff_finding(a, region="eu-west-1")
    assert set(f) >= _ASFF_REQUIRED
    assert f["SchemaVersion"] == "2018-10-08"
    assert re.fullmatch(r"\d{12}", f["AwsAccountId"]) and f["AwsAccountId"] == "111122223333"
    assert f["ProductArn"] == "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
    for key in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
        assert _ISO.match(f[key]), key
    assert f["Severity"]["Label"] in {"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert f["Types"] and all(
        t.split("/")[0] in _ASFF_NAMESPACES and 2 <= len(t.split("/")) <= 3 for t in f["Types"]
    )
    assert len(f["Title"]) <= 256 and len(f["Description"]) <= 1024 and a.id in f["Id"]
    (res,) = f["Resources"]
    assert res["Type"] == "AwsIamRole" and res["Id"] == a.principal


def test_asff_file_sink_replaces_by_id_and_refuses_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "findings.json"
    sink = AsffFileSink(SinkConfig(name="asff", kind=SinkKind.ASFF, path=str(out)))
    sink.send(make_alert(1))
    sink.send(make_alert(2))
    sink.send(make_alert(1))
    findings = json.loads(out.read_text())["Findings"]
    assert sorted(f["Id"] for f in findings) == sorted(f"iamgraph/detect/{make_alert(i).id}" for i in (1, 2))
    other = tmp_path / "other.json"
    other.write_text("not json")
    with pytest.raises(SinkError, match="not overwritten"):
        AsffFileSink(SinkConfig(name="asff", kind=SinkKind.ASFF, path=str(other))).send(make_alert(3))
    assert other.read_text() == "not json"


def test_asff_alert_without_account_is_set_aside_not_invented(tmp_path: Path) -> None:
    """AwsAccountId is required: an alert naming no account is kept aside (not given a made-up one) and does
    not hold back the alerts after it."""
    out = tmp_path / "f.json"
    sink = AsffFileSink(SinkConfig(name="hub", kind=SinkKind.ASFF, path=str(out)))
    orphan = dataclasses.replace(make_alert(1), account_id=None)
    (rep,) = spool_and_deliver(tmp_path / "spool", [sink], [orphan, make_alert(2)])
    assert rep.delivered == 1 and rep.pending == 0 and len(rep.undeliverable) == 1
    assert (tmp_path / "spool" / "hub" / "failed" / f"{orphan.id}.json").exists()
    assert [f["AwsAccountId"] for f in json.loads(out.read_text())["Findings"]] == ["111122223333"]
    (again,) = spool_and_deliver(tmp_path / "spool", [sink], [orphan])
    assert again.queued == 0 and again.undeliverable == []
    with pytest.raises(ValueError, match="AwsAccountId"):
        asff_finding(orphan)
    assert asff_finding(orphan, product_account="444455556666")["AwsAccountId"] == "444455556666"
