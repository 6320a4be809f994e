"""The questions over small, hand-built snapshots: who-can, privesc, blast radius, exposure, sensitive, SoD, export."""

from __future__ import annotations

import io
import json

import networkx as nx
import pytest
from graphsnap import OUTSIDE, A, B, SnapBuilder, allow, deny, service_trust, trust
from typer.testing import CliRunner

from iamgraph.errors import InputError, NotFoundError
from iamgraph.graph import EdgeKind, build_graph
from iamgraph.graph.export import ExportFormat, export
from iamgraph.query import blast_radius, exposure, privesc, sensitive, sod, what_can, who_can
from iamgraph.query.sod import load_rules, parse_rules

U = f"arn:aws:iam::{A}:user/"
R = f"arn:aws:iam::{A}:role/"
BUCKET = "arn:aws:s3:::data"
OBJ = "arn:aws:s3:::data/report.csv"


def _chain() -> SnapBuilder:
    """alice -(MFA)-> hop -> reader; reader reads the bucket only from 10.0.0.0/8."""
    b = SnapBuilder()
    b.user("alice", allow("sts:AssumeRole", R + "hop", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    b.role("hop", allow("sts:AssumeRole", R + "reader"))
    b.role("reader", allow("s3:GetObject", BUCKET + "/*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    b.user("bystander", allow("s3:ListAllMyBuckets"))
    return b


def test_who_can_follows_chains_and_combines_conditions() -> None:
    g = build_graph(_chain().build())
    res = who_can(g, OBJ, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert set(by) == {U + "alice", R + "hop", R + "reader"}
    alice = by[U + "alice"]
    assert alice.path.nodes == (U + "alice", R + "hop", R + "reader")
    assert not alice.definite
    keys = {c.key.lower() for conj in alice.conditions for c in conj}
    assert keys == {"aws:multifactorauthpresent", "aws:sourceip"}  # every hop's condition, combined
    assert by[R + "reader"].how.value == "direct"
    assert by[U + "alice"].statements[0].policy_id.startswith(R + "reader")


def test_who_can_alternatives() -> None:
    b = _chain()
    b.role("hop2", allow("sts:AssumeRole", R + "reader"))
    b.accounts[A].users[0].inline_policies.append(
        b._inline([allow("sts:AssumeRole", R + "hop2")])[0].model_copy(update={"name": "second"}))
    g = build_graph(b.build())
    res = who_can(g, OBJ, action="s3:GetObject", paths=3)
    alice = next(a for a in res.accesses if a.principal == U + "alice")
    assert alice.path.length == 2 and len(alice.alternatives) == 1
    assert {alice.path.nodes[1], alice.alternatives[0].nodes[1]} == {R + "hop", R + "hop2"}
    assert alice.path.nodes[1] == R + "hop2"  # the definite path ranks first (no MFA condition on it)


def test_who_can_escalation_and_its_guardrail() -> None:
    b = SnapBuilder()
    b.user("selfish", allow("iam:PutUserPolicy", U + "selfish"))
    b.user("blocked", allow("iam:PutUserPolicy", U + "blocked"), acct=B)
    b.scp(deny("s3:*"), B)
    g = build_graph(b.build())
    res = who_can(g, OBJ, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert by[U + "selfish"].how.value == "escalation"
    assert by[U + "selfish"].holder.changes[0].reason.via == ("iam:PutUserPolicy",)
    assert f"arn:aws:iam::{B}:user/blocked" not in by  # the SCP still caps what it can grant itself


def test_who_can_resource_policy_takeover() -> None:
    b = SnapBuilder()
    b.resource(BUCKET, "s3:bucket", None)
    b.user("rewriter", allow("s3:PutBucketPolicy", BUCKET))
    g = build_graph(b.build())
    by = {a.principal: a for a in who_can(g, OBJ, action="s3:GetObject").accesses}
    assert by[U + "rewriter"].how.value == "resource-policy-takeover"


def test_who_can_outside_and_public() -> None:
    b = SnapBuilder()
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"}, "Action": "s3:GetObject",
         "Resource": BUCKET + "/*"},
    ]}
    b.resource(BUCKET, "s3:bucket", policy)
    g = build_graph(b.build())
    by = {a.principal: a for a in who_can(g, OBJ, action="s3:GetObject").accesses}
    ext = by[f"arn:aws:iam::{OUTSIDE}:root"]
    assert ext.assumptions and not ext.definite  # its own policies are unknown
    assert "*" not in by


def test_who_can_by_access_level_and_pattern() -> None:
    b = SnapBuilder()
    b.resource(BUCKET, "s3:bucket", None)
    b.resource("arn:aws:s3:::logs", "s3:bucket", None)
    b.user("lister", allow("s3:ListBucket", BUCKET))
    g = build_graph(b.build())
    res = who_can(g, "arn:aws:s3:::*", access_level="List")
    assert set(res.resources) == {BUCKET, "arn:aws:s3:::logs"}
    assert "s3:ListBucket" in res.actions
    hits = {(a.principal, a.resource) for a in res.accesses if a.action == "s3:ListBucket"}
    assert (U + "lister", BUCKET) in hits and (U + "lister", "arn:aws:s3:::logs") not in hits


def test_who_can_input_errors() -> None:
    g = build_graph(SnapBuilder().build())
    with pytest.raises(InputError, match="exactly one"):
        who_can(g, OBJ)
    with pytest.raises(InputError, match="not an ARN"):
        who_can(g, "bucket", action="s3:GetObject")
    with pytest.raises(InputError, match="no resource"):
        who_can(g, "arn:aws:s3:::nothing-*", action="s3:GetObject")


def test_privesc_two_principals_ranked() -> None:
    """alice can create keys for bob; bob can put a policy on alice: alice escalates across both."""
    b = SnapBuilder()
    b.user("alice", allow("iam:CreateAccessKey", U + "bob"))
    b.user("bob", allow("iam:PutUserPolicy", U + "alice"))
    b.user("carol", allow("s3:*"))
    g = build_graph(b.build())
    found = privesc(g)
    alice = [e for e in found if e.principal == U + "alice"]
    assert alice and alice[0].kind.value == "change-permissions"
    assert alice[0].changes[0].source == U + "bob"
    assert alice[0].change_paths[0].nodes == (U + "alice", U + "bob")
    assert not [e for e in found if e.principal in (U + "bob", U + "carol")]
    assert [e.rank() for e in found] == sorted(e.rank() for e in found)


def test_privesc_boundary_stops_self_escalation_unless_removable() -> None:
    b = SnapBuilder()
    bound = b.managed("bound", allow(["iam:PutUserPolicy", "s3:*"]))
    b.user("capped", allow("iam:PutUserPolicy", U + "capped"), boundary=bound)
    b.user("uncapped", allow(["iam:PutUserPolicy", "iam:DeleteUserPermissionsBoundary"], U + "uncapped"),
           boundary=bound)
    b.user("uncapped2", allow("iam:PutUserPolicy", U + "uncapped2"))
    g = build_graph(b.build())
    who = {e.principal for e in privesc(g)}
    assert U + "capped" not in who
    assert U + "uncapped" not in who  # its boundary also stops DeleteUserPermissionsBoundary
    assert U + "uncapped2" in who


def test_blast_radius_and_minimal_cut() -> None:
    b = SnapBuilder()
    b.user("leaked", allow("sts:AssumeRole", [R + "a", R + "b"]), keys=1)
    b.role("a", allow("sts:AssumeRole", R + "admin"))
    b.role("b", allow("sts:AssumeRole", R + "admin"))
    b.role("admin", allow("*"))
    g = build_graph(b.build())
    key = g.index.users[U + "leaked"].access_keys[0].access_key_id
    br = blast_radius(g, access_key_id=key)
    assert br.principal == U + "leaked"
    assert {n for n, _ in br.reachable} == {R + "a", R + "b", R + "admin"}
    assert [e.account for e in br.admin] == [A]
    # two disjoint routes to the admin role: the minimum cut has two capability edges
    assert len({(e.source, e.target) for e in br.cut}) == 2
    with pytest.raises(NotFoundError):
        blast_radius(g, access_key_id="AKIANOTKNOWN00000000")


def test_exposure_org_condition_is_not_exposure() -> None:
    b = SnapBuilder()
    open_doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::open/*"}]}
    org_doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::org/*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorg1"}}}]}
    b.resource("arn:aws:s3:::open", "s3:bucket", open_doc)
    b.resource("arn:aws:s3:::org", "s3:bucket", org_doc)
    b.role("vendor", trust_doc=trust({"AWS": f"arn:aws:iam::{OUTSIDE}:root"}))
    b.role("sister", trust_doc=trust({"AWS": f"arn:aws:iam::{B}:root"}))
    g = build_graph(b.build())
    found = {(x.scope.value, x.resource) for x in exposure(g)}
    assert ("public", "arn:aws:s3:::open") in found
    assert not any(r == "arn:aws:s3:::org" for _, r in found)
    assert ("outside-organization", R + "vendor") in found
    assert not any(r == R + "sister" for _, r in found)


def test_sensitive_by_tag() -> None:
    b = SnapBuilder()
    b.resource(BUCKET, "s3:bucket", None, tags={"DataClassification": "PII"})
    b.resource("arn:aws:s3:::other", "s3:bucket", None, tags={"DataClassification": "Public"})
    b.user("reader", allow("s3:GetObject", "*"))
    g = build_graph(b.build())
    found = sensitive(g, "DataClassification=PII")
    assert {(s.resource, s.kind.value, s.access.principal) for s in found} == {(BUCKET, "read", U + "reader")}


RULES_YAML = {
    "rules": [{
        "id": "T-1", "title": "create users vs attach admin", "severity": "high",
        "capabilities": [
            {"name": "create users", "actions": ["iam:CreateUser"], "resources": ["arn:aws:iam::{account}:user/x"]},
            {"name": "attach admin", "actions": ["iam:AttachUserPolicy"],
             "resources": ["arn:aws:iam::{account}:user/x"],
             "context": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}},
        ],
    }],
}


def test_sod_direct_and_through_a_path() -> None:
    b = SnapBuilder()
    b.user("creator", allow("iam:CreateUser"), allow("sts:AssumeRole", R + "attacher"))
    b.role("attacher", allow("iam:AttachUserPolicy"))
    b.user("only-creator", allow("iam:CreateUser"))
    b.user("scoped", allow(["iam:CreateUser", "iam:AttachUserPolicy"], Condition={
        "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/ReadOnlyAccess"}}))
    g = build_graph(b.build())
    conflicts = sod(g, parse_rules(RULES_YAML))
    assert {c.principal for c in conflicts} == {U + "creator"}
    (c,) = conflicts
    sides = {e.capability: e for e in c.evidence}
    assert sides["create users"].holder == U + "creator"
    assert sides["attach admin"].path.nodes == (U + "creator", R + "attacher")


def test_sod_rules_file_errors_name_the_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - id: X\n    title: t\n    capabilities:\n      - name: a\n        actions: [nocolon]\n"
                   "      - name: b\n        actions: [s3:GetObject]\n")
    with pytest.raises(InputError) as err:
        load_rules(bad)
    assert "rules.yaml" in str(err.value) and "rules[0].capabilities[0].actions[0]" in str(err.value)
    assert len(load_rules()) >= 10


def test_what_can_lists_direct_and_reached_permissions() -> None:
    g = build_graph(_chain().build())
    perms = what_can(g, U + "alice")
    via = {(p.via, a) for p in perms for a in p.actions}
    assert (U + "alice", "sts:AssumeRole") in via
    assert (R + "reader", "s3:GetObject") in via
    assert all(p.conditional for p in perms if p.via == R + "reader")  # MFA on the way, SourceIp at the end


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_export_round_trip(fmt: ExportFormat) -> None:
    g = build_graph(_chain().build())
    data = export(g, fmt)
    n_edges = g.g.number_of_edges()
    if fmt is ExportFormat.JSON:
        doc = json.loads(data)
        assert len(doc["edges"]) == n_edges and {"kind", "statements", "conditions"} <= set(doc["edges"][0])
    elif fmt is ExportFormat.GRAPHML:
        back = nx.read_graphml(io.BytesIO(data))
        assert back.number_of_edges() == n_edges
    else:
        text = data.decode()
        assert text.startswith("digraph") and text.count(" -> ") == n_edges


def test_cli_who_can_json_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from iamgraph.cli import app
    from iamgraph.snapshot import write_snapshot

    snap = tmp_path / "s.json"
    write_snapshot(_chain().build(), snap)
    runner = CliRunner()
    out = runner.invoke(app, ["who-can", "-s", str(snap), "-r", OBJ, "-a", "s3:GetObject", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert {a["principal"] for a in doc["accesses"]} == {U + "alice", R + "hop", R + "reader"}
    bad = runner.invoke(app, ["who-can", "-s", str(snap), "-r", "nope", "-a", "s3:GetObject"])
    assert bad.exit_code == 2
    for cmd in (["privesc"], ["exposure"], ["sod"], ["sensitive"], ["what-can", "-p", U + "alice"],
                ["blast-radius", "-p", U + "alice"], ["path", "--from", U + "alice", "--to", R + "reader"],
                ["graph", "export", "-f", "dot"]):
        res = runner.invoke(app, [*cmd[:1], *(cmd[1:2] if cmd[0] == "graph" else []), "-s", str(snap),
                                  *(cmd[2:] if cmd[0] == "graph" else cmd[1:])])
        assert res.exit_code == 0, (cmd, res.output)


def test_service_principal_edges_are_not_people() -> None:
    b = SnapBuilder()
    b.role("fn", allow("s3:GetObject"), trust_doc=service_trust("lambda.amazonaws.com"))
    g = build_graph(b.build())
    assert any(e.source == "lambda.amazonaws.com" for e in g.edges((EdgeKind.ASSUME_ROLE,)))
    assert not privesc(g)


def _conditional_short_definite_long() -> SnapBuilder:
    """alice assumes reader directly only with MFA, and through hop with no condition."""
    b = SnapBuilder()
    b.user("alice", allow("sts:AssumeRole", R + "reader", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
           allow("sts:AssumeRole", R + "hop"))
    b.role("hop", allow("sts:AssumeRole", R + "reader"))
    b.role("reader", allow(["s3:GetObject", "iam:CreateUser"], "*"))
    b.role("attacher", allow("iam:AttachUserPolicy"),
           trust_doc=trust({"AWS": U + "alice"}, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    b.accounts[A].roles[-1].inline_policies.append(
        b._inline([allow("sts:AssumeRole", R + "attacher2")])[0].model_copy(update={"name": "onward"}))
    b.role("attacher2", allow("iam:AttachUserPolicy"))
    return b


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_who_can_verdict_does_not_depend_on_k(k: int) -> None:
    """A definite two-hop path beats a conditional one-hop path whatever the number of paths asked:
    the verdict is the principal's, not the shortest path's."""
    g = build_graph(_conditional_short_definite_long().build())
    alice = next(a for a in who_can(g, OBJ, action="s3:GetObject", paths=k).accesses if a.principal == U + "alice")
    assert alice.definite
    assert alice.path.nodes == (U + "alice", R + "hop", R + "reader")
    if k > 1:
        # the conditional one-hop path is still shown, as an alternative
        assert [p.nodes for p in alice.alternatives] == [(U + "alice", R + "reader")]


def test_sod_evidence_prefers_the_definite_path() -> None:
    """Each capability has a one-hop conditional route (MFA) and a two-hop definite one; the evidence
    shows the definite one, so the conflict is definite."""
    b = _conditional_short_definite_long()
    b.accounts[A].roles[0].inline_policies.append(
        b._inline([allow("sts:AssumeRole", R + "attacher2")])[0].model_copy(update={"name": "to-attacher2"}))
    b.accounts[A].users[0].inline_policies.append(
        b._inline([allow("sts:AssumeRole", R + "attacher")])[0].model_copy(update={"name": "to-attacher"}))
    g = build_graph(b.build())
    (c,) = [c for c in sod(g, parse_rules(RULES_YAML)) if c.principal == U + "alice"]
    sides = {e.capability: e for e in c.evidence}
    assert sides["create users"].path.nodes == (U + "alice", R + "hop", R + "reader")
    assert sides["attach admin"].path.nodes == (U + "alice", R + "hop", R + "attacher2")
    assert c.definite


@pytest.mark.parametrize("level", ["bucket", "account"])
def test_restrict_public_buckets_stops_public_and_cross_account_access(level: str) -> None:
    """RestrictPublicBuckets (either level): a bucket with a public policy serves only AWS services and
    principals of the owner's account; "public and cross-account access within any public bucket
    policy, including non-public delegation to specific accounts, is blocked"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html).
    Asked twice, so an answer cached by the first question is checked too."""
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": BUCKET + "/*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"}, "Action": "s3:GetObject",
         "Resource": BUCKET + "/*"}]}
    b = SnapBuilder()
    pab = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
           "RestrictPublicBuckets": True}
    if level == "bucket":
        b.resource(BUCKET, "s3:bucket", doc, tags={"DataClassification": "PII"}, public_access_block=pab)
    else:
        b.resource(BUCKET, "s3:bucket", doc, tags={"DataClassification": "PII"})
        b.accounts[A].public_access_block = pab
    b.user("insider", allow("sts:GetCallerIdentity"))  # same account: the public policy still admits it
    g = build_graph(b.build())
    for _ in range(2):
        assert not [x for x in exposure(g) if x.resource == BUCKET]
        who = {a.principal for a in who_can(g, OBJ, action="s3:GetObject").accesses}
        assert who == {U + "insider"}
        assert {s.access.principal for s in sensitive(g, "DataClassification=PII")} == {U + "insider"}


def test_without_restrict_public_buckets_the_bucket_is_public() -> None:
    """The same bucket with RestrictPublicBuckets off (the other three on: they govern ACLs and new
    policies, not the policy in place) is public and open to the outside account."""
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": BUCKET + "/*"}]}
    b = SnapBuilder()
    b.resource(BUCKET, "s3:bucket", doc, public_access_block={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": False})
    g = build_graph(b.build())
    for _ in range(2):
        assert [(x.scope.value, x.principal) for x in exposure(g) if x.resource == BUCKET] == [("public", "*")]
        by = {a.principal: a for a in who_can(g, OBJ, action="s3:GetObject").accesses}
        assert by["*"].definite


@pytest.mark.parametrize(("level", "flag", "blocked"), [
    ("bucket", "BlockPublicPolicy", True), ("account", "BlockPublicPolicy", True),
    ("bucket", "RestrictPublicBuckets", True), ("account", "IgnorePublicAcls", False),
    ("bucket", "BlockPublicAcls", False),
])
def test_block_public_policy_stops_a_public_rewrite(level: str, flag: str, blocked: bool) -> None:
    """Everyone may PutBucketPolicy: it gets in only by writing a public policy, which BlockPublicPolicy
    rejects ("reject calls to PUT Bucket policy if the specified bucket policy allows public access") and
    RestrictPublicBuckets would not serve; the ACL settings do not bear on it
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PublicAccessBlockConfiguration.html)."""
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:PutBucketPolicy", "Resource": BUCKET}]}
    b = SnapBuilder()
    if level == "bucket":
        b.resource(BUCKET, "s3:bucket", doc, public_access_block={flag: True})
    else:
        b.resource(BUCKET, "s3:bucket", doc)
        b.accounts[A].public_access_block = {flag: True}
    g = build_graph(b.build())
    who = {a.principal: a.how.value for a in who_can(g, OBJ, action="s3:GetObject").accesses}
    assert who == ({} if blocked else {"*": "resource-policy-takeover"})
