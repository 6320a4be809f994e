"""On the demo organization: who-can agrees with brute force, and every planted finding (and no near miss) is found."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.demo.org import build_world
from iamgraph.demo.planted import PlantedItem, PlantedKind
from iamgraph.demo.score import (
    EXPOSURE_NEAR_MISSES,
    PRIVESC_NEAR_MISSES,
    Analyses,
    Check,
    CheckKind,
    score,
)
from iamgraph.eval import Mode
from iamgraph.graph import AccessGraph, NodeKind, build_graph
from iamgraph.graph.context import new_principal_parts
from iamgraph.query import exposure, privesc, sensitive, sod
from iamgraph.query.who_can import How, direct_holders, who_can_one

CONFIG = DemoConfig()

# Actions worth asking about: data reads/writes, IAM, STS and KMS, across the demo's resource types.
ACTIONS = (
    "s3:GetObject", "s3:PutObject", "s3:PutBucketPolicy", "kms:Decrypt", "kms:CreateGrant",
    "secretsmanager:GetSecretValue", "sqs:SendMessage", "sns:Publish", "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode", "ecr:BatchGetImage", "iam:PassRole", "sts:AssumeRole", "iam:CreateAccessKey",
    "dynamodb:GetItem",
)


@pytest.fixture(scope="module")
def demo() -> tuple[AccessGraph, list[PlantedItem]]:
    world = build_world(CONFIG)
    graph = build_graph(build_demo_snapshot(CONFIG))
    return graph, list(world.planted)


def _scored(demo: tuple[AccessGraph, list[PlantedItem]], analyses: Analyses) -> tuple[Check, ...]:
    graph, planted = demo
    return score(planted, graph.index.snapshot, analyses)


def _count(planted: list[PlantedItem], *kinds: PlantedKind) -> int:
    return sum(1 for i in planted if i.kind in kinds)


def _targets(graph: AccessGraph) -> list[str]:
    idx = graph.index
    out = []
    for arn, res in sorted(idx.resources.items()):
        out.append(arn + "/any-object" if res.type == "s3:bucket" else arn)
    out += sorted(idx.roles)[:40] + sorted(idx.users)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_who_can_agrees_with_brute_force(demo, data) -> None:  # type: ignore[no-untyped-def]
    """Every principal the engine allows (asked one by one, no index) is a direct holder, and the
    direct holders are exactly those; everyone else in the answer reaches one through the graph."""
    graph, _ = demo
    resource = data.draw(st.sampled_from(_targets(graph)))
    action = data.draw(st.sampled_from(ACTIONS))
    ev = graph.ctx.ev
    brute = set()
    for p in [*graph.index.users, *graph.index.roles]:
        d = ev.ask(p, action, resource, mode=Mode.DISCOVERY)
        if d.possible:
            brute.add(p)
    accesses = who_can_one(graph, resource, action)
    snapshot_principals = set(graph.index.users) | set(graph.index.roles)
    # The holders the answer starts from are exactly the principals the engine allows. (A holder
    # allowed only under conditions may be answered with a longer path that needs none.)
    holders = set(direct_holders(graph, resource, action))
    assert brute == holders & snapshot_principals, (resource, action, brute ^ holders)
    answered = {a.principal: a for a in accesses}
    for p in brute:
        assert p in answered, p
        assert answered[p].how is How.DIRECT or (answered[p].definite and answered[p].how is How.PATH), p
    # A principal someone can create (new-principal:<account>) holds it when the engine allows a
    # stand-in with an allow-all policy in that account.
    created = set()
    for n in graph.g:
        if graph.node_kind(n) is NodeKind.NEW_PRINCIPAL:
            acct, boundary = new_principal_parts(n)
            d = graph.ctx.as_new_principal(acct, action, resource, boundary)
            if d is not None and d.possible:
                created.add(n)
    for a in accesses:
        if a.how is How.PATH:
            # a path ends at a principal that holds the access itself, and every hop is a graph edge
            assert a.path.nodes[0] == a.principal and a.path.nodes[-1] in holders | created
            assert all(graph.acts.has_edge(x, y) for x, y in zip(a.path.nodes, a.path.nodes[1:], strict=False))


def test_privesc_finds_every_planted_escalation_and_no_near_miss(demo) -> None:  # type: ignore[no-untyped-def]
    graph, planted = demo
    checks = _scored(demo, Analyses(escalations=tuple(privesc(graph))))
    assert {c.kind for c in checks} == {CheckKind.PRIVESC, CheckKind.PRIVESC_NEAR_MISS}
    assert len(checks) == _count(planted, PlantedKind.PRIVILEGE_ESCALATION) + len(PRIVESC_NEAR_MISSES)
    assert [c for c in checks if not c.ok] == []


def test_exposure_finds_planted_exposures_and_no_near_miss(demo) -> None:  # type: ignore[no-untyped-def]
    graph, planted = demo
    checks = _scored(demo, Analyses(exposures=tuple(exposure(graph))))
    assert {c.kind for c in checks} == {CheckKind.EXPOSURE, CheckKind.EXPOSURE_NEAR_MISS}
    assert len(checks) == (_count(planted, PlantedKind.EXTERNAL_EXPOSURE, PlantedKind.EXTERNAL_ACCESS)
                           + len(EXPOSURE_NEAR_MISSES))
    assert [c for c in checks if not c.ok] == []


def test_sod_finds_planted_conflicts_under_their_rules(demo) -> None:  # type: ignore[no-untyped-def]
    graph, planted = demo
    checks = _scored(demo, Analyses(conflicts=tuple(sod(graph))))
    assert {c.kind for c in checks} == {CheckKind.SOD}
    assert len(checks) == _count(planted, PlantedKind.SEPARATION_OF_DUTIES) == 3
    assert [c for c in checks if not c.ok] == []


def test_sod_for_one_principal_is_the_full_answer_filtered(demo) -> None:  # type: ignore[no-untyped-def]
    """``sod(..., principal=P)`` asks only about the principals P can act as; it must give exactly the
    conflicts (evidence, paths and admin flag included) the every-principal computation gives P."""
    graph, _ = demo
    everyone = sod(graph)
    by_principal: dict[str, list[object]] = {}
    for c in everyone:
        by_principal.setdefault(c.principal, []).append(c)
    assert len(by_principal) >= 3  # the planted conflicts at least, so the comparison below can fail
    for p in graph.principals():
        assert sod(graph, principal=p) == by_principal.get(p, []), p


def test_privesc_for_all_agrees_with_one_by_one(demo) -> None:  # type: ignore[no-untyped-def]
    """The all-principals walk (backwards from admins and changes) finds the same escalating principals,
    and the same admin accounts, as walking forward from each principal."""
    graph, _ = demo
    together: dict[str, set[str]] = {}
    for e in privesc(graph, per_principal=1000):
        together.setdefault(e.principal, set()).add(e.account)
    one_by_one: dict[str, set[str]] = {}
    for p in together.keys() | set(graph.index.users) | set(graph.index.roles):
        accounts = {e.account for e in privesc(graph, p, per_principal=1000)}
        if accounts:
            one_by_one[p] = accounts
    assert together == one_by_one


def test_sensitive_finds_planted_broad_read(demo) -> None:  # type: ignore[no-untyped-def]
    """The planted PII bucket is readable by every member of the broad group (through the group's policy)."""
    graph, _ = demo
    checks = _scored(demo, Analyses(pii_access=tuple(sensitive(graph, "DataClassification=PII"))))
    (check,) = checks
    assert check.kind is CheckKind.SENSITIVE and check.ok, check
    # alice, bob and carol, and former-contractor (planted with unused credentials), are in all-engineers.
    assert check.note.endswith("(4 members)")
