"""The planted launch-template, guardrail and StackSet items, asked of the access graph one principal at a time.

What each item must come out as is taken from the technique it plants (docs/demo-org.md, AWS documentation
cited in iamgraph/demo/findings.py), not from what privesc returned: the escalation must use that technique's
edge, and the near miss must be blocked by its iam:PolicyARN condition and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.demo.org import build_world
from iamgraph.demo.planted import PlantedItem
from iamgraph.graph import AccessGraph, Edge, EdgeKind, build_graph
from iamgraph.query import privesc
from iamgraph.query.privesc import Escalation

CONFIG = DemoConfig(with_activity=False)


@pytest.fixture(scope="module")
def planted() -> dict[str, PlantedItem]:
    return {i.id: i for i in build_world(CONFIG).planted}


@pytest.fixture(scope="module")
def graph() -> AccessGraph:
    return build_graph(build_demo_snapshot(CONFIG))


def _edges(e: Escalation) -> list[Edge]:
    return [*e.path.hops, *e.changes]


def test_launch_template_version_is_the_way_up(graph: AccessGraph, planted: dict[str, PlantedItem]) -> None:
    item = planted["privesc.launch-template-version"]
    template, fleet = item.resources
    found = privesc(graph, item.principals[0])
    assert found
    takeovers = [h for e in found for h in _edges(e) if h.kind is EdgeKind.TAKEOVER_COMPUTE]
    assert takeovers and all(h.reason.target == template and h.reason.via[:2] == (
        "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate") for h in takeovers), takeovers
    # The template's own role is one target (a new version may name any role EC2 can assume, and
    # privesc shows the best one).
    assert any(e.source == item.principals[0] and e.target == fleet and e.reason.target == template
               for e in graph.edges((EdgeKind.TAKEOVER_COMPUTE,)))
    # Every hop is the template takeover or the admin edge: no PassRole to new compute, no IAM change.
    assert {h.kind for e in found for h in e.path.hops} <= {EdgeKind.TAKEOVER_COMPUTE, EdgeKind.ADMIN}


def test_detaching_the_guardrail_is_the_only_way_up(graph: AccessGraph, planted: dict[str, PlantedItem]) -> None:
    item = planted["privesc.detach-deny-guardrail"]
    user, guardrail = item.principals[0], item.resources[0]
    found = privesc(graph, user)
    assert found
    for e in found:
        assert [(c.kind, c.reason.via, c.reason.target, c.target) for c in e.changes] == [
            (EdgeKind.REMOVE_DENY, ("iam:DetachUserPolicy",), guardrail, user)
        ]


def test_guardrail_near_miss_is_blocked_by_its_policy_arn_condition(planted: dict[str, PlantedItem]) -> None:
    item = planted["nearmiss.detach-other-policy"]
    user, guardrail = item.principals[0], item.resources[0]
    assert privesc(build_graph(build_demo_snapshot(CONFIG)), user) == []
    # Control: the same organization without the iam:PolicyARN limit escalates exactly like cutover-admin.
    snap = build_demo_snapshot(CONFIG)
    policy = next(p for a in snap.accounts for p in a.policies if p.arn == guardrail)
    (version,) = policy.versions
    statements: list[dict[str, Any]] = version.document["Statement"]
    version.document["Statement"] = [st for st in statements if "Condition" not in st]
    assert len(version.document["Statement"]) == len(statements) - 1
    found = privesc(build_graph(snap), user)
    assert found and all(c.kind is EdgeKind.REMOVE_DENY and c.reason.target == guardrail
                         for e in found for c in e.changes)


def test_stackset_update_reaches_the_execution_roles(graph: AccessGraph, planted: dict[str, PlantedItem]) -> None:
    item = planted["privesc.stackset-update"]
    stackset, _, exec_prod = item.resources
    found = privesc(graph, item.principals[0])
    hops = [h for e in found for h in e.path.hops if h.kind is EdgeKind.TAKEOVER_COMPUTE]
    assert any(h.target == exec_prod and h.reason.target == stackset
               and set(h.reason.via) == {"iam:PassRole", "cloudformation:UpdateStackSet"} for h in hops), hops
    assert {e.account for e in found} >= {exec_prod.split(":")[4]}
