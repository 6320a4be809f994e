"""The memoised build (one engine decision shared by requests the engine would see identically) gives
exactly the edges of the plain build, one engine call per request.

The small cases are built so that a memo key missing a principal- or resource-specific input would
hand one principal's (or resource's) decision to another: a shared managed policy whose condition
reads a principal tag, a shared policy whose Resource pattern covers one function and not the other,
and a trust policy naming one user. Expected edges follow AWS's documented evaluation:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

from typing import Any

import pytest
from graphsnap import A, SnapBuilder, allow, service_trust, trust

from iamgraph.demo import DemoConfig, build_demo_snapshot
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
