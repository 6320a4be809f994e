"""The memoised build (one engine decision shared by requests the engine would see identically) gives
exactly the edges of the plain build, one engine call per request.

The small cases are built so that a memo key missing a principal- or resource-specific input would
hand one principal's (or resource's) decision to another: a shared managed policy whose condition
reads a principal tag, a shared policy whose Resource pattern covers one function and not the other,
and a trust policy naming one user. Expected edges follow AWS's documented evaluation:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from graphsnap import A, SnapBuilder, allow, service_trust, trust

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.errors import IamGraphError
from iamgraph.graph import AccessGraph, EdgeKind, build_graph
from iamgraph.snapshot.model import Snapshot

ALICE = f"arn:aws:iam::{A}:user/alice"
BOB = f"arn:aws:iam::{A}:user/bob"


def _edges(g: AccessGraph) -> list[tuple[str, str, Any]]:
    return [(u, v, d["edge"]) for u, v, d in g.g.edges(data=True)]


def _both(snap: Snapshot, **kw: Any) -> tuple[AccessGraph, AccessGraph]:
    plain = build_graph(snap, memoise=False, **kw)
    memo = build_graph(snap, memoise=True, **kw)
    assert _edges(memo) == _edges(plain)
    assert memo.notes == plain.notes
    assert memo.ctx.skipped == plain.ctx.skipped
    assert plain.ctx.stats.memo_hits == 0
    return plain, memo


@pytest.mark.parametrize("admin_shortcut", [True, False])
def test_memoised_build_equals_plain_on_demo_org(admin_shortcut: bool) -> None:
    plain, memo = _both(build_demo_snapshot(DemoConfig()), admin_shortcut=admin_shortcut)
    # The memo was used (else this compares the plain build with itself) and saved engine calls.
    assert memo.ctx.stats.memo_hits > 0
    assert memo.ctx.stats.engine_calls + memo.ctx.stats.memo_hits == plain.ctx.stats.engine_calls


def test_memoised_build_equals_plain_on_larger_generated_org() -> None:
    snap = build_demo_snapshot(DemoConfig(accounts=8, roles_per_account=40, with_activity=False))
    _, memo = _both(snap)
    assert memo.ctx.stats.memo_hits > 0


def test_shared_policy_reading_a_principal_tag_is_not_shared() -> None:
    """Same managed policy (same id, same content) on two users; its condition reads the caller's
    tag. Alice (team=ops) may create keys for carol; bob (team=dev) may not."""
    b = SnapBuilder()
    pol = b.managed("keys-for-ops", allow("iam:CreateAccessKey", Condition={
        "StringEquals": {"aws:PrincipalTag/team": "ops"}}))
    b.user("alice", managed=[pol], tags={"team": "ops"})
    b.user("bob", managed=[pol], tags={"team": "dev"})
    carol = b.user("carol")
    _, memo = _both(b.build(), admin_shortcut=False)
    sources = {e.source for e in memo.edges((EdgeKind.CREATE_ACCESS_KEY,)) if e.target == carol}
    assert ALICE in sources and BOB not in sources


def test_shared_policy_with_resource_pattern_is_decided_per_resource() -> None:
    """One policy allows updating every function but denies prod-* (an explicit Deny wins): the
    dev function's role is reachable, the prod function's is not, although both requests share
    the policy set and pass the candidate index (the Allow covers both)."""
    b = SnapBuilder()
    fn = f"arn:aws:lambda:us-east-1:{A}:function:"
    steps = ["lambda:UpdateFunctionCode", "lambda:InvokeFunction"]
    doc = allow(steps)
    doc["Statement"].append({"Effect": "Deny", "Action": steps, "Resource": f"{fn}prod-*"})
    pol = b.managed("not-prod-lambda", doc)
    b.user("alice", managed=[pol])
    b.user("bob", managed=[pol])
    dev_role = b.role("dev-fn-role", trust_doc=service_trust("lambda.amazonaws.com"))
    prod_role = b.role("prod-fn-role", trust_doc=service_trust("lambda.amazonaws.com"))
    b.compute(f"{fn}dev-x", "lambda_function", role=dev_role)
    b.compute(f"{fn}prod-y", "lambda_function", role=prod_role)
    _, memo = _both(b.build(), admin_shortcut=False)
    pairs = {(e.source, e.target) for e in memo.edges((EdgeKind.TAKEOVER_COMPUTE,))}
    assert {(ALICE, dev_role), (BOB, dev_role)} <= pairs
    assert not {(ALICE, prod_role), (BOB, prod_role)} & pairs


def test_trust_policy_naming_one_user_is_matched_per_principal() -> None:
    """The trust policy trusts the account (so both users, holding the same identity Allow, are
    candidates) and explicitly denies bob by name: alice can assume the role, bob cannot."""
    b = SnapBuilder()
    pol = b.managed("assume-any", allow("sts:AssumeRole"))
    b.user("alice", managed=[pol])
    b.user("bob", managed=[pol])
    doc = trust({"AWS": f"arn:aws:iam::{A}:root"})
    doc["Statement"].append({"Effect": "Deny", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"})
    role = b.role("named", trust_doc=doc)
    _, memo = _both(b.build(), admin_shortcut=False)
    sources = {e.source for e in memo.edges((EdgeKind.ASSUME_ROLE,)) if e.target == role}
    assert ALICE in sources and BOB not in sources


def test_policy_reading_resource_tags_is_decided_by_the_tags_each_resource_has() -> None:
    """One policy lets its holders pass any role to Lambda except one tagged protected=true (a Deny conditioned on
    aws:ResourceTag/protected; an explicit Deny wins). The untagged role and the role with another tag read the
    condition alike (the tag known absent) and may share a decision; the protected one may not: both holders reach
    the first two and not the third.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html#access_tags_control-resources"""
    b = SnapBuilder()
    doc = allow(["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"])
    doc["Statement"].append({"Effect": "Deny", "Action": "iam:PassRole", "Resource": "*",
                             "Condition": {"StringEquals": {"aws:ResourceTag/protected": "true"}}})
    pol = b.managed("pass-unprotected", doc)
    b.user("alice", managed=[pol])
    b.user("bob", managed=[pol])
    plain_role = b.role("untagged", trust_doc=service_trust("lambda.amazonaws.com"))
    team_role = b.role("team-tagged", trust_doc=service_trust("lambda.amazonaws.com"), tags={"team": "x"})
    guarded = b.role("guarded", trust_doc=service_trust("lambda.amazonaws.com"), tags={"protected": "true"})
    _, memo = _both(b.build(), admin_shortcut=False)
    pairs = {(e.source, e.target) for e in memo.edges((EdgeKind.PASS_ROLE_TO_COMPUTE,))}
    assert {(ALICE, plain_role), (BOB, plain_role), (ALICE, team_role), (BOB, team_role)} <= pairs
    assert not {(ALICE, guarded), (BOB, guarded)} & pairs
    assert memo.ctx.stats.memo_hits > 0


def test_a_resource_whose_tags_are_unknown_is_not_decided_like_one_known_untagged() -> None:
    """A Deny on invoking functions tagged protected=true. One function is in the snapshot's resources without
    tags, so the tag is known absent and the Deny cannot apply: taking it over is definite. The other is known only
    as compute, its tags unknown: the Deny may apply, so invoking it (the takeover's trigger) stays conditional on
    the tag. The two requests share the policy set, the Resource patterns and the ARN's shape; only what the
    snapshot knows of their tags tells them apart."""
    b = SnapBuilder()
    fn = f"arn:aws:lambda:us-east-1:{A}:function:"
    doc = allow(["lambda:UpdateFunctionCode", "lambda:InvokeFunction"])
    doc["Statement"].append({"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": "*",
                             "Condition": {"StringEquals": {"aws:ResourceTag/protected": "true"}}})
    pol = b.managed("update-and-invoke", doc)
    b.user("alice", managed=[pol])
    known_role = b.role("known-fn-role", trust_doc=service_trust("lambda.amazonaws.com"))
    unknown_role = b.role("unknown-fn-role", trust_doc=service_trust("lambda.amazonaws.com"))
    b.resource(f"{fn}known", "lambda:function")
    b.compute(f"{fn}known", "lambda_function", role=known_role)
    b.compute(f"{fn}unknown", "lambda_function", role=unknown_role)
    _, memo = _both(b.build(), admin_shortcut=False)
    edges = {e.target: e for e in memo.edges((EdgeKind.TAKEOVER_COMPUTE,))
             if e.source == ALICE and e.reason.note == "lambda-update-code"}
    assert not edges[known_role].conditional
    assert edges[unknown_role].conditional


def test_asking_beside_the_graph_is_the_evaluators_answer_for_every_request() -> None:
    """``BuildContext.ask`` (how an access request's new-access diff asks) shares one policy set among a principal's
    requests on the resources of one account that hold no policy (roles asked with other than an sts: call, users,
    functions known only as compute, ARNs the snapshot does not hold), and reads each one's tags from what the
    evaluator knows of it. Every answer must still be ``SnapshotEvaluator.ask``'s in discovery mode, here for every
    principal, action and resource of a snapshot built so that a key too coarse would hand one resource's decision to
    another: a Deny on roles and functions tagged protected=true (an explicit Deny wins; a tag the snapshot knows to be
    absent cannot match, a tag of an ARN it does not hold may: conditional), an RCP of account B denying everything
    on resources tagged locked=true (secrets it does not hold among them), an SCP of account A guarding roles named scp-guarded-*, a principal-tag
    condition, a trust policy naming one user, and a bucket policy with its objects.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    from graphsnap import B

    from iamgraph.eval import Mode
    from iamgraph.snapshot.model import OrgPolicy

    b = SnapBuilder()
    doc = allow(["iam:PassRole", "lambda:InvokeFunction", "sts:AssumeRole", "s3:GetObject", "iam:GetUser",
                 "secretsmanager:GetSecretValue"])
    doc["Statement"] += [
        {"Effect": "Deny", "Action": ["iam:PassRole", "lambda:InvokeFunction"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/protected": "true"}}},
        {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ops"}}},
    ]
    pol = b.managed("shared", doc)
    pol_b = b.managed("shared-b", doc, acct=B)
    b.user("alice", managed=[pol], tags={"team": "ops"})
    b.user("bob", managed=[pol])
    carol = b.user("carol", managed=[pol_b], acct=B)
    roles = [b.role("plain", trust_doc=service_trust("lambda.amazonaws.com")),
             b.role("guarded", trust_doc=service_trust("lambda.amazonaws.com"), tags={"protected": "true"}),
             b.role("teamed", trust_doc=trust({"AWS": ALICE}), tags={"team": "x"}),
             b.role("scp-guarded-1", trust_doc=service_trust("lambda.amazonaws.com")),
             b.role("plain-b", acct=B, trust_doc=trust({"AWS": ALICE})),
             b.role("locked-b", acct=B, trust_doc=trust({"AWS": ALICE}), tags={"locked": "true"}),
             f"arn:aws:iam::{A}:role/ghost", f"arn:aws:iam::{B}:role/ghost"]
    fn = "arn:aws:lambda:us-east-1:{}:function:{}"
    functions = [b.compute(fn.format(A, "only-compute"), "lambda_function"),
                 b.compute(fn.format(B, "only-compute-b"), "lambda_function", acct=B),
                 b.resource(fn.format(A, "known-protected"), "lambda:function", tags={"protected": "true"})]
    bucket = b.resource("arn:aws:s3:::shared-data", "s3:bucket", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::shared-data/*"}]}, acct=B)
    b.scp({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:PassRole",
                                                    "Resource": f"arn:aws:iam::{A}:role/scp-guarded-*"}]}, A)
    b.org_policies.append(OrgPolicy(id="p-rcp-locked", name="locked", type="RESOURCE_CONTROL_POLICY", targets=[B],
                                    document={"Version": "2012-10-17", "Statement": [{
                                        "Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
                                        "Condition": {"StringEquals": {"aws:ResourceTag/locked": "true"}}}]}))
    snapshot = b.build()
    graph = build_graph(snapshot)
    ctx = graph.ctx
    # Secrets the snapshot does not hold: no resource policy, tags unknown; in B the RCP may deny (Secrets Manager
    # honours RCPs).
    keys = [f"arn:aws:secretsmanager:us-east-1:{a}:secret:ghost" for a in (A, B)]
    resources = [*roles, *functions, *keys, bucket + "/report.csv", ALICE, BOB, carol]
    answers: dict[tuple[str, str, str], Any] = {}
    for principal in (ALICE, BOB, carol):
        for action in ("iam:PassRole", "lambda:InvokeFunction", "sts:AssumeRole", "s3:GetObject",
                       "iam:CreateAccessKey", "iam:GetUser", "secretsmanager:GetSecretValue"):
            for resource in resources:
                got = ctx.ask(principal, action, resource)
                want = ctx.ev.ask(principal, action, resource, mode=Mode.DISCOVERY)
                # ``unsupported_keys`` is left out: the evaluator fills the resource's tags into the context itself and
                # the engine then lists those the action does not support (iam:ResourceTag/* for lambda: calls), a
                # note the memo shares between resources whose other tags differ (as before this test; verdicts do
                # not read it).
                assert replace(got, unsupported_keys=()) == replace(want, unsupported_keys=()), (
                    principal, action, resource)
                answers[(principal, action, resource)] = got
    # ``ask_each`` (one principal and action over many resources, as the diff asks), on a graph of its own so no answer
    # is already cached: resources it finds alike get the first one's answer without asking.
    each = build_graph(snapshot).ctx
    for (principal, action), group in itertools.groupby(answers, key=lambda k: k[:2]):
        for resource, got in each.ask_each(principal, action, [k[2] for k in group]):
            assert not isinstance(got, IamGraphError)
            want = answers[(principal, action, resource)]
            assert replace(got, unsupported_keys=()) == replace(want, unsupported_keys=()), (principal, action, resource)
    # Not vacuous: the answers the cases are about, and the shared policy sets were used.
    assert answers[(ALICE, "iam:PassRole", roles[0])].allowed
    assert not answers[(ALICE, "iam:PassRole", roles[1])].possible  # tagged protected: the Deny applies
    assert answers[(ALICE, "iam:PassRole", roles[6])].conditional  # a role the snapshot does not hold: tags unknown
    assert not answers[(ALICE, "iam:PassRole", roles[3])].possible  # the SCP
    # RCPs apply to STS and Secrets Manager, not to IAM's own calls.
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html
    assert answers[(carol, "iam:PassRole", roles[5])].allowed and answers[(carol, "iam:PassRole", roles[4])].allowed
    assert not answers[(ALICE, "sts:AssumeRole", roles[5])].possible and answers[(ALICE, "sts:AssumeRole", roles[4])].allowed
    assert answers[(carol, "secretsmanager:GetSecretValue", keys[1])].conditional and answers[(ALICE, "secretsmanager:GetSecretValue", keys[0])].allowed
    assert answers[(ALICE, "lambda:InvokeFunction", functions[0])].conditional
    assert not answers[(ALICE, "lambda:InvokeFunction", functions[2])].possible
    assert answers[(ALICE, "iam:CreateAccessKey", BOB)].allowed and not answers[(BOB, "iam:CreateAccessKey", BOB)].possible
    assert any(isinstance(k[1], tuple) for k in ctx._policy_sets)


@pytest.mark.parametrize("alice_first", [True, False])
def test_a_shared_decision_names_only_the_askers_own_unsupported_keys(alice_first: bool) -> None:
    """Two users hold one managed policy allowing sqs:SendMessage; alice's request supplies ``s3:prefix``, a key the
    Service Authorization Reference does not list for sqs:SendMessage (so AWS's request never carries it), bob's
    supplies none. No policy reads the key, so both requests share one memo entry; each decision must still name
    its own unsupported keys: alice's ``s3:prefix``, bob's nothing, whichever was asked first."""
    from iamgraph.graph.context import BuildContext
    from iamgraph.snapshot.index import SnapshotIndex

    b = SnapBuilder()
    pol = b.managed("send", allow("sqs:SendMessage"))
    alice = b.user("alice", managed=[pol])
    bob = b.user("bob", managed=[pol])
    snap = b.build()
    queue = f"arn:aws:sqs:us-east-1:{A}:orders"
    asks = [(alice, {"s3:prefix": "a/"}), (bob, None)]
    if not alice_first:
        asks.reverse()
    answers = {}
    for memoise in (False, True):
        ctx = BuildContext(SnapshotIndex(snap), memoise=memoise)
        got = {who: ctx.check("test", who, "sqs:SendMessage", queue, context) for who, context in asks}
        assert ctx.stats.memo_hits == (1 if memoise else 0)  # shared, or this test shows nothing
        answers[memoise] = got
    for got in answers.values():
        assert got[alice] is not None and got[bob] is not None
        assert got[alice].unsupported_keys == ("s3:prefix",)
        assert got[bob].unsupported_keys == ()
    assert answers[True] == answers[False]
    # Asked beside the graph (no context) after the memo holds alice's request: no unsupported keys either.
    ctx = BuildContext(SnapshotIndex(snap), memoise=True)
    ctx.check("test", alice, "sqs:SendMessage", queue, {"s3:prefix": "a/"})
    assert ctx.ask(bob, "sqs:SendMessage", queue).unsupported_keys == ()


def test_rewritten_trust_is_decided_per_caller_and_role_where_the_engine_reads_them_apart() -> None:
    """Rewriting a role's trust policy to name oneself, then assuming the role (UpdateAssumeRolePolicy): the rewritten
    policy names its caller, and the build asks the engine once per class of (caller, role) pairs that differ only by
    those names, crediting the statement to each role's own rewritten policy. One managed policy lets its holders
    rewrite any trust policy, but denies sts:AssumeRole on roles named guarded-*, on roles tagged locked=true, and to
    callers tagged team=dev (an explicit Deny wins over the trust policy's Allow; a same-account principal the trust
    names needs no identity Allow). So alice (user) and ops (role) reach the two plain roles, not the guarded or the
    locked one, and bob (team=dev) reaches none -- although all share the policy set and the rewrite's shape.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html"""
    b = SnapBuilder()
    doc = allow("iam:UpdateAssumeRolePolicy")
    doc["Statement"] += [
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{A}:role/guarded-*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/locked": "true"}}},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": "dev"}}},
    ]
    pol = b.managed("rewrite-trust", doc)
    b.user("alice", managed=[pol], tags={"team": "ops"})
    b.user("bob", managed=[pol], tags={"team": "dev"})
    ops = b.role("ops", managed=[pol], trust_doc=service_trust("ec2.amazonaws.com"), tags={"team": "ops"})
    plain = [b.role(n, trust_doc=service_trust("lambda.amazonaws.com")) for n in ("app-1", "app-2")]
    guarded = b.role("guarded-1", trust_doc=service_trust("lambda.amazonaws.com"))
    locked = b.role("locked-1", trust_doc=service_trust("lambda.amazonaws.com"), tags={"locked": "true"})
    _, memo = _both(b.build(), admin_shortcut=False)
    edges = list(memo.edges((EdgeKind.UPDATE_TRUST_THEN_ASSUME,)))
    pairs = {(e.source, e.target) for e in edges}
    reachable = {*plain, ops}
    assert pairs == {(c, r) for c in (ALICE, ops) for r in reachable if r != c}
    assert not {guarded, locked} & {t for _, t in pairs}
    for e in edges:
        # Each edge cites the rewritten trust policy of its own role, whichever pair the engine was asked about.
        trust_refs = [s.policy_id for s in e.statements if s.policy_type.value == "resource"]
        assert trust_refs == [f"{e.target}:rewritten-trust"]
    # The engine was asked fewer times than there were rewrites to judge: pairs were shared.
    asked = [k for k in memo.ctx._cache if k[0] == "what-if" and str(k[-1]).endswith(":rewritten-trust")]
    assert len(asked) == 14  # alice and bob: 5 roles each; ops: the 4 others
    assert 0 < len(memo.ctx._trust_memo) < len(asked)


def test_roles_whose_trust_policies_read_alike_share_an_outsiders_decision_but_not_their_tags() -> None:
    """Four roles hold the same trust policy: Lambda may assume the role when the role is tagged env=prod
    (aws:ResourceTag is the tag of the resource asked about, here the role). The service's question about each role
    is asked of the engine once per class of roles the policy reads alike and credited to each role's own trust
    policy: the two prod roles are reachable, the dev one and the untagged one (the tag known absent) are not.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag"""
    b = SnapBuilder()
    doc = service_trust("lambda.amazonaws.com")
    doc["Statement"][0]["Condition"] = {"StringEquals": {"aws:ResourceTag/env": "prod"}}
    prod = [b.role(f"prod-{i}", trust_doc=doc, tags={"env": "prod"}) for i in (1, 2)]
    dev = b.role("dev-1", trust_doc=doc, tags={"env": "dev"})
    bare = b.role("bare-1", trust_doc=doc)
    _, memo = _both(b.build(), admin_shortcut=False)
    edges = [e for e in memo.edges((EdgeKind.ASSUME_ROLE,)) if e.source == "lambda.amazonaws.com"]
    assert {e.target for e in edges} == set(prod)
    assert not {dev, bare} & {e.target for e in edges}
    for e in edges:
        assert [s.policy_id for s in e.statements] == [f"{e.target}:trust"]
    asked = [k for k in memo.ctx._cache if k[0] == "outsider" and k[1] == "lambda.amazonaws.com"]
    assert len(asked) == 4
    assert 0 < len(memo.ctx._outsider_memo) < len(asked)


def test_one_principals_questions_about_alike_targets_are_shared_and_unalike_ones_are_not() -> None:
    """One user may put an inline policy on every role of its account but those named admin-* (an explicit Deny
    wins) or tagged tier=core (a Deny conditioned on aws:ResourceTag). The build asks about each role in a row; the
    roles the policy reads alike (app-*, untagged or otherwise tagged) share the first one's answer, the others are
    decided on their own: alice can re-permission the app roles only.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    b = SnapBuilder()
    doc = allow("iam:PutRolePolicy")
    doc["Statement"] += [
        {"Effect": "Deny", "Action": "iam:PutRolePolicy", "Resource": f"arn:aws:iam::{A}:role/admin-*"},
        {"Effect": "Deny", "Action": "iam:PutRolePolicy", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/tier": "core"}}},
    ]
    b.user("alice", doc)
    apps = [b.role(f"app-{i}", tags={"tier": "edge"} if i % 2 else {}) for i in range(4)]
    admins = [b.role(f"admin-{i}") for i in range(2)]
    core = [b.role(f"core-{i}", tags={"tier": "core"}) for i in range(2)]
    _, memo = _both(b.build(), admin_shortcut=False)
    targets = {e.target for e in memo.edges((EdgeKind.GRANT_PERMISSIONS,)) if e.source == ALICE}
    assert targets == set(apps)
    assert not targets & {*admins, *core}
    # 8 roles in 4 classes (app untagged, app tagged tier=edge, admin-*, tier=core): 4 asked, 4 shared.
    assert (memo.ctx.stats.engine_calls, memo.ctx.stats.memo_hits) == (4, 4)
