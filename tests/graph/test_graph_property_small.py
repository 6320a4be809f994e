"""who-can against brute force on random small snapshots with S3 Block Public Access, unread policies
and conditional routes: the holders are exactly the principals the engine allows one by one, a bucket
with RestrictPublicBuckets on has no public or outside-account holder, an unread policy is named,
and a principal's verdict does not depend on ``--paths``."""

from __future__ import annotations

from typing import Any

from graphsnap import OUTSIDE, A, SnapBuilder, allow
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgraph.eval import Mode
from iamgraph.graph import build_graph
from iamgraph.graph.rules.assume import PUBLIC, external_node
from iamgraph.query import who_can
from iamgraph.query.who_can import direct_holders

BUCKET = "arn:aws:s3:::data"
OBJ = BUCKET + "/k"
R = f"arn:aws:iam::{A}:role/"
MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}

_STATEMENTS = {
    "public": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": BUCKET + "/*"},
    "outside": {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"}, "Action": "s3:GetObject",
                "Resource": BUCKET + "/*"},
    "role0": {"Effect": "Allow", "Principal": {"AWS": R + "r0"}, "Action": "s3:GetObject", "Resource": BUCKET + "/*"},
}
_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@st.composite
def snapshots(draw: Any) -> tuple[Any, bool, bool, bool]:
    b = SnapBuilder()
    stmts = draw(st.lists(st.sampled_from(sorted(_STATEMENTS)), unique=True, max_size=3))
    unread = draw(st.booleans())
    policy = {"Version": "2012-10-17", "Statement": [_STATEMENTS[s] for s in stmts]} if stmts and not unread else None
    bucket_bpa = {f: draw(st.booleans()) for f in _FLAGS} if draw(st.booleans()) else None
    account_bpa = {f: draw(st.booleans()) for f in _FLAGS} if draw(st.booleans()) else None
    b.resource(BUCKET, "s3:bucket", policy, **({"public_access_block": bucket_bpa} if bucket_bpa else {}))
    if unread:
        b.accounts[A].resources[0] = b.accounts[A].resources[0].model_copy(update={"policy_unknown": True})
    b.accounts[A].public_access_block = account_bpa
    n = draw(st.integers(min_value=1, max_value=4))
    for i in range(n):
        docs = []
        if draw(st.booleans()):
            docs.append(allow("s3:GetObject", BUCKET + "/*", **({"Condition": MFA} if draw(st.booleans()) else {})))
        for j in range(n):
            if j != i and draw(st.integers(0, 3)) == 0:
                docs.append(allow("sts:AssumeRole", R + f"r{j}", **({"Condition": MFA} if draw(st.booleans()) else {})))
        b.role(f"r{i}", *docs)
    restrict = any(x is not None and x["RestrictPublicBuckets"] for x in (bucket_bpa, account_bpa))
    public = "public" in stmts and not unread
    return b.build(), restrict, public, unread


@settings(max_examples=60, deadline=None)
@given(case=snapshots())
def test_who_can_on_small_snapshots(case: tuple[Any, bool, bool, bool]) -> None:
    snap, restrict, public, unread = case
    graph = build_graph(snap)
    ev = graph.ctx.ev
    brute = {p for p in graph.index.roles if ev.ask(p, "s3:GetObject", OBJ, mode=Mode.DISCOVERY).possible}
    holders = set(direct_holders(graph, OBJ, "s3:GetObject"))
    assert brute == holders & set(graph.index.roles)
    answers = [who_can(graph, OBJ, action="s3:GetObject", paths=k) for k in (1, 2, 4)]
    found = answers[0].principals()
    assert brute <= found
    if restrict or not public:
        # RestrictPublicBuckets: "public and cross-account access within any public bucket policy,
        # including non-public delegation to specific accounts, is blocked" (S3 user guide).
        assert PUBLIC not in found
    if restrict and public:
        assert external_node(OUTSIDE) not in found
    assert bool(answers[0].incomplete) == unread
    verdicts = [{a.principal: a.definite for a in ans.accesses} for ans in answers]
    assert verdicts[0] == verdicts[1] == verdicts[2]
