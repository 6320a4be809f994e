"""Unit cases for each trimming rule (docs/recommend.md), judged by the engine where access is concerned."""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.eval import Mode, named_policy
from iamgraph.eval.engine import authorize
from iamgraph.eval.types import PolicySet, PolicyType, Request
from iamgraph.recommend import Call, RecommendConfig, RecommendConfigError, parse_config, trim_document
from iamgraph.recommend.split import MANAGED_LIMIT, USER_INLINE_LIMIT, policy_size, split_document

P = "arn:aws:iam::111122223333:role/app"
B = "arn:aws:s3:::bucket"
CFG = RecommendConfig()


def _never(_: str) -> bool:
    return False


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allows(d: dict[str, Any], action: str, resource: str, ctx: dict[str, Any] | None = None) -> bool:
    np = named_policy(d, "t", PolicyType.IDENTITY)
    req = Request(principal=P, action=action, resource=resource, context=ctx or {})
    return authorize(req, PolicySet(identity=(np,)), mode=Mode.STRICT).allowed


def call(action: str, resource: str | None) -> Call:
    return Call(principal_arn=P, action=action, resource=resource)


def test_unused_action_removed_used_kept_with_resource_narrowed() -> None:
    d = doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"], "Resource": f"{B}/*"})
    t = trim_document(d, [call("s3:GetObject", f"{B}/a.txt")], keep_action=_never, config=CFG)
    assert t.changed and "s3:DeleteObject" in t.removed_actions
    assert allows(t.document, "s3:GetObject", f"{B}/a.txt")
    assert not allows(t.document, "s3:GetObject", f"{B}/b.txt")
    assert not allows(t.document, "s3:DeleteObject", f"{B}/a.txt")


def test_deny_and_keep_marker_statements_are_verbatim() -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": f"{B}/secret/*"}
    keep = {"Sid": "KeepBreakGlass", "Effect": "Allow", "Action": "iam:*", "Resource": "*"}
    keep2 = {"Sid": "iamgraph:keepX", "Effect": "Allow", "Action": "ec2:*", "Resource": "*"}
    d = doc(deny, keep, keep2, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    t = trim_document(d, [], keep_action=_never, config=CFG)
    assert t.document["Statement"] == [deny, keep, keep2]
    assert len(t.left_alone) == 2


def test_unobservable_actions_are_kept_and_listed() -> None:
    d = doc({"Effect": "Allow", "Action": ["iam:PassRole", "iam:ListRoles"], "Resource": "*"})
    t = trim_document(d, [], keep_action=lambda a: a == "iam:PassRole", config=CFG)
    assert t.kept_unobservable == ("iam:PassRole",)
    assert allows(t.document, "iam:PassRole", "arn:aws:iam::111122223333:role/x")
    assert not allows(t.document, "iam:ListRoles", "*")


def test_conditions_are_copied_onto_the_trimmed_statement() -> None:
    cond = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    d = doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{B}/*", "Condition": cond})
    t = trim_document(d, [call("s3:GetObject", f"{B}/k")], keep_action=_never, config=CFG)
    (st,) = t.document["Statement"]
    assert st["Condition"] == cond
    assert allows(t.document, "s3:GetObject", f"{B}/k", {"aws:SourceIp": "10.1.2.3"})
    assert not allows(t.document, "s3:GetObject", f"{B}/k", {"aws:SourceIp": "192.168.0.1"})


def test_not_resource_is_kept_and_not_action_never_widens() -> None:
    d = doc({"Effect": "Allow", "NotAction": ["iam:*"], "NotResource": f"{B}/private/*"})
    t = trim_document(d, [call("s3:GetObject", f"{B}/public/x")], keep_action=_never, config=CFG)
    (st,) = t.document["Statement"]
    assert st["Action"] == ["s3:GetObject"] and st["NotResource"] == f"{B}/private/*"
    assert allows(t.document, "s3:GetObject", f"{B}/public/x")
    assert not allows(t.document, "s3:GetObject", f"{B}/private/x")
    assert not allows(t.document, "iam:CreateUser", "*")


def test_wildcard_recollapsed_only_when_every_action_is_kept() -> None:
    d = doc({"Effect": "Allow", "Action": ["s3:GetObject*", "ec2:*"], "Resource": "*"})
    # every s3:GetObject* action unobservable: the original wildcard comes back as written
    t = trim_document(d, [], keep_action=lambda a: a.startswith("s3:GetObject"), config=CFG)
    assert t.document["Statement"][0]["Action"] == ["s3:GetObject*"]
    # one of them not kept: no wildcard
    t2 = trim_document(d, [], keep_action=lambda a: a.startswith("s3:GetObject") and a != "s3:GetObjectAcl",
                       config=CFG)
    acts = t2.document["Statement"][0]["Action"]
    assert "s3:GetObject*" not in acts and "s3:GetObjectAcl" not in acts and "s3:GetObject" in acts


def test_resources_generalised_past_threshold_within_the_original() -> None:
    d = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/*"})
    calls = [call("s3:GetObject", f"{B}/logs/2026/{i}.gz") for i in range(4)]
    # exact_keys: the S3 prefix rule (test_recommend_compact.py) is off, so only the ARN-count threshold acts.
    t = trim_document(d, calls, keep_action=_never,
                      config=RecommendConfig(resource_wildcard_threshold=3, exact_keys=True))
    assert t.document["Statement"][0]["Resource"] == [f"{B}/logs/2026/*"]
    t2 = trim_document(d, calls, keep_action=_never,
                       config=RecommendConfig(resource_wildcard_threshold=4, exact_keys=True))
    assert len(t2.document["Statement"][0]["Resource"]) == 4


def test_generalisation_falls_back_to_original_entries_when_not_provably_inside() -> None:
    d = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"{B}/a*/x", f"{B}/b*/x"]})
    calls = [call("s3:GetObject", f"{B}/a{i}/x") for i in range(3)]
    t = trim_document(d, calls, keep_action=_never, config=RecommendConfig(resource_wildcard_threshold=2))
    assert t.document["Statement"][0]["Resource"] == [f"{B}/a*/x", f"{B}/b*/x"]


def test_unknown_resource_and_policy_variables_keep_original_resources() -> None:
    d = doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{B}/${{aws:username}}/*"})
    alice = Call(principal_arn="arn:aws:iam::111122223333:user/alice", action="s3:GetObject", resource=f"{B}/alice/f")
    t = trim_document(d, [alice], keep_action=_never, config=CFG)
    assert t.document["Statement"] == [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                        "Resource": f"{B}/${{aws:username}}/*"}]
    d2 = doc({"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:DeleteQueue"], "Resource": "*"})
    t2 = trim_document(d2, [call("sqs:SendMessage", None)], keep_action=_never, config=CFG)
    assert t2.document["Statement"] == [{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"}]


def test_statement_with_nothing_used_goes_and_unknown_actions_stay() -> None:
    d = doc({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": B},
            {"Effect": "Allow", "Action": ["madeup:DoThing", "s3:PutObject"], "Resource": "*"})
    t = trim_document(d, [], keep_action=_never, config=CFG)
    assert t.document["Statement"] == [{"Effect": "Allow", "Action": ["madeup:DoThing"], "Resource": "*"}]


def test_unchanged_policy_is_reported_unchanged() -> None:
    d = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    t = trim_document(d, [call("s3:GetObject", None)], keep_action=_never, config=CFG)
    assert not t.changed and t.document == d


def test_split_is_deterministic_and_fits() -> None:
    acts = [f"ec2:Describe{i:04d}Thing" for i in range(400)]
    d = doc({"Sid": "Big", "Effect": "Allow", "Action": acts, "Resource": "*"},
            {"Effect": "Deny", "Action": "ec2:Terminate*", "Resource": "*"})
    parts = split_document(d, MANAGED_LIMIT)
    assert parts == split_document(d, MANAGED_LIMIT) and len(parts) > 1
    assert all(policy_size(p) <= MANAGED_LIMIT for p in parts)
    got = [a for p in parts for st in p["Statement"] if st["Effect"] == "Allow" for a in st["Action"]]
    assert got == acts
    assert sum(st["Effect"] == "Deny" for p in parts for st in p["Statement"]) == 1
    assert split_document(doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}), USER_INLINE_LIMIT)


def test_size_ignores_whitespace() -> None:
    d = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert policy_size(d) == len('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",'
                                 '"Resource":"*"}]}')


def test_config_parsing_and_errors() -> None:
    cfg = parse_config({"recommend": {"keep_sid_prefixes": ["Pin"], "exclude": {
        "accounts": ["111122223333"], "tags": {"team": "sec"}, "actions": ["sts:*"]}}})
    assert cfg.keeps_sid("PinMe") and not cfg.keeps_sid("Keep")
    assert cfg.exclude_accounts == {"111122223333"} and cfg.exclude_tags == (("team", "sec"),)
    assert parse_config(None) == RecommendConfig()
    with pytest.raises(RecommendConfigError, match=r"recommend\.exclude"):
        parse_config({"recommend": {"exclude": {"colour": ["x"]}}})
    with pytest.raises(RecommendConfigError, match="resource_wildcard_threshold"):
        parse_config({"recommend": {"resource_wildcard_threshold": 0}})


def test_shipped_example_config_recommend_section_loads() -> None:
    from importlib import resources

    from iamgraph.recommend import load_config

    path = resources.files("iamgraph") / "data" / "iamgraph.example.yaml"
    cfg = load_config(str(path))
    assert cfg.keeps_sid("KeepX") and cfg.resource_wildcard_threshold >= 1
    # The example's evidence section is read: the region entry wins over "*" for data events only.
    assert cfg.logged.lookup("111122223333", "eu-west-1") == (True, frozenset())
    assert cfg.logged.lookup("444455556666", "us-east-1") == (True, frozenset({"s3"}))


def test_renderers() -> None:
    import json as _json

    from iamgraph.recommend import PolicyKind, PolicyProposal, ProposalStatus
    from iamgraph.recommend.render import cloudformation, terraform, unified_diff

    orig = doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    new = doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*",
               "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    p = PolicyProposal(policy_id="arn:aws:iam::111122223333:role/app:inline/acc", name="acc",
                       kind=PolicyKind.ROLE_INLINE, principals=(P,), status=ProposalStatus.EMITTED, original=orig,
                       proposed=(new,), proposed_names=("acc",))
    d = unified_diff(p)
    assert '-        "s3:PutObject"' in d and "+++ proposed/acc" in d
    tf = terraform(p)
    assert 'actions = ["s3:GetObject"]' in tf and 'test     = "Bool"' in tf and 'variable = "aws:SecureTransport"' in tf
    cfn = _json.loads(cloudformation(p))["Resources"]["acc"]
    assert cfn["Type"] == "AWS::IAM::RolePolicy" and cfn["Properties"]["RoleName"] == "app"
    assert cfn["Properties"]["PolicyDocument"] == new


def test_wildcard_not_recollapsed_across_resource_groups() -> None:
    d = doc({"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"})
    t = trim_document(d, [call("s3:GetObject", f"{B}/x")], config=CFG,
                      keep_action=lambda a: a.startswith("s3:Get") and a != "s3:GetObject")
    assert allows(t.document, "s3:GetObject", f"{B}/x")
    assert allows(t.document, "s3:GetObjectAcl", f"{B}/y")
    assert not allows(t.document, "s3:GetObject", f"{B}/y")
