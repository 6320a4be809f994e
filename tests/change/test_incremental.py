"""The changed snapshot's graph built from the base graph's decisions (iamgraph.graph.incremental) is the graph a
full build gives, and an access-request judgement made over it is the judgement made over a full rebuild: for every
planted escalation technique granted to a narrow workload role, group joins, managed policy attachments, trust edits,
a policy removal, a new role and permission set assignments, on the demo organization (docs/demo-org.md)."""

from __future__ import annotations

import dataclasses
import gc
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pytest

from iamgraph.change import (
    ExistingPrincipal,
    GroupGrant,
    IdentityCenterPrincipal,
    InlinePolicyGrant,
    ManagedPolicyGrant,
    NewRole,
    PermissionSetGrant,
    PolicyRemoval,
    SnapshotBase,
    TrustPolicyEdit,
    Verdict,
    evaluate_grant,
    preload,
)
from iamgraph.change.evaluate import Evaluation
from iamgraph.change.grant import Who, apply_grant
from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig
from iamgraph.errors import InputError
from iamgraph.eval import Mode
from iamgraph.graph import AccessGraph, build_graph
from iamgraph.graph.incremental import rebuild, scope_of, touched
from iamgraph.graph.rules.identity_center import materialise
from iamgraph.query.paths import definite_acts
from iamgraph.snapshot import SnapshotIndex, read_snapshot
from iamgraph.snapshot.model import InlinePolicy, Snapshot

pytestmark = pytest.mark.slow  # demo organization, two graphs per change: a few minutes

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("incremental-demo")
    result = generate_demo(out, DemoConfig(with_activity=False))
    planted = orjson.loads(Path(result.planted).read_bytes())
    items = {i["id"]: i for i in planted["items"]}
    snap = read_snapshot(Path(result.snapshot))
    return {"snapshot": snap, "base": SnapshotBase(snap), "items": items,
            # An ECS task role of the orders service: a workload with narrow rights of its own.
            "requester": items["deviation.new-region"]["principals"][0],
            "lambda_admin": items["privesc.passrole-lambda"]["resources"][0]}


def _changes(demo: dict[str, Any]) -> list[tuple[str, Who, Any]]:
    """(label, who, what): every planted escalation's actions granted to the workload role, and the other kinds."""
    snap: Snapshot = demo["snapshot"]
    items, requester = demo["items"], demo["requester"]
    who = ExistingPrincipal(principal_arn=requester)
    out: list[tuple[str, Who, Any]] = []
    for item_id, item in sorted(items.items()):
        if item_id.startswith("privesc."):
            doc = _doc({"Effect": "Allow", "Action": sorted(set(item["actions"])), "Resource": "*"})
            out.append((item_id, who, InlinePolicyGrant(policy_document=doc, policy_name="technique")))
    out.append(("managed AdministratorAccess", who, ManagedPolicyGrant(managed_policy_arn=ADMIN)))
    # Access that resource policies decide: every bucket's objects, every key and secret, each asked with its own policy
    # (bucket policy, key policy, secret policy) and, across accounts, only where that policy names the workload. The
    # judgement API takes no edit of such a policy (a role's trust policy is its one resource policy it takes, above and
    # below); edits of them are compared at graph level (test_a_resource_policy_edit_rebuilds_to_the_full_build).
    out.append(("data behind resource policies", who, InlinePolicyGrant(policy_document=_doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt", "secretsmanager:GetSecretValue"],
         "Resource": "*"}), policy_name="data")))
    # Both capabilities of a shipped SoD rule (iamgraph/data/sod-rules.yaml, SOD-CONFIG-MANAGE-VS-DISABLE): a conflict
    # only the change creates.
    out.append(("sod from the change", who, InlinePolicyGrant(policy_document=_doc(
        {"Effect": "Allow", "Action": ["config:PutConfigurationRecorder", "config:StopConfigurationRecorder"],
         "Resource": "*"}), policy_name="config-both")))
    # Access through a role the subject can then assume: a role whose trust policy names its own account needs only an
    # identity Allow of sts:AssumeRole (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html);
    # what that role holds then counts for the subject (escalations, SoD through it).
    trusting = next(r for a in snap.accounts for r in a.roles
                    if _doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a.account_id}:root"},
                             "Action": "sts:AssumeRole"}) == r.trust_policy)
    home = trusting.arn.split(":")[4]
    # A role of that account that cannot assume it yet (its policies do not allow sts:AssumeRole on it).
    assumer = next(r.arn for a in snap.accounts if a.account_id == home for r in sorted(a.roles, key=lambda r: r.arn)
                   if r.arn != trusting.arn and "/aws-service-role/" not in r.arn and not demo["base"].evaluator.ask(
                       r.arn, "sts:AssumeRole", trusting.arn, mode=Mode.DISCOVERY).possible)
    out.append(("assume a role trusting its account", ExistingPrincipal(principal_arn=assumer), InlinePolicyGrant(
        policy_document=_doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": trusting.arn}),
        policy_name="assume-one")))
    customer = next(a for a in items["privesc.create-policy-version"]["resources"] if ":aws:policy/" not in a)
    out.append(("managed customer policy", who, ManagedPolicyGrant(managed_policy_arn=customer)))
    # Group joins: a planted user joins each group of its account it is not in (one in the demo).
    user_arn = items["privesc.attach-user-policy"]["principals"][0]
    acct = next(a for a in snap.accounts if any(u.arn == user_arn for u in a.users))
    user = next(u for u in acct.users if u.arn == user_arn)
    groups = [g for g in acct.groups if g.name not in user.groups]
    assert groups, "the demo account has no group to join"
    for g in groups:
        out.append((f"join {g.name}", ExistingPrincipal(principal_arn=user_arn), GroupGrant(group_arn=g.arn)))
    # Trust edits: the admin role the planted PassRole reaches trusting the workload; and trusting everyone.
    admin = ExistingPrincipal(principal_arn=demo["lambda_admin"])
    out.append(("trust workload", admin, TrustPolicyEdit(trust_policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": requester}, "Action": "sts:AssumeRole"}))))
    out.append(("trust everyone", admin, TrustPolicyEdit(trust_policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}))))
    # A removal: the planted user's own Deny guardrail detached.
    guarded = items["privesc.detach-deny-guardrail"]
    freeze = next(r for r in guarded["resources"] if r != ADMIN)
    out.append(("remove guardrail", ExistingPrincipal(principal_arn=guarded["principals"][0]),
                PolicyRemoval(policy=freeze)))
    # A role to be created, trusting the workload, with an admin-equivalent inline policy.
    account_id = requester.split(":")[4]
    out.append(("new role", NewRole(account_id=account_id, name="iamgraph-test-new", trust_policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": requester}, "Action": "sts:AssumeRole"})),
        InlinePolicyGrant(policy_document=_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))))
    # Permission sets for an Identity Center user in the workload's account: every set AWS could provision
    # there (a set whose boundary policy the account lacks cannot be); the role a set becomes may already be
    # provisioned there, or be new.
    ic = snap.identity_center
    assert ic is not None and ic.users
    ic_user = IdentityCenterPrincipal(id=ic.users[0].user_id, type="USER")
    base: SnapshotBase = demo["base"]
    sets = 0
    for ps in ic.permission_sets:
        what = PermissionSetGrant(permission_set_arn=ps.arn, account_id=account_id)
        try:
            apply_grant(base.snapshot, base.index, ic_user, what)
        except InputError:
            continue
        out.append((f"permission set {ps.name}", ic_user, what))
        sets += 1
    assert sets >= 2
    return out


def _scope(base: AccessGraph, changed: Snapshot) -> frozenset[str]:
    """The accounts ``rebuild`` computes again for a change (``iamgraph.graph.incremental.scope_of``)."""
    after = materialise(changed)[0]
    found = touched(base.index.snapshot, after)
    assert found is not None
    accounts = scope_of(found, base.index, SnapshotIndex(after))
    assert accounts is not None
    return accounts


def _same_graph(a: AccessGraph, b: AccessGraph, scope: frozenset[str] | None = None) -> None:
    """``a`` (the overlay) is ``b`` (the full build). With ``scope`` (the accounts computed again), neighbour order is
    compared at the scope's nodes only: a node outside it that gains an edge into the scope lists that neighbour
    last (docs/change.md)."""
    assert set(a.g.nodes) == set(b.g.nodes)
    assert dict(a.g.nodes(data=True)) == dict(b.g.nodes(data=True))
    # Same edges, kind by kind. The overlay keeps the base's edges in the base's order and appends the ones it
    # computed again, so the order within a kind may differ; between two nodes it is the full build's.
    assert {k: Counter(v) for k, v in a.edges_by_kind.items()} == {k: Counter(v) for k, v in b.edges_by_kind.items()}
    assert {(u, v): [e for d in kd.values() for e in [d["edge"]]] for u, nbrs in a.g.adjacency()
            for v, kd in nbrs.items()} == {(u, v): [d["edge"] for d in kd.values()] for u, nbrs in b.g.adjacency()
                                           for v, kd in nbrs.items()}
    assert set(a.g.edges(keys=True)) == set(b.g.edges(keys=True))
    assert {(u, v) for v, u in a.g.in_edges()} == {(u, v) for v, u in b.g.in_edges()}
    assert {(u, v): d["ways"] for u, v, d in a.acts.edges(data=True)} == {
        (u, v): d["ways"] for u, v, d in b.acts.edges(data=True)}
    assert set(a.acts.nodes) == set(b.acts.nodes)
    assert {(u, v) for u, v in a.acts.in_edges()} == {(u, v) for u, v in b.acts.in_edges()}
    # Neighbours in the same order: path searches visit them in it, so ties between equally short paths break alike.
    def compared(n: str) -> bool:
        return scope is None or (n.split(":")[1] if n.startswith("admin:") else b.ctx.account(n)) in scope

    for x, y in ((a.g, b.g), (a.acts, b.acts)):
        assert {n: list(x.succ[n]) for n in x if compared(n)} == {n: list(y.succ[n]) for n in y if compared(n)}
        assert {n: list(x.pred[n]) for n in x if compared(n)} == {n: list(y.pred[n]) for n in y if compared(n)}
    assert sorted(a.notes) == sorted(b.notes)
    assert Counter(a.ctx.skipped) == Counter(b.ctx.skipped)
    if a.derive is not None:
        _same_definite(a, b)


def _same_definite(inc: AccessGraph, full: AccessGraph) -> None:
    """The overlay's unconditional capability graph, derived from the base graph's by the pairs the change altered,
    is the one built from the overlay's own capability edges (the same successors and predecessors in the same
    order), and has the full build's pairs."""
    derived = definite_acts(inc)
    built = nx.DiGraph()
    built.add_edges_from((u, v) for u, v, ways in inc.acts.edges(data="ways")
                         if any(not w.conditions and not w.assumptions for w in ways))
    assert set(derived.nodes) == set(built.nodes)
    assert {n: list(derived.succ[n]) for n in derived} == {n: list(built.succ[n]) for n in built}
    assert {n: list(derived.pred[n]) for n in derived} == {n: list(built.pred[n]) for n in built}
    assert set(derived.edges) == set(definite_acts(full).edges)


def test_the_incremental_graph_is_the_full_build_for_every_kind_of_change(demo: dict[str, Any]) -> None:
    base: SnapshotBase = demo["base"]
    base_graph = base.graph()
    definite_acts(base_graph)  # the overlays derive theirs from it
    reused_any = False
    for label, who, what in _changes(demo):
        applied = apply_grant(base.snapshot, base.index, who, what)
        inc, reused = rebuild(base_graph, applied.snapshot)
        reused_any |= reused
        full = build_graph(applied.snapshot)
        try:
            _same_graph(inc, full, _scope(base_graph, applied.snapshot))
        except AssertionError as exc:
            raise AssertionError(f"{label}: the incremental graph differs from the full build") from exc
    assert reused_any


def _comparable(ev: Evaluation) -> Evaluation:
    return dataclasses.replace(ev, after_build_seconds=0.0, base_build_seconds=None)


def test_a_judgement_over_the_incremental_graph_is_the_full_rebuilds(demo: dict[str, Any]) -> None:
    base: SnapshotBase = demo["base"]
    verdicts: dict[str, Verdict] = {}
    judged: dict[str, Evaluation] = {}
    escalating = 0
    for label, who, what in _changes(demo):
        inc = evaluate_grant(base, who, what)
        full = evaluate_grant(base, who, what, full_build=True)
        assert _comparable(inc) == _comparable(full), label
        verdicts[label] = inc.verdict
        judged[label] = inc
        escalating += bool(inc.escalations)
    # Not vacuous: the planted techniques open escalations, so most of these are denied.
    assert verdicts["managed AdministratorAccess"] is Verdict.DENY
    assert verdicts["trust workload"] is Verdict.DENY
    assert verdicts["privesc.passrole-lambda"] is Verdict.DENY
    assert escalating >= 5, verdicts
    assert {c.rule.id for c in judged["sod from the change"].sod_conflicts} == {"SOD-CONFIG-MANAGE-VS-DISABLE"}
    # Not vacuous: the data grant reaches bucket objects (bucket policies asked per bucket); the demo's keys and secrets
    # were asked too (their key and secret policies keep them from the workload).
    data = judged["data behind resource policies"]
    assert data.actions_considered == 3 and "s3:GetObject" in {e.action for e in data.new_access}, data.new_access
    through = judged["assume a role trusting its account"]
    assert [(e.action, e.definite) for e in through.new_access] == [("sts:AssumeRole", True)]


def test_judgements_after_preload_are_the_full_rebuilds(demo: dict[str, Any]) -> None:
    """What ``preload(base)`` computes once per base snapshot (docs/change.md), and what judgements keep on the base
    graph for the next ones (the SoD holds of principals a change did not touch, asked of the base graph), changes no
    judgement: every change judged in turn over one preloaded base, each against the full rebuild's judgement made
    over another base without any of it."""
    snap: Snapshot = demo["snapshot"]
    warm = SnapshotBase(snap)
    preload(warm)
    cold: SnapshotBase = demo["base"]
    shared_holds = 0
    for label, who, what in _changes(demo):
        got = evaluate_grant(warm, who, what)
        assert _comparable(got) == _comparable(evaluate_grant(cold, who, what, full_build=True)), label
        shared_holds = len(warm.graph().cache.get("sod_holds", {}))
    # Not vacuous: the judgements kept holds on the preloaded base graph, and the SoD conflict only the change creates is
    # found (the subject's own holds are never taken from the base).
    assert shared_holds > 100, shared_holds
    assert {c.rule.id for c in evaluate_grant(warm, *next((w, x) for lbl, w, x in _changes(demo)
                                                          if lbl == "sod from the change")).sod_conflicts} == {
        "SOD-CONFIG-MANAGE-VS-DISABLE"}


def test_the_changed_graph_is_freed_without_the_cyclic_collector(demo: dict[str, Any]) -> None:
    """A judgement drops its changed graph when it ends: nothing in that graph may refer back to it (a reference
    cycle), or tens of thousands of its objects wait for Python's cyclic collector, which judgements keep off and
    which then pays for them in the next request (docs/benchmarks.md, "Change analysis")."""
    base: SnapshotBase = demo["base"]
    base_graph = base.graph()
    definite_acts(base_graph)  # the overlay derives its own from it (``AccessGraph.derive``)
    applied = apply_grant(base.snapshot, base.index, ExistingPrincipal(principal_arn=demo["requester"]),
                          InlinePolicyGrant(policy_document=_doc({"Effect": "Allow", "Action": "iam:PassRole",
                                                                   "Resource": "*"})))
    was_on = gc.isenabled()
    gc.disable()
    try:
        inc, reused = rebuild(base_graph, applied.snapshot)
        assert reused and inc.derive is not None
        assert definite_acts(inc) is not None  # derived through the overlay, while it lives
        ref = weakref.ref(inc)
        del inc
        assert ref() is None
    finally:
        if was_on:
            gc.enable()


def test_what_a_change_touches_is_read_from_the_two_snapshots(demo: dict[str, Any]) -> None:
    base: SnapshotBase = demo["base"]
    before, _ = materialise(base.snapshot)
    requester = demo["requester"]
    applied = apply_grant(base.snapshot, base.index, ExistingPrincipal(principal_arn=requester),
                          InlinePolicyGrant(policy_document=_doc({"Effect": "Allow", "Action": "s3:GetObject",
                                                                   "Resource": "*"})))
    found = touched(before, materialise(applied.snapshot)[0])
    assert found is not None
    assert found.principals == {requester} and found.resources == {requester}
    # A managed policy whose content changes touches every holder of it (directly or through a group).
    customer = next(a for a in demo["items"]["privesc.create-policy-version"]["resources"] if ":aws:policy/" not in a)
    changed = base.snapshot.model_copy(deep=True)
    holders = set()
    for acct in changed.accounts:
        for pol in acct.policies:
            if pol.arn == customer:
                next(v for v in pol.versions if v.is_default).document = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
        holders.update(p.arn for p in (*acct.users, *acct.roles) if customer in p.attached_managed_policies)
        holders.update(u.arn for u in acct.users for g in acct.groups
                       if g.name in u.groups and customer in g.attached_managed_policies)
    found = touched(before, materialise(changed)[0])
    assert found is not None and holders and holders <= found.principals and customer in found.resources
    # An SCP change reaches every principal of the organization: no reuse, a full build.
    org_changed = base.snapshot.model_copy(deep=True)
    assert org_changed.organization is not None and org_changed.organization.policies
    scp = next(p for p in org_changed.organization.policies if p.type == "SERVICE_CONTROL_POLICY")
    kept = scp.document["Statement"]
    scp.document = _doc(*(kept if isinstance(kept, list) else [kept]),
                        {"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"})
    assert touched(before, materialise(org_changed)[0]) is None
    graph, reused = rebuild(base.graph(), org_changed)
    assert not reused
    _same_graph(graph, build_graph(org_changed))


def test_applying_a_change_never_changes_the_base_snapshot(demo: dict[str, Any]) -> None:
    """The changed copy shares with the base every record it does not change (copy-on-write): each kind of change
    must write only its own copies, never the base's records."""
    base: SnapshotBase = demo["base"]
    before = base.snapshot.model_dump()
    for label, who, what in _changes(demo):
        applied = apply_grant(base.snapshot, base.index, who, what)
        assert applied.snapshot.model_dump() != before, label  # the change is there...
        assert base.snapshot.model_dump() == before, label  # ...and only in the copy


def test_a_resource_policy_edit_rebuilds_to_the_full_build(demo: dict[str, Any]) -> None:
    """Edges into a resource, and through it to the role its compute runs as, follow its resource policy: each
    resource with a policy of the workload's account opened to everyone (its service's actions), then to the
    workload alone, gives the full build's graph, reusing the base's decisions."""
    base: SnapshotBase = demo["base"]
    base_graph = base.graph()
    definite_acts(base_graph)  # the overlays derive theirs from it
    requester = demo["requester"]
    account_id = requester.split(":")[4]
    base_edges = sum(len(v) for v in base_graph.edges_by_kind.values())
    edited = 0
    changed_graph = 0
    for res in next(a for a in base.snapshot.accounts if a.account_id == account_id).resources:
        if res.policy is None:
            continue
        service = res.type.split(":", 1)[0]
        for principal in ({"AWS": "*"}, {"AWS": requester}):
            changed = base.snapshot.model_copy(deep=True)
            target = next(r for a in changed.accounts for r in a.resources if r.arn == res.arn)
            target.policy = _doc({"Effect": "Allow", "Principal": principal, "Action": f"{service}:*",
                                  "Resource": "*"})
            inc, reused = rebuild(base_graph, changed)
            full = build_graph(changed)
            assert reused, res.arn
            try:
                _same_graph(inc, full, _scope(base_graph, changed))
            except AssertionError as exc:
                raise AssertionError(f"{res.arn} opened to {principal}: the incremental graph differs") from exc
            edited += 1
            changed_graph += sum(len(v) for v in full.edges_by_kind.values()) != base_edges
    # Not vacuous: several resources edited, and some edits change the graph.
    assert edited >= 6 and changed_graph >= 1, (edited, changed_graph)


def _role(snap: Snapshot, name: str, account: str) -> Any:
    return next(r for a in snap.accounts if a.account_id == account for r in a.roles if r.name == name)


def _edits(demo: dict[str, Any]) -> list[tuple[str, Snapshot]]:
    """Changes whose edges cross accounts, or that remove records: what restricting the rules to the touched
    accounts must still get right (an edge is recomputed when its source, target or item is of such an account)."""
    base: Snapshot = demo["base"].snapshot
    requester: str = demo["requester"]
    home = requester.split(":")[4]
    stackset = next(c for a in base.accounts for c in a.compute if c.kind == "cloudformation_stackset")
    management = stackset.arn.split(":")[4]
    hub = next(r for a in base.accounts for r in a.roles if r.name == "SecurityAuditHub")
    hub_account = hub.arn.split(":")[4]
    other = next(a.account_id for a in base.accounts
                 if a.account_id not in (home, management, hub_account) and a.resources and a.roles)
    out: list[tuple[str, Snapshot]] = []

    def edit(label: str) -> Snapshot:
        changed = base.model_copy(deep=True)
        out.append((label, changed))
        return changed

    # Into another account: its role now trusts the workload (the edge's source is outside the change).
    s = edit("another account's role trusts the workload")
    _role(s, hub.name, hub_account).trust_policy = _doc(
        {"Effect": "Allow", "Principal": {"AWS": requester}, "Action": "sts:AssumeRole"})
    # Two accounts at once: a role of a third account trusts the workload's account, which may assume anything.
    s = edit("cross-account assume granted on both sides")
    _role(s, "SecurityAudit", other).trust_policy = _doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{home}:root"}, "Action": "sts:AssumeRole"})
    _role(s, requester.rsplit("/", 1)[1], home).inline_policies.append(InlinePolicy(
        name="assume-anything", document=_doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})))
    # A resource of another account opened to the workload.
    s = edit("another account's resource policy names the workload")
    res = next(r for a in s.accounts if a.account_id == other for r in a.resources if r.policy is not None)
    res.policy = _doc({"Effect": "Allow", "Principal": {"AWS": requester}, "Action": f"{res.type.split(':')[0]}:*",
                       "Resource": "*"})
    # A StackSet (its item in the management account) no longer deploys to the workload's account, and an execution
    # role it reaches no longer trusts the administration role.
    s = edit("stackset instances changed")
    item = next(c for a in s.accounts for c in a.compute if c.arn == stackset.arn)
    item.attributes["instance_accounts"] = [a for a in item.attributes["instance_accounts"] if a != home]
    s = edit("stackset execution role's trust changed")
    _role(s, "AWSCloudFormationStackSetExecutionRole", home).trust_policy = _doc(
        {"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"})
    # Records removed: a role with edges in and out, and a user (its group membership goes too).
    s = edit("a role deleted")
    acct = next(a for a in s.accounts if a.account_id == home)
    acct.roles = [r for r in acct.roles if r.arn != demo["lambda_admin"]]
    s = edit("a user deleted")
    acct = next(a for a in s.accounts if a.users and a.groups)
    acct.users = acct.users[1:]
    # A customer managed policy's document: every holder's edges.
    s = edit("managed policy document rewritten")
    customer = next(a for a in demo["items"]["privesc.create-policy-version"]["resources"] if ":aws:policy/" not in a)
    pol = next(p for a in s.accounts for p in a.policies if p.arn == customer)
    next(v for v in pol.versions if v.is_default).document = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    # Identity Center alone (no account changes): a user joins a group it is not in.
    s = edit("Identity Center membership added")
    assert s.identity_center is not None
    ic = s.identity_center
    pair = next((u.user_id, g.group_id) for u in ic.users for g in ic.groups
                if not any(m.user_id == u.user_id and m.group_id == g.group_id for m in ic.memberships))
    ic.memberships.append(type(ic.memberships[0])(user_id=pair[0], group_id=pair[1]))
    return out


def test_changes_across_accounts_and_removals_rebuild_to_the_full_build(demo: dict[str, Any]) -> None:
    """Only edges whose source, target or item is of a touched account are computed again; these changes reach
    across accounts (trust and resource policies naming another account's principal, a StackSet deploying into other
    accounts), remove records or touch Identity Center only, and each gives the full build's graph. The base graph is
    left as it was (the changed graph shares its untouched adjacency)."""
    base: SnapshotBase = demo["base"]
    base_graph = base.graph()
    definite_acts(base_graph)  # the overlays derive theirs from it
    before = ({k: Counter(v) for k, v in base_graph.edges_by_kind.items()}, set(base_graph.g.edges(keys=True)),
              dict(base_graph.g.nodes(data=True)), {(u, v): list(w) for u, v, w in base_graph.acts.edges(data="ways")})
    differs = 0
    for label, changed in _edits(demo):
        inc, reused = rebuild(base_graph, changed)
        assert reused, label
        full = build_graph(changed)
        try:
            _same_graph(inc, full, _scope(base_graph, changed))
        except AssertionError as exc:
            raise AssertionError(f"{label}: the incremental graph differs from the full build") from exc
        differs += {k: Counter(v) for k, v in full.edges_by_kind.items()} != before[0]
    after = ({k: Counter(v) for k, v in base_graph.edges_by_kind.items()}, set(base_graph.g.edges(keys=True)),
             dict(base_graph.g.nodes(data=True)), {(u, v): list(w) for u, v, w in base_graph.acts.edges(data="ways")})
    assert after == before
    # Not vacuous: the edits change the graph.
    assert differs >= 7, differs


def test_a_few_principals_policies_read_alone_give_the_full_scans_answer(demo: dict[str, Any]) -> None:
    """SoD for one subject reads the policies of the principals it can act as only (``CandidateIndex.patterns_for``),
    not every principal's for each of its rules' actions: for every principal and every action the shipped SoD rules
    and the planted techniques name, what that reading finds is what the scan of all policies finds, in a fresh index
    and in one seeded from the base build over a changed snapshot."""
    from iamgraph.graph.candidates import CandidateIndex
    from iamgraph.query.sod import load_rules

    base: SnapshotBase = demo["base"]
    base_graph = base.graph()
    actions = sorted({a for rule in load_rules() for cap in rule.capabilities for a in cap.actions}
                     | {a for item in demo["items"].values() if item["id"].startswith("privesc.")
                        for a in item["actions"]})
    who = ExistingPrincipal(principal_arn=demo["requester"])
    applied = apply_grant(base.snapshot, base.index, who, InlinePolicyGrant(policy_document=_doc(
        {"Effect": "Allow", "Action": ["config:*", "iam:PassRole"], "Resource": "*"}), policy_name="more"))
    changed = SnapshotIndex(materialise(applied.snapshot)[0])
    # A seed that has read every one of these actions with the full scan first, as ``preload(base)`` has the base
    # graph's for the SoD rules' actions: a seeded index then takes the unchanged principals' answers from it.
    warm = CandidateIndex(base_graph.index)
    for action in actions:
        warm.principals_with(action)
    compared = 0
    for make in (lambda: CandidateIndex(base_graph.index),
                 lambda: CandidateIndex(changed, seed=base_graph.ctx.candidates,
                                        stale=frozenset({demo["requester"]})),
                 lambda: CandidateIndex(changed, seed=warm, stale=frozenset({demo["requester"]}))):
        alone, scanned = make(), make()
        for action in actions:
            found = {p: alone.patterns_for(p, action) for p in alone.statements}
            full = scanned.principals_with(action)
            assert found == {p: full.get(p, ()) for p in scanned.statements}, action
            compared += sum(1 for v in found.values() if v)
    assert compared > 100  # not vacuous: many principals hold some of these actions
