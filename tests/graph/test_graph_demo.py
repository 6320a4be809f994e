"""On the demo organization: who-can agrees with brute force, and every planted finding (and no near miss) is found."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.demo.org import build_world
from iamgraph.demo.planted import Expect, PlantedKind
from iamgraph.eval import Mode
from iamgraph.graph import AccessGraph, NodeKind, build_graph
from iamgraph.graph.context import new_principal_parts
from iamgraph.query import exposure, privesc, sod
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
def demo() -> tuple[AccessGraph, list]:  # type: ignore[type-arg]
    world = build_world(CONFIG)
    graph = build_graph(build_demo_snapshot(CONFIG))
    return graph, list(world.planted)


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
        d = ev.authorize(p, action, resource, mode=Mode.DISCOVERY)
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
    found: dict[str, list] = {}  # type: ignore[type-arg]
    for e in privesc(graph):
        found.setdefault(e.principal, []).append(e)
    missed, false = [], []
    for item in planted:
        if item.kind is PlantedKind.PRIVILEGE_ESCALATION:
            if not any(found.get(p) for p in item.principals):
                missed.append(item.id)
        elif (item.kind is PlantedKind.NEAR_MISS and item.id in NEAR_MISS_PRIVESC
              and any(found.get(p) for p in item.principals)):
            false.append(item.id)
    assert not missed and not false, (missed, false)


NEAR_MISS_PRIVESC = {"nearmiss.deny", "nearmiss.boundary", "nearmiss.passed-to-service",
                     "nearmiss.resource-constraint", "nearmiss.scp", "nearmiss.detach-other-policy"}


def test_exposure_finds_planted_exposures_and_no_near_miss(demo) -> None:  # type: ignore[no-untyped-def]
    graph, planted = demo
    found = {(x.principal, x.resource) for x in exposure(graph)}
    resources = {r for _, r in found}
    for item in planted:
        if item.kind in (PlantedKind.EXTERNAL_EXPOSURE, PlantedKind.EXTERNAL_ACCESS):
            assert any((p, item.resources[0]) in found for p in item.principals), item.id
        if item.kind is PlantedKind.NEAR_MISS and item.expect is Expect.NO_FINDING and item.id in NEAR_MISS_EXPOSURE:
            assert item.resources[0] not in resources, item.id


NEAR_MISS_EXPOSURE = {"nearmiss.public-bucket-under-rcp", "nearmiss.github-oidc-with-sub"}


def test_sod_finds_planted_conflicts(demo) -> None:  # type: ignore[no-untyped-def]
    graph, planted = demo
    conflicts = sod(graph)
    rule_of = {
        "sod.create-user-and-attach-admin": "SOD-IAM-CREATE-VS-ADMIN",
        "sod.cloudtrail-and-log-deletion": "SOD-CLOUDTRAIL-MANAGE-VS-ERASE",
        "sod.kms-admin-and-decrypt": "SOD-KMS-ADMIN-VS-USE",
    }
    have = {(c.rule.id, c.principal) for c in conflicts}
    items = [i for i in planted if i.kind is PlantedKind.SEPARATION_OF_DUTIES]
    assert items
    for item in items:
        assert (rule_of[item.id], item.principals[0]) in have, item.id


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
    from iamgraph.query import sensitive

    graph, planted = demo
    (item,) = [i for i in planted if i.kind is PlantedKind.SENSITIVE_DATA_ACCESS]
    group = graph.index.groups[item.principals[0]]
    members = {u.arn for u in graph.index.users.values() if group.name in u.groups and
               graph.ctx.account(u.arn) == graph.ctx.account(group.arn)}
    assert members
    readers = {s.access.principal for s in sensitive(graph, "DataClassification=PII")
               if s.resource == item.resources[0] and s.kind.value == "read"}
    assert members <= readers
