"""iamgraph report --html on the demo organization, checked in headless Chromium.

What the page must show comes from the demo's planted findings (docs/demo-org.md, planted.json), and
the credential-report rules from the IAM credential report columns
(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html): ``mfa_active``
false on the root user, an active key whose ``access_key_1_last_rotated`` is years old.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.demo import DemoConfig, generate_demo

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium")


@pytest.fixture()
def need_chromium() -> None:
    """Without chromium: a skip on a developer's machine, a failure in CI (``CI`` set, as CI systems and .ci/run
    do), so the browser tests can never silently not run there."""
    if CHROMIUM is None:
        why = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{why}; CI is set, so the HTML report must be checked in a browser")
        pytest.skip(why)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, DemoConfig())
    planted = json.loads((out / "planted.json").read_text())
    return {"dir": out, "planted": planted, "items": {i["id"]: i for i in planted["items"]}}


@pytest.fixture(scope="module")
def report(demo: dict[str, Any]) -> Path:
    html = demo["dir"] / "report.html"
    res = runner.invoke(
        app, ["report", "--html", str(html), "--snapshot", str(demo["dir"] / "snapshot.json.gz")]
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    assert str(html.resolve()) in res.stdout.replace("\n", "")
    return html


def _section(text: str, sid: str) -> str:
    start = text.index(f'<section id="{sid}">')
    return text[start : text.index("</section>", start)]


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    # No attribute points anywhere but inside the page (the SVG namespace is an identifier, not a fetch).
    refs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert refs and all(r.startswith("#") for r in refs), [r for r in refs if not r.startswith("#")][:5]
    assert "<link" not in text and "@import" not in text and "url(http" not in text


def test_report_sections_hold_planted_findings(report: Path, demo: dict[str, Any]) -> None:
    text = report.read_text()
    items = demo["items"]
    exposure = _section(text, "exposure-section")
    for item_id in ("exposure.role-any-account", "exposure.public-bucket"):
        target = items[item_id]["resources"][0]
        assert target in exposure, item_id
    privesc = _section(text, "privesc-section")
    for item_id in ("privesc.create-policy-version", "privesc.passrole-lambda", "privesc.attach-user-policy"):
        assert items[item_id]["principals"][0] in privesc, item_id
    # A near miss blocked by an explicit Deny is not a path.
    assert items["nearmiss.deny"]["principals"][0] not in privesc
    sod = _section(text, "sod-section")
    assert items["sod.create-user-and-attach-admin"]["principals"][0] in sod
    creds = _section(text, "credentials-section")
    root_acct = items["credentials.root-without-mfa"]["account_id"]
    assert f"root ({root_acct})</td><td>root without MFA" in creds
    ci = items["credentials.old-active-key"]["principals"][0].rsplit("/", 1)[-1]
    assert re.search(rf"{ci} \(\d+\)</td><td>old access key</td><td>high", creds)
    # Accounts whose root has MFA do not get the finding.
    others = set(demo["planted"]["accounts"].values()) - {root_acct}
    assert not any(f"root ({a})</td><td>root without MFA" in creds for a in others)


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_errors(stderr: str) -> list[str]:
    # Page console messages are logged as "...:CONSOLE(line)] "message", source: ..." (or CONSOLE:line).
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _page_state(dom: str) -> tuple[bool, str]:
    ready = 'data-ready="1"' in dom
    m = re.search(r'<div id="js-errors"[^>]*>(.*?)</div>', dom, re.S)
    return ready, (m.group(1) if m else "<no error box>")


@pytest.mark.chromium
@pytest.mark.usefixtures("need_chromium")
def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    res = _chromium(["--dump-dom", report.resolve().as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    ready, errors = _page_state(dom)
    assert ready, "the page script did not run to the end"
    assert errors == "", errors
    assert _console_errors(res.stderr) == []
    svgs = re.findall(r'<svg class="path-graph".*?</svg>', dom, re.S)
    assert svgs, "no path graph rendered"
    assert all(len(re.findall(r'<g class="node', s)) >= 2 for s in svgs)
    assert any(re.search(r'<g class="edge', s) for s in svgs)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    res = _chromium(["--window-size=1280,2400", f"--screenshot={shot}", report.resolve().as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.mark.chromium
@pytest.mark.usefixtures("need_chromium")
def test_chromium_harness_sees_script_errors(tmp_path: Path) -> None:
    """The checks above can fail: a page with a script error is caught by both the trap and the log."""
    from iamgraph.report.html import _TRAP

    page = tmp_path / "broken.html"
    page.write_text(
        f'<html><head><script>{_TRAP}</script></head><body><div id="js-errors"></div>'
        "<script>notDefined();</script></body></html>"
    )
    res = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    ready, errors = _page_state(res.stdout)
    assert not ready and "notDefined" in errors
    assert any("notDefined" in line for line in _console_errors(res.stderr))


@pytest.mark.slow
def test_report_with_usage_shows_unused_and_recommendation(demo: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    res = runner.invoke(
        app,
        [
            "usage",
            "ingest",
            "--db",
            str(db),
            "--cloudtrail",
            str(demo["dir"] / "cloudtrail"),
            "--snapshot",
            str(demo["dir"] / "snapshot.json.gz"),
        ],
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    item = demo["items"]["unused.services-and-actions"]
    principal = item["principals"][0]
    html = tmp_path / "r.html"
    res = runner.invoke(
        app,
        [
            "report",
            "--html",
            str(html),
            "--snapshot",
            str(demo["dir"] / "snapshot.json.gz"),
            "--usage",
            str(db),
            "--principal",
            principal,
            "--max-recommendations",
            "1",
        ],
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    unused = _section(html.read_text(), "unused-section")
    assert principal in unused
    assert re.search(r"<td>unused-service</td><td>[a-z]+</td><td>dynamodb</td>", unused)
    # The recommendation diff removes the never-used grant.
    assert '<pre class="diff">' in unused
    assert re.search(r'<span class="del">-[^<]*dynamodb:\*', unused)


_INTERACT = """
<script>
(function () {
  var out = {};
  try {
    var input = document.querySelector('input.filter[data-table="privesc"]');
    var table = document.getElementById('privesc');
    input.value = 'deploy-bot';
    input.dispatchEvent(new Event('input'));
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    out.visible = rows.filter(function (r) { return r.style.display !== 'none'; }).length;
    out.visibleMatch = rows.filter(function (r) {
      return r.style.display !== 'none' && r.textContent.indexOf('deploy-bot') === -1; }).length === 0;
    out.total = rows.length;
    input.value = '';
    input.dispatchEvent(new Event('input'));
    var steps = Array.prototype.indexOf.call(table.tHead.rows[0].cells,
      Array.prototype.find.call(table.tHead.rows[0].cells, function (c) { return c.textContent === 'steps'; }));
    table.tHead.rows[0].cells[steps].click();
    var asc = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return +r.cells[steps].textContent; });
    table.tHead.rows[0].cells[steps].click();
    var desc = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return +r.cells[steps].textContent; });
    out.asc = asc; out.desc = desc;
  } catch (e) { out.error = String(e); }
  document.body.setAttribute('data-test', JSON.stringify(out));
})();
</script>
"""


@pytest.mark.chromium
@pytest.mark.usefixtures("need_chromium")
def test_report_tables_search_and_sort_in_chromium(report: Path, tmp_path: Path) -> None:
    """The page's own script filters and sorts: driven by a test script appended to a copy of the page."""
    import html as html_lib

    page = tmp_path / "interact.html"
    page.write_text(report.read_text().replace("</body>", _INTERACT + "</body>"))
    res = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    m = re.search(r"data-test=\"([^\"]*)\"", res.stdout)
    assert m, res.stdout[-500:]
    out = json.loads(html_lib.unescape(m.group(1)))
    assert "error" not in out, out
    assert 0 < out["visible"] < out["total"] and out["visibleMatch"]
    assert out["asc"] == sorted(out["asc"]) and out["desc"] == sorted(out["desc"], reverse=True)
    assert out["asc"] != out["desc"]
