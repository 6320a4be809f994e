"""Alert delivery under a receiver that refuses some alerts for good, and one slower than the timeout (issue 17,
defect 5): a refused alert goes to the dead letters with its reason and never blocks the ones after it, run
after run; a slow receiver's alerts are counted delivered once it confirms, with the id to drop repeats by."""

from __future__ import annotations

import json
from pathlib import Path

from detect_helpers import role_record, webhook_receiver, write_log
from test_detect_delivery import make_alert, no_sleep
from test_detect_rules import END, at, baseline_records
from typer.testing import CliRunner

from iamgraph.cli.app import app
from iamgraph.detect.config import SinkConfig, SinkKind
from iamgraph.detect.sinks import WebhookSink
from iamgraph.detect.spool import spool_and_deliver


def _sink(url: str, **kw: object) -> WebhookSink:
    cfg = SinkConfig(name="hook", kind=SinkKind.WEBHOOK, url=url, **kw)  # type: ignore[arg-type]
    return WebhookSink(cfg, sleep=no_sleep)


def test_a_refused_alert_is_dead_lettered_and_later_alerts_are_delivered_run_after_run(tmp_path: Path) -> None:
    alerts = [make_alert(i) for i in range(5)]
    refused = alerts[1]
    with webhook_receiver(refuse={refused.id}) as rx:
        sink = _sink(f"http://127.0.0.1:{rx.server_port}/hook")
        (first,) = spool_and_deliver(tmp_path, [sink], alerts[:3])
        (second,) = spool_and_deliver(tmp_path, [sink], alerts)
        (third,) = spool_and_deliver(tmp_path, [sink], [*alerts, make_alert(5)])
        sink.close()
    assert (first.delivered, first.pending, len(first.undeliverable)) == (2, 0, 1)
    assert first.undeliverable[0].startswith(refused.id) and "HTTP 400: invalid_payload" in first.undeliverable[0]
    assert (second.delivered, second.queued, second.duplicates, second.undeliverable) == (2, 2, 3, [])
    assert (third.delivered, third.queued, third.pending) == (1, 1, 0)
    assert first.dead_letters == second.dead_letters == third.dead_letters == 1
    # Refused once (no retries of a final answer), never again; every other alert arrived exactly once.
    assert rx.seen[refused.id] == 1
    assert {a.id for a in [*alerts, make_alert(5)]} - {refused.id} == {
        k for k, n in rx.seen.items() if n == 1 and k != refused.id}
    letter = json.loads((tmp_path / "hook" / "failed" / f"{refused.id}.json").read_text())
    assert letter["alert"]["id"] == refused.id and "HTTP 400: invalid_payload" in letter["reason"]
    assert letter["failed_at"] and letter["spooled_at"]
    assert (tmp_path / "hook" / "failed" / f"{refused.id}.json").stat().st_mode & 0o777 == 0o600


def test_transient_answers_are_retried_with_backoff(tmp_path: Path) -> None:
    """408, 429 and 5xx are retried with exponential back-off; a final 4xx is not."""
    from detect_helpers import http_receiver

    for status in (408, 429, 503):
        sleeps: list[float] = []
        with http_receiver(fail_first=2) as rx:
            rx.RequestHandlerClass = _failing(status)
            cfg = SinkConfig(name="h", kind=SinkKind.WEBHOOK, url=f"http://127.0.0.1:{rx.server_port}/",
                             retries=3, backoff_seconds=0.5)
            sink = WebhookSink(cfg, sleep=sleeps.append)
            sent = sink.send(make_alert(7))
            sink.close()
        assert rx.calls == 3 and len(rx.received) == 1 and sent.unanswered_attempts == 0, status
        assert sleeps == [0.5, 1.0], status


def _failing(status: int) -> type:
    from detect_helpers import _Recorder

    class Failing(_Recorder):
        def do_POST(self) -> None:
            server = self.server
            if server.fail_first > 0:  # type: ignore[attr-defined]
                server.calls += 1  # type: ignore[attr-defined]
                server.fail_first -= 1  # type: ignore[attr-defined]
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(status)
                self.end_headers()
                return
            super().do_POST()

    return Failing


def test_a_receiver_slower_than_the_timeout_gets_repeats_counted_as_delivered(tmp_path: Path) -> None:
    alerts = [make_alert(i) for i in range(3)]
    with webhook_receiver(slow="first") as rx:
        sink = _sink(f"http://127.0.0.1:{rx.server_port}/", timeout_seconds=0.5, retries=3)
        (rep,) = spool_and_deliver(tmp_path, [sink], alerts)
        (again,) = spool_and_deliver(tmp_path, [sink], alerts)
        sink.close()
    assert (rep.delivered, rep.pending, rep.repeated, rep.unconfirmed) == (3, 0, 3, 0)
    assert (again.delivered, again.duplicates) == (0, 3)
    # Each alert reached the receiver twice (the first attempt had no answer in time), with the same id to
    # deduplicate on in both headers and in the body's facts.
    assert rx.seen == {a.id: 2 for a in alerts}
    for headers, body in rx.attempts:
        assert headers["Idempotency-Key"] == headers["X-Iamgraph-Alert-Id"]
        assert headers["X-Iamgraph-Alert-Id"] in json.dumps(body)


def test_a_receiver_that_never_answers_in_time_keeps_the_alert_pending(tmp_path: Path) -> None:
    with webhook_receiver(slow="always") as rx:
        sink = _sink(f"http://127.0.0.1:{rx.server_port}/", timeout_seconds=0.2, retries=1)
        (rep,) = spool_and_deliver(tmp_path, [sink], [make_alert(1), make_alert(2)])
        sink.close()
    assert (rep.delivered, rep.pending, rep.unconfirmed, rep.undeliverable) == (0, 2, 1, [])
    assert "may have the alert" in rep.errors[0] and "same id" in rep.errors[0]
    assert rx.seen == {make_alert(1).id: 2}  # the second waits: the receiver is stuck on the first


def test_the_run_summary_reports_undeliverable_alerts(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    write_log(root, baseline_records(), name="base")
    write_log(root, [role_record("app", "cloudtrail.amazonaws.com", "StopLogging", at(9), read_only=False),
                     role_record("app", "iam.amazonaws.com", "CreateUser", at(10), read_only=False)], name="w")
    args = ["detect", "--cloudtrail", str(root), "--since", "24h", "--until", END.isoformat(),
            "--spool-dir", str(tmp_path / "spool"), "--config", str(tmp_path / "iamgraph.yaml"), "--json"]
    # A receiver that refuses every alert (400), then one that would take them all.
    with webhook_receiver(refuse=_AllIds()) as rx:
        (tmp_path / "iamgraph.yaml").write_text(
            f"detect:\n  sinks:\n    - {{name: hook, type: webhook, url: 'http://127.0.0.1:{rx.server_port}/'}}\n")
        refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 3, refused.output
    summary = json.loads(refused.stderr[refused.stderr.index("{"):])
    (hook,) = summary["deliveries"]
    assert hook["queued"] == 2 and hook["delivered"] == 0 and hook["pending"] == 0
    assert len(hook["undeliverable"]) == 2 and hook["dead_letters"] == 2
    assert all("HTTP 400" in u for u in hook["undeliverable"])
    # The next run: nothing new, nothing retried, the dead letters still reported.
    with webhook_receiver() as rx2:
        (tmp_path / "iamgraph.yaml").write_text(
            f"detect:\n  sinks:\n    - {{name: hook, type: webhook, url: 'http://127.0.0.1:{rx2.server_port}/'}}\n")
        later = CliRunner().invoke(app, args)
    assert later.exit_code == 0, later.output
    (hook2,) = json.loads(later.stderr[later.stderr.index("{"):])["deliveries"]
    assert hook2["duplicates"] == 2 and hook2["undeliverable"] == [] and hook2["dead_letters"] == 2
    assert rx2.attempts == []


class _AllIds(set[str]):
    """Every alert id (the ids of a run are not known beforehand)."""

    def __contains__(self, item: object) -> bool:
        return True
