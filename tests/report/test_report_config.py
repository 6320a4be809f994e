"""``iamgraph report --db --config`` judges the unused and recommendation sections under the config file's
``evidence.logged`` section, as ``iamgraph unused`` and ``iamgraph recommend`` do with the same file. The evidence is
tests/logged_scenario.py's: the role's unused ``s3:PutObject`` may have been called in a region whose trail logs no
S3 data events, so it is kept, unless the configuration says that region logs them."""

from __future__ import annotations

import html as html_text
import re
from pathlib import Path

from logged_scenario import ROLE, write_scenario
from typer.testing import CliRunner

from iamgraph.cli import app


def _unused_section(files: dict[str, Path], out: Path, *extra: str) -> str:
    res = CliRunner().invoke(app, ["report", "--html", str(out), "--snapshot", str(files["snapshot"]), "--db",
                                   str(files["db"]), *extra])
    assert res.exit_code == 0, res.stdout + res.stderr
    page = out.read_text()
    start = page.index('id="unused-section"')
    return html_text.unescape(page[start:page.index("</section>", start)])


def test_report_unused_and_recommendation_follow_the_config_evidence_section(tmp_path: Path) -> None:
    files = write_scenario(tmp_path / "in")
    plain = _unused_section(files, tmp_path / "plain.html")
    assert ROLE in plain
    kept = re.compile(r'<span class="add">\+\s*"s3:PutObject"')  # in the proposed policy
    # Without the configuration: PutObject is a data event no trail of eu-west-1 logs, so neither unused nor removed;
    # sqs (management events, logged in both regions) is unused and removed.
    assert "<td>sqs</td>" in plain and "<td>s3:PutObject</td>" not in plain
    assert "(data_event); not claimed unused" in plain
    assert kept.search(plain) and re.search(r'<span class="del">-\s*"sqs:ListQueues"', plain)
    configured = _unused_section(files, tmp_path / "configured.html", "--config", str(files["config"]))
    assert "<td>s3:PutObject</td>" in configured and "<td>sqs</td>" in configured
    assert not kept.search(configured)
