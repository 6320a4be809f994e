"""check --snapshot: a change judged in the demo organization's graph finds escalations the policy alone cannot.

Same-account trust: a role trust policy that names a principal's ARN lets it assume the role with no
identity-policy permission of its own (IAM "Cross account resource access" / "policy evaluation logic":
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html — a resource-based
policy naming the principal in the same account is enough). In the demo, jump-role can assume prod-admin
(AdministratorAccess); trusting legacy-reporting from jump-role makes legacy-reporting admin-equivalent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.snapshot import write_snapshot

runner = CliRunner()


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    snapshot = build_demo_snapshot(DemoConfig(days=7, events_per_day=5))
    prod = next(a.account_id for a in snapshot.accounts if any(r.name == "jump-role" for r in a.roles))
    path = tmp_path_factory.mktemp("snap") / "snapshot.json.gz"
    write_snapshot(snapshot, path)
    return path, prod


def _plan(prod: str, trusted: list[str]) -> dict[str, Any]:
    def trust(arns: list[str]) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": a}, "Action": "sts:AssumeRole"} for a in arns
                ],
            }
        )

    jane = f"arn:aws:iam::{prod}:user/contractor-jane"
    values = {"name": "jump-role", "arn": f"arn:aws:iam::{prod}:role/jump-role", "inline_policy": []}
    return {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "aws_iam_role.jump",
                "mode": "managed",
                "type": "aws_iam_role",
                "name": "jump",
                "change": {
                    "actions": ["update"],
                    "before": values | {"assume_role_policy": trust([jane])},
                    "after": values | {"assume_role_policy": trust([jane, *trusted])},
                    "after_unknown": {},
                },
            }
        ],
    }


def _check(tmp_path: Path, snap_path: Path, plan: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any]]:
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan, indent=2))
    res = runner.invoke(app, ["check", "--terraform-plan", str(p), "-f", "json", *extra])
    return res.exit_code, json.loads(res.stdout)


def test_trust_change_creates_escalation_only_visible_in_the_graph(
    snap: tuple[Path, str], tmp_path: Path
) -> None:
    path, prod = snap
    legacy = f"arn:aws:iam::{prod}:role/legacy-reporting"
    plan = _plan(prod, [legacy])
    # Alone, the change is a same-account grant of sts:AssumeRole: low, the gate passes.
    code, alone = _check(tmp_path, path, plan)
    assert code == 0 and not [f for f in alone["findings"] if f["rule"].startswith("IG005")]
    code, ctx = _check(tmp_path, path, plan, "--snapshot", str(path))
    esc = [f for f in ctx["findings"] if f["rule"].startswith("IG005") and f["details"].get("graph")]
    assert code == 1
    assert legacy in {f["details"]["principal"] for f in esc}
    mine = next(f for f in esc if f["details"]["principal"] == legacy)
    # The way in is the changed trust: legacy-reporting acts as jump-role on its route.
    assert mine["details"]["route"][0] == legacy
    assert f"arn:aws:iam::{prod}:role/jump-role" in mine["details"]["route"]
    assert mine["subject"] == "aws_iam_role.jump (trust policy)"


def test_unchanged_trust_in_context_is_clean(snap: tuple[Path, str], tmp_path: Path) -> None:
    path, prod = snap
    code, res = _check(tmp_path, path, _plan(prod, []), "--snapshot", str(path))
    assert code == 0 and res["findings"] == []


def test_new_role_in_context(snap: tuple[Path, str], tmp_path: Path) -> None:
    """A role the plan creates, trusting legacy-reporting, with an admin inline policy: in context the
    finding names who gains admin (legacy-reporting), which the policies alone cannot say."""
    path, prod = snap
    legacy = f"arn:aws:iam::{prod}:role/legacy-reporting"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": legacy}, "Action": "sts:AssumeRole"}],
    }
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    after = {
        "name": "helper",
        "assume_role_policy": json.dumps(trust),
        "inline_policy": [{"name": "all", "policy": json.dumps(admin)}],
    }
    plan = {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "aws_iam_role.helper",
                "mode": "managed",
                "type": "aws_iam_role",
                "name": "helper",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": after,
                    "after_unknown": {"arn": True},
                },
            }
        ],
    }
    cfg = tmp_path / "iamgraph.yaml"
    cfg.write_text(f"check:\n  accounts: ['{prod}']\n")
    code, res = _check(tmp_path, path, plan, "--snapshot", str(path), "-c", str(cfg))
    assert code == 1
    graph = [f for f in res["findings"] if f["details"].get("graph")]
    assert legacy in {f["details"]["principal"] for f in graph}
    # Without naming our account the new role has no home in a multi-account snapshot: policy-alone findings only.
    code, res = _check(tmp_path, path, plan, "--snapshot", str(path))
    assert not [f for f in res["findings"] if f["details"].get("graph")]
