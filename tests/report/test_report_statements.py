"""The HTML report shows, for each finding, the statements that decided it, and for each separation-of-duties
conflict the evidence of each side (the capability, the action and resource that show it, the path and the
statements). The report takes them from the engine's answers; the expectations here come from the demo's
planted findings (planted.json) and the policy documents of its snapshot, read independently: the
statement that allows the planted action is found in the document by its Action and Principal.

A statement is named as the report names it: its effect, its policy (a managed policy's ARN, an inline
policy by name and owner, a role's trust policy, a resource's policy) and its Sid, else its index in the
``Statement`` array.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.demo import DemoConfig, generate_demo
from iamgraph.model import parse_policy
from iamgraph.model.policy import Statement
from iamgraph.query import load_rules
from iamgraph.snapshot import Snapshot, read_snapshot


class _Tables(HTMLParser):
    """Every ``<table id=...>`` of the page as a list of rows, each a dict of column -> cell text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._id: str | None = None
        self._head: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._id, self._head = dict(attrs).get("id"), []
            if self._id:
                self.tables[self._id] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._id:
            if not self._head:
                self._head = self._row
            else:
                self.tables[self._id].append(dict(zip(self._head, self._row, strict=True)))
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo")
    result = generate_demo(out, DemoConfig())
    planted = json.loads(result.planted.read_text())
    html = out / "report.html"
    res = CliRunner().invoke(app, ["report", "--html", str(html), "--snapshot", str(result.snapshot)])
    assert res.exit_code == 0, res.stdout + res.stderr
    parser = _Tables()
    parser.feed(html.read_text(encoding="utf-8"))
    return {"snap": read_snapshot(result.snapshot), "items": {i["id"]: i for i in planted["items"]},
            "tables": parser.tables}


def _allows(st: Statement, action: str) -> bool:
    return st.is_allow and any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in st.action or ())


def _ref(policy: str, st: Statement) -> str:
    return f'Allow {policy}, ' + (f'Sid "{st.sid}"' if st.sid else f"Statement[{st.index}]")


def _principal(snap: Snapshot, arn: str) -> Any:
    return next(p for a in snap.accounts for p in (*a.users, *a.roles) if p.arn == arn)


def _name(arn: str) -> str:
    return arn.split(":", 5)[5]


def _row(rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert hits, f"no row with {match}"
    return hits[0]


def _inline_refs(snap: Snapshot, arn: str, action: str) -> Iterator[str]:
    for ip in _principal(snap, arn).inline_policies:
        for st in parse_policy(ip.document).statements:
            if _allows(st, action):
                yield _ref(f'inline policy "{ip.name}" of {_name(arn)}', st)


def test_an_escalation_names_the_statement_that_allows_the_planted_action(demo: dict[str, Any]) -> None:
    item = demo["items"]["privesc.create-policy-version"]
    policy_arn = item["resources"][0]  # the user's own customer managed policy
    policy = next(p for a in demo["snap"].accounts for p in a.policies if p.arn == policy_arn)
    doc = next(v.document for v in policy.versions if v.version_id == policy.default_version_id)
    expected = [_ref(policy_arn, st) for st in parse_policy(doc).statements if _allows(st, "iam:CreatePolicyVersion")]
    assert expected
    row = _row(demo["tables"]["privesc"], principal=item["principals"][0])
    assert any(ref in row["deciding statements"] for ref in expected), row["deciding statements"]


def test_an_assume_role_chain_names_each_hops_identity_and_trust_statements(demo: dict[str, Any]) -> None:
    item = demo["items"]["privesc.assume-role-chain"]
    jane = item["principals"][0]
    cell = _row(demo["tables"]["privesc"], principal=jane)["deciding statements"]
    assert any(ref in cell for ref in _inline_refs(demo["snap"], jane, "sts:AssumeRole")), cell
    admin = item["resources"][0]
    trust = _principal(demo["snap"], admin).trust_policy
    refs = [_ref(f"trust policy of {_name(admin)}", st) for st in parse_policy(trust).statements
            if _allows(st, "sts:AssumeRole")]
    assert any(ref in cell for ref in refs), cell
    # The last step: the admin role's AdministratorAccess grant (AWS managed, one statement: * on *).
    assert "Allow arn:aws:iam::aws:policy/AdministratorAccess, Statement[0]" in cell


def test_exposure_names_the_public_statement_of_the_bucket_policy(demo: dict[str, Any]) -> None:
    bucket = demo["items"]["exposure.public-bucket"]["resources"][0]
    res = next(r for a in demo["snap"].accounts for r in a.resources if r.arn == bucket)
    public = [st for st in parse_policy(res.policy, principal=True).statements
              if _allows(st, "s3:GetObject") and st.principal is not None
              and (st.principal.wildcard or "*" in st.principal.aws)]
    assert public
    row = _row(demo["tables"]["exposure"], resource=bucket, principal="*")
    assert _ref(f"resource policy of {bucket}", public[0]) in row["deciding statements"]


def test_a_sod_conflict_shows_the_evidence_of_each_side(demo: dict[str, Any]) -> None:
    item = demo["items"]["sod.kms-admin-and-decrypt"]
    custodian, key = item["principals"][0], item["resources"][0]
    rule = next(r for r in load_rules() if r.id == "SOD-KMS-ADMIN-VS-USE")
    cell = _row(demo["tables"]["sod"], principal=custodian, rule=rule.id)["evidence"]
    lines = cell.splitlines()
    key_res = next(r for a in demo["snap"].accounts for r in a.resources if r.arn == key)
    key_policy = parse_policy(key_res.policy, principal=True).statements
    for cap in rule.capabilities:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{cap.name}: "))
        side = lines[start:next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
                                len(lines))]
        action = side[0].split(": ", 1)[1].split(" on ", 1)[0]
        assert action in cap.actions
        # Both the custodian's own policy and the key policy must allow it (KMS: the key policy decides).
        assert any(f"  {ref}" in side for ref in _inline_refs(demo["snap"], custodian, action)), side
        assert any(f"  {_ref(f'resource policy of {key}', st)}" in side for st in key_policy
                   if _allows(st, action)), side


@pytest.mark.parametrize(("table", "column"), [("admins", "granted by"), ("privesc", "deciding statements"),
                                               ("exposure", "deciding statements"), ("sod", "evidence")])
def test_every_finding_has_an_allow_statement(demo: dict[str, Any], table: str, column: str) -> None:
    rows = demo["tables"][table]
    assert rows
    missing = [r for r in rows if "Allow " not in r[column]]
    assert not missing, missing[:3]
