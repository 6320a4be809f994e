"""what-can counts grants of resource-based policies (bucket, queue and key policies, KMS grants, role trust
policies), with AWS's rules for who they suffice for, and its direct answers equal asking the engine about
every resource of the snapshot and every action that applies to it.

AWS policy evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
within one account an Allow in the identity-based *or* the resource-based policy is enough, but a resource
policy naming an IAM role's ARN is still limited by the role's permissions boundary, and naming the account
(``arn:aws:iam::ACCOUNT:root``) only delegates to identity policies. Across accounts both the identity
policy and the resource policy must allow
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
A KMS key is used only when its key policy (or a grant) allows it; a key policy naming the account root
delegates to IAM policies (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html,
https://docs.aws.amazon.com/kms/latest/developerguide/grants.html).
"""

from __future__ import annotations

import json
from typing import Any

from graphsnap import A, B, SnapBuilder, allow, trust

from iamgraph.catalog import get_catalog
from iamgraph.eval import Mode
from iamgraph.graph import AccessGraph, build_graph
from iamgraph.graph.candidates import resource_matches
from iamgraph.query.incomplete import unknown_policies
from iamgraph.query.what_can import Permission, what_can, what_can_incomplete
from iamgraph.query.who_can import resolve_actions

LOGS = "arn:aws:s3:::logs"
BDATA = "arn:aws:s3:::b-data"
QUEUE = f"arn:aws:sqs:us-east-1:{A}:jobs"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
R = f"arn:aws:iam::{A}:role/"
WRITER, LIMITED, READER = R + "writer", R + "limited", f"arn:aws:iam::{B}:role/reader"
ALICE = f"arn:aws:iam::{A}:user/alice"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _grant(principal: Any, actions: str | list[str], resource: str | list[str], effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": actions, "Resource": resource}


def _snapshot() -> AccessGraph:
    b = SnapBuilder()
    boundary = b.managed("s3-only", allow("s3:*"))
    b.role("writer", allow(["kms:Encrypt", "s3:ListBucket"], [KEY, BDATA]))
    b.role("limited", boundary=boundary)
    b.user("alice")
    b.role("reader", allow(["s3:GetObject", "sqs:SendMessage", "kms:Decrypt"], [LOGS + "/*", QUEUE, KEY]), acct=B)
    # alice may assume "limited": its trust policy names her (no identity Allow needed in the same account).
    b.accounts[A].roles[1] = b.accounts[A].roles[1].model_copy(update={"trust_policy": trust({"AWS": ALICE})})
    b.resource(LOGS, "s3:bucket", _doc(
        _grant({"AWS": WRITER}, "s3:PutObject", LOGS + "/*"),
        _grant({"AWS": f"arn:aws:iam::{B}:root"}, "s3:GetObject", LOGS + "/*"),
        _grant({"AWS": f"arn:aws:iam::{A}:root"}, ["s3:GetObject", "s3:GetBucketTagging"], [LOGS, LOGS + "/*"]),
        _grant({"AWS": LIMITED}, ["s3:ListBucket", "s3:DeleteObject"], [LOGS, LOGS + "/*"]),
        _grant({"AWS": ALICE}, "s3:*", [LOGS, LOGS + "/*"]),
        _grant({"AWS": ALICE}, "s3:DeleteBucket", LOGS, effect="Deny"),
    ))
    b.resource(BDATA, "s3:bucket", _doc(_grant({"AWS": f"arn:aws:iam::{A}:root"}, "s3:ListBucket", BDATA)), acct=B)
    b.resource(QUEUE, "sqs:queue", _doc(
        _grant({"AWS": READER}, ["sqs:SendMessage", "sqs:ReceiveMessage"], QUEUE),
        _grant({"AWS": ALICE}, "sqs:*", QUEUE),
    ))
    b.resource(KEY, "kms:key", _doc(
        _grant({"AWS": f"arn:aws:iam::{A}:root"}, "kms:*", "*"),
        _grant({"AWS": LIMITED}, "kms:Encrypt", "*"),
    ), grants=[{"GrantId": "g-1", "KeyId": KEY, "GranteePrincipal": READER, "Operations": ["Decrypt"]}])
    return build_graph(b.build())


def _universe(graph: AccessGraph) -> dict[str, frozenset[str]]:
    """Every resource of the snapshot (a bucket's objects as ``bucket/*``, roles for their ``sts:`` actions)
    with the catalog actions that apply to it."""
    cat = get_catalog()
    out: dict[str, frozenset[str]] = {}
    for arn, res in graph.index.resources.items():
        out[arn] = frozenset(resolve_actions(arn, any_action=True))
        if res.type == "s3:bucket":
            out[arn + "/*"] = frozenset(resolve_actions(arn + "/*", any_action=True))
    sts = frozenset(cat.actions_of("sts"))
    for arn in graph.index.roles:
        out[arn] = sts | frozenset(resolve_actions(arn, any_action=True))
    return out


def _brute(graph: AccessGraph, principal: str, universe: dict[str, frozenset[str]]) -> set[tuple[str, str]]:
    ev = graph.ctx.ev
    return {(act, res) for res, acts in universe.items() for act in acts
            if ev.ask(principal, act, res, mode=Mode.DISCOVERY).possible}


def _answered(perms: list[Permission], principal: str, universe: dict[str, frozenset[str]]) -> set[tuple[str, str]]:
    return {(act, res) for p in perms if p.via == principal and p.path.length == 0 for act in p.actions
            for res, acts in universe.items() if act in acts and resource_matches(p.resource, res)}


def test_what_can_equals_the_engine_over_every_resource_and_action() -> None:
    graph = _snapshot()
    universe = _universe(graph)
    principals = sorted([*graph.index.users, *graph.index.roles])
    assert len(principals) == 4
    for p in principals:
        brute = _brute(graph, p, universe)
        found = _answered(what_can(graph, p), p, universe)
        assert found == brute, (p, sorted(found ^ brute))


def test_resource_policy_grants_follow_the_same_and_cross_account_rules() -> None:
    graph = _snapshot()
    universe = _universe(graph)
    got = {p: _answered(what_can(graph, p), p, universe) for p in (WRITER, LIMITED, READER, ALICE)}
    # Same account: the bucket policy naming the role is enough, with no identity Allow.
    assert ("s3:PutObject", LOGS + "/*") in got[WRITER]
    # Same account: naming the account root only delegates to identity policies, which grant nothing here.
    assert ("s3:GetObject", LOGS + "/*") not in got[WRITER]
    assert ("s3:GetBucketTagging", LOGS) in got[ALICE]  # named by ARN (s3:*), not only through the account
    # A role named by ARN is still limited by its permissions boundary: s3 passes, kms:Encrypt does not.
    assert ("s3:DeleteObject", LOGS + "/*") in got[LIMITED] and ("s3:ListBucket", LOGS) in got[LIMITED]
    assert ("kms:Encrypt", KEY) not in got[LIMITED]
    # Cross-account: both sides must allow. reader's identity policy and the bucket policy naming its account.
    assert ("s3:GetObject", LOGS + "/*") in got[READER]
    assert ("sqs:SendMessage", QUEUE) in got[READER]
    assert ("sqs:ReceiveMessage", QUEUE) not in got[READER]  # the queue policy allows it; reader's account does not
    assert ("s3:ListBucket", BDATA) in got[WRITER]  # B's bucket names account A; writer's identity allows it
    assert ("s3:ListBucket", BDATA) not in got[ALICE]
    # KMS: a grant serves its grantee (with reader's own Allow across accounts); the key policy's root
    # statement delegates to writer's identity policy.
    assert ("kms:Decrypt", KEY) in got[READER]
    assert ("kms:Encrypt", KEY) in got[WRITER] and ("kms:Decrypt", KEY) not in got[WRITER]
    # A user named by the queue and bucket policies in its own account; the bucket policy's Deny wins.
    assert ("sqs:DeleteQueue", QUEUE) in got[ALICE]
    assert ("s3:DeleteObject", LOGS + "/*") in got[ALICE] and ("s3:DeleteBucket", LOGS) not in got[ALICE]
    # A trust policy naming alice lets her assume the role without an identity Allow.
    assert ("sts:AssumeRole", LIMITED) in got[ALICE]


def test_what_can_names_every_resource_whose_policy_is_unknown() -> None:
    graph = _snapshot()
    assert what_can_incomplete(graph) == ()
    snap = graph.index.snapshot
    acct = next(a for a in snap.accounts if a.account_id == A)
    i = next(i for i, r in enumerate(acct.resources) if r.arn == QUEUE)
    acct.resources[i] = acct.resources[i].model_copy(update={"policy": None, "policy_unknown": True})
    graph = build_graph(snap)
    notes = what_can_incomplete(graph)
    assert [n.resource for n in notes] == [QUEUE] == list(unknown_policies(graph))
    assert ("sqs:SendMessage", QUEUE) not in _answered(what_can(graph, READER), READER, _universe(graph))


TABLE = f"arn:aws:dynamodb:us-east-1:{A}:table/orders"
REGION = {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from iamgraph.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_what_can_region_decides_region_conditions_like_who_can(tmp_path: Any) -> None:
    """``--region`` supplies aws:RequestedRegion: a grant conditioned on it (identity policy, bucket policy or a
    hop of the path) is unconditional in that region and gone in another; the rest stays as it was."""
    from iamgraph.snapshot import write_snapshot

    b = SnapBuilder()
    b.user("alice", allow("sts:AssumeRole", R + "hop"), allow("sqs:SendMessage", QUEUE, Condition=REGION))
    b.role("hop", allow("dynamodb:GetItem", TABLE), trust_doc=trust({"AWS": ALICE}, Condition=REGION))
    b.resource(LOGS, "s3:bucket", _doc({**_grant({"AWS": ALICE}, "s3:PutObject", LOGS + "/*"), "Condition": REGION}))
    b.resource(QUEUE, "sqs:queue", None)
    b.resource(KEY, "kms:key", None)
    acct = b.accounts[A]
    acct.resources[-1] = acct.resources[-1].model_copy(update={"policy_unknown": True})
    snap = tmp_path / "s.json"
    write_snapshot(b.build(), snap)
    base = ["what-can", "-s", str(snap), "-p", ALICE, "--json"]

    def answer(*extra: str) -> dict[str, Any]:
        res = _cli(*base, *extra)
        assert res.exit_code == 0, res.output
        doc: dict[str, Any] = json.loads(res.output)
        return doc

    def perms(doc: dict[str, Any]) -> dict[tuple[str, str], bool]:
        return {(a, p["resource"]): p["conditional"] for p in doc["permissions"] for a in p["actions"]}

    every, inside, outside = answer(), answer("--region", "us-east-1"), answer("--region", "eu-west-1")
    wanted = {("sqs:SendMessage", QUEUE), ("s3:PutObject", LOGS + "/*"), ("dynamodb:GetItem", TABLE)}
    assert all(perms(every)[w] for w in wanted)  # each waits on the region
    assert all(not perms(inside)[w] for w in wanted)
    assert not wanted & set(perms(outside))
    assert not any(c["key"] == "aws:RequestedRegion" for p in inside["permissions"] for t in p["conditions"] for c in t)
    assert inside["notes"] == ["aws:RequestedRegion = us-east-1: conditions on it decided"]
    for doc in (every, inside, outside):
        assert [x["resource"] for x in doc["incomplete"]] == [KEY]
    text = _cli("what-can", "-s", str(snap), "-p", ALICE)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "incomplete: 1 resource with an unknown policy" in lines[0]
    assert any(ln.startswith(f"note: incomplete: {KEY}") for ln in lines)


def test_a_key_action_on_a_pattern_rests_on_each_keys_own_policy() -> None:
    """An identity policy allowing ``kms:Decrypt`` on ``*`` lets the role use no key whose key policy does not
    allow it (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html: no principal has any
    permission to a KMS key unless the key policy allows it). The engine, asked about the pattern, reads no key
    policy: what-can must say the row is conditional on that, and stay definite on a key it asked about."""
    b = SnapBuilder()
    b.role("wild", allow(["kms:Decrypt", "kms:ListKeys", "s3:ListAllMyBuckets"], "*"))
    b.role("named", allow("kms:Decrypt", KEY))
    b.resource(KEY, "kms:key", _doc(_grant({"AWS": f"arn:aws:iam::{A}:root"}, "kms:*", "*")))
    graph = build_graph(b.build())
    wild = {(p.resource, a): p for p in what_can(graph, R + "wild") for a in p.actions}
    decrypt = wild[("*", "kms:Decrypt")]
    assert decrypt.conditional and any("key policy" in a for a in decrypt.assumptions)
    # Actions with no resource of their own (ListKeys) and other services are not touched.
    assert not wild[("*", "kms:ListKeys")].conditional and not wild[("*", "s3:ListAllMyBuckets")].conditional
    named = {(p.resource, a): p for p in what_can(graph, R + "named") for a in p.actions}
    assert not named[(KEY, "kms:Decrypt")].conditional and not named[(KEY, "kms:Decrypt")].assumptions
