"""List commands print a count line first and a bounded number of rows (--limit, --all), say "none found"
when empty, keep --json complete (that the demo shows exactly what its echoed commands print is
test_cli_demo_echo.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cli_helpers import run_cli

from iamgraph.demo import DemoResult

JANE = "arn:aws:iam::903241987127:user/contractor-jane"
PII = "arn:aws:s3:::examplecorp-customer-pii-903241987127"


@pytest.fixture()
def wide() -> Iterator[None]:
    """A console wide enough that no cell folds, so one table row is one line."""
    from iamgraph.cli.app import console

    before = console.width
    console.width = 1000
    yield
    console.width = before


def _rows_after_header(stdout: str) -> int:
    """Table rows: the lines after the count line and the header that start a row (a cell of several lines,
    such as a path of one hop a line, continues on lines whose first column is blank), less the "more" line
    and notes."""
    lines = stdout.splitlines()
    return sum(1 for ln in lines[2:] if ln.strip() and not ln[0].isspace() and not ln.startswith(("...", "note:")))


def test_who_can_leads_with_the_count_and_prints_at_most_limit_principals(demo: DemoResult, wide: None) -> None:
    full = json.loads(run_cli("who-can", "-s", demo.snapshot, "-r", PII, "-a", "s3:GetObject", "--json").stdout)
    principals = {a["principal"] for a in full["accesses"]}
    assert len(principals) > 5
    r = run_cli("who-can", "-s", demo.snapshot, "-r", PII, "-a", "s3:GetObject", "--limit", "5")
    assert r.code == 0, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"{len(principals)} principals can s3:GetObject on {PII}")
    assert _rows_after_header(r.stdout) == 5
    assert f"... {len(principals) - 5} more principals" in r.stdout
    every = run_cli("who-can", "-s", demo.snapshot, "-r", PII, "-a", "s3:GetObject", "--all")
    assert _rows_after_header(every.stdout) == len(principals) and "more principals" not in every.stdout


def test_default_bound_keeps_the_big_lists_short(demo: DemoResult, wide: None) -> None:
    """The flood commands of the issue (sod 1,567 lines, privesc 714, unused 78,655 in the field) stay within
    the default of 20 rows, and say how many more there are."""
    for args in (["privesc"], ["sensitive", "--tag", "DataClassification=PII"]):
        r = run_cli(*args, "-s", demo.snapshot)
        assert r.code == 0, r.output
        assert _rows_after_header(r.stdout) <= 20, args
    r = run_cli("blast-radius", "-s", demo.snapshot, "-p", JANE)
    # One note per resource it could not account for follows the table, never bounded (docs/graph.md).
    rows = [ln for ln in r.stdout.splitlines() if not ln.startswith("note: incomplete: ")]
    assert rows[-1].startswith("... ") and "more rows" in rows[-1]
    # advice (2), count, header, then at most 20 table rows (a path cell continues on indented lines), "more"
    assert rows[2].startswith("user/contractor-jane reaches ")
    assert sum(1 for ln in rows[4:-1] if ln.strip() and not ln[0].isspace()) <= 20


def test_privesc_count_line_matches_the_json(demo: DemoResult) -> None:
    found = json.loads(run_cli("privesc", "-s", demo.snapshot, "--json").stdout)["escalations"]
    first = run_cli("privesc", "-s", demo.snapshot).stdout.splitlines()[0]
    principals = {e["principal"] for e in found}
    assert first.startswith(f"{len(found)} escalation paths from {len(principals)} principals")


def test_blast_radius_leads_with_containment(demo: DemoResult) -> None:
    r = run_cli("blast-radius", "-s", demo.snapshot, "-p", "contractor-jane")
    assert r.code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("contain user/contractor-jane: remove this edge")
    assert "role/jump-role -[AssumeRole]-> role/prod-admin" in lines[1]


def test_empty_answers_say_none_found(demo: DemoResult) -> None:
    r = run_cli("path", "-s", demo.snapshot, "--from", "role/ThirdPartyMonitoring", "--to", "role/prod-admin")
    assert r.code == 0 and r.stdout.startswith("none found: no path")
    r = run_cli("sensitive", "-s", demo.snapshot, "--tag", "DataClassification=NoSuchClass")
    assert r.code == 0 and r.stdout.startswith("none found:")
