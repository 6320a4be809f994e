"""Compact output (docs/recommend.md, "Compact output"): kept actions folded into the narrowest pattern an original
wildcard contains, never a new wildcard over an explicit list; high-risk actions listed by name and flagged.

Access levels are the Service Authorization Reference's (through the pinned catalog): ``iam:AttachRolePolicy`` is
Permissions management, ``iam:PassRole`` is Write
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.catalog import get_catalog
from iamgraph.eval import Mode, named_policy
from iamgraph.eval.engine import authorize
from iamgraph.eval.types import PolicySet, PolicyType, Request
from iamgraph.recommend import Call, RecommendConfig, RecommendConfigError, parse_config, trim_document
from iamgraph.recommend.containment import prove_contained
from iamgraph.recommend.risk import flag_actions, is_high_risk

P = "arn:aws:iam::111122223333:role/app"
TABLES = "arn:aws:dynamodb:us-east-1:111122223333:table/*"
TABLE = "arn:aws:dynamodb:us-east-1:111122223333:table/orders"
CFG = RecommendConfig()


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allows(d: dict[str, Any], action: str, resource: str) -> bool:
    np = named_policy(d, "t", PolicyType.IDENTITY)
    return authorize(Request(principal=P, action=action, resource=resource, context={}),
                     PolicySet(identity=(np,)), mode=Mode.STRICT).allowed


def actions_of(d: dict[str, Any]) -> list[str]:
    return [a for s in d["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]


def test_kept_actions_become_the_narrowest_pattern_the_original_wildcard_contains() -> None:
    original = doc({"Effect": "Allow", "Action": "dynamodb:*", "Resource": TABLES})
    kept = {"dynamodb:DescribeReservedCapacity", "dynamodb:DescribeReservedCapacityOfferings", "dynamodb:InjectError"}
    t = trim_document(original, [], keep_action=lambda a: a in kept, config=CFG)
    # The two DescribeReserved... actions are the only catalog actions under that prefix: one pattern, the longest
    # common prefix; InjectError alone stays listed; nothing wider (the removed GetItem is not given back).
    assert actions_of(t.document) == ["dynamodb:DescribeReservedCapacity*", "dynamodb:InjectError"]
    assert not allows(t.document, "dynamodb:GetItem", TABLE)
    assert allows(t.document, "dynamodb:DescribeReservedCapacityOfferings", TABLE)
    assert prove_contained(original, [t.document]).contained


def test_an_explicit_list_never_becomes_a_wildcard() -> None:
    names = ["dynamodb:DescribeReservedCapacity", "dynamodb:DescribeReservedCapacityOfferings", "dynamodb:GetItem"]
    original = doc({"Effect": "Allow", "Action": names, "Resource": TABLES})
    t = trim_document(original, [], keep_action=lambda a: a != "dynamodb:GetItem", config=CFG)
    assert actions_of(t.document) == names[:2]


def test_a_whole_service_kept_under_star_is_its_service_wildcard() -> None:
    cat = get_catalog()
    a2c = set(cat.actions_of("a2c"))
    assert len(a2c) > 1 and not any(is_high_risk(a) for a in a2c)
    original = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    t = trim_document(original, [], keep_action=lambda a: a in a2c, config=CFG)
    assert actions_of(t.document) == ["a2c:*"]
    assert prove_contained(original, [t.document]).contained


def test_high_risk_actions_stay_listed_by_name_and_are_flagged() -> None:
    cat = get_catalog()
    iam = set(cat.actions_of("iam"))
    kept = iam - {"iam:ListRoles"}  # one observable action unused: iam:* cannot come back
    original = doc({"Effect": "Allow", "Action": "iam:*", "Resource": "*"})
    t = trim_document(original, [], keep_action=lambda a: a in kept, config=CFG)
    listed = actions_of(t.document)
    assert "iam:AttachRolePolicy" in listed and "iam:PassRole" in listed and "iam:*" not in listed
    assert any(a.endswith("*") for a in listed)  # the rest is folded
    assert not allows(t.document, "iam:ListRoles", "*")
    assert prove_contained(original, [t.document]).contained
    flags = {f.action: f.reason for f in flag_actions([t.document])}
    assert flags["iam:AttachRolePolicy"] == "Permissions management"
    assert "privilege escalation" in flags["iam:PassRole"]
    assert "iam:ListRoles" not in flags


def test_documented_high_risk_actions_are_flagged_with_their_reason() -> None:
    d = doc({"Effect": "Allow", "Action": ["account:CloseAccount", "s3:BypassGovernanceRetention",
                                           "kms:ScheduleKeyDeletion", "s3:GetObject"], "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::111122223333:role/app-*"})
    flags = {f.action: f.reason for f in flag_actions([d])}
    assert set(flags) == {"account:CloseAccount", "s3:BypassGovernanceRetention", "kms:ScheduleKeyDeletion"}
    # iam:PassRole on named roles is an ordinary grant; on "*" it is flagged.
    star = doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})
    assert [f.action for f in flag_actions([star])] == ["iam:PassRole"]


SERVICES = ["dynamodb", "a2c", "sqs"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=st.sampled_from(["*", "dynamodb:*", "dynamodb:Describe*", "sqs:*", "a2c:*", "dynamodb:Get*"]),
    keep_seed=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
    drop_all_but=st.booleans(),
    used=st.lists(st.sampled_from(["dynamodb:GetItem", "sqs:SendMessage", "a2c:StartDeploymentJob"]), max_size=3),
)
def test_compacting_never_breaks_containment_nor_denies_a_kept_or_used_action(
        pattern: str, keep_seed: list[int], drop_all_but: bool, used: list[str]) -> None:
    cat = get_catalog()
    universe = sorted(a for s in SERVICES for a in cat.actions_of(s))
    kept = {universe[i % len(universe)] for i in keep_seed}
    if drop_all_but:  # most of a service kept: long runs to fold
        kept = set(universe) - kept
    original = doc({"Effect": "Allow", "Action": pattern, "Resource": "*"})
    granted = cat.expand(pattern)
    calls = [Call(principal_arn=P, action=a, resource=None) for a in used]
    t = trim_document(original, calls, keep_action=lambda a: a in kept, config=CFG)
    assert prove_contained(original, [t.document]).contained
    if not t.document["Statement"]:
        return
    for a in granted:
        want = a in kept or a in used
        # Kept and used actions stay allowed; what the trim removed is not given back by a pattern.
        assert allows(t.document, a, "*") is want, (a, want)
    for future in ("dynamodb:DescribeFutureThing", "sqs:FutureAction", "a2c:FutureJob"):
        if allows(t.document, future, "*"):
            assert allows(original, future, "*")


B = "arn:aws:s3:::data"
KEYS = [f"{B}/reports/2026/a.csv", f"{B}/reports/2025/b.csv", f"{B}/static/index.html", f"{B}/root.txt"]


def test_s3_keys_used_under_one_prefix_become_the_prefix_and_the_proposal_says_so() -> None:
    original = doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"], "Resource": f"{B}/*"})
    calls = [Call(principal_arn=P, action="s3:GetObject", resource=k) for k in KEYS]
    t = trim_document(original, calls, keep_action=lambda a: False, config=CFG)
    (st_,) = t.document["Statement"]
    # Two keys under reports/ (their longest common directory): reports/*; one key under static/ and one at the
    # root stay exact.
    assert st_["Resource"] == [f"{B}/reports/*", f"{B}/root.txt", f"{B}/static/index.html"]
    assert allows(t.document, "s3:GetObject", f"{B}/reports/2027/tomorrow.csv")
    assert not allows(t.document, "s3:GetObject", f"{B}/static/other.html")
    assert not allows(t.document, "s3:DeleteObject", f"{B}/reports/2026/a.csv")
    (note,) = t.notes
    assert "reports/*" in note and "2 object keys" in note and "--exact-keys" in note
    assert prove_contained(original, [t.document]).contained


def test_exact_keys_and_threshold_are_configurable() -> None:
    original = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/*"})
    calls = [Call(principal_arn=P, action="s3:GetObject", resource=k) for k in KEYS]
    exact = trim_document(original, calls, keep_action=lambda a: False, config=RecommendConfig(exact_keys=True))
    assert exact.document["Statement"][0]["Resource"] == sorted(KEYS) and not exact.notes
    three = trim_document(original, calls, keep_action=lambda a: False,
                          config=RecommendConfig(s3_prefix_threshold=3))
    assert three.document["Statement"][0]["Resource"] == sorted(KEYS) and not three.notes
    one = trim_document(original, calls, keep_action=lambda a: False, config=RecommendConfig(s3_prefix_threshold=1))
    assert one.document["Statement"][0]["Resource"] == [f"{B}/reports/*", f"{B}/root.txt", f"{B}/static/*"]


def test_a_prefix_the_original_does_not_contain_is_not_made() -> None:
    # The original names two exact keys: granting reports/* would be new access.
    original = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": KEYS[:2]})
    calls = [Call(principal_arn=P, action="s3:GetObject", resource=k) for k in KEYS[:2]]
    t = trim_document(original, calls, keep_action=lambda a: False, config=CFG)
    assert "reports/*" not in json.dumps(t.document) and not t.notes
    assert prove_contained(original, [t.document]).contained


def test_config_reads_the_s3_settings_and_rejects_bad_values() -> None:
    cfg = parse_config({"recommend": {"s3_prefix_threshold": 3, "exact_keys": True}})
    assert cfg.s3_prefix_threshold == 3 and cfg.exact_keys
    assert parse_config({"recommend": {"managed_policy_quota": 20}}).managed_policy_quota == 20
    for bad in ({"s3_prefix_threshold": 0}, {"s3_prefix_threshold": "2"}, {"exact_keys": "yes"},
                {"managed_policy_quota": 21}, {"managed_policy_quota": 0}, {"managed_policy_quota": True}):
        with pytest.raises(RecommendConfigError):
            parse_config({"recommend": bad})


def test_no_pattern_the_trim_makes_matches_a_high_risk_action() -> None:
    cat = get_catalog()
    kept = set(cat.actions_of("iam")) - {"iam:ListRoles"}
    t = trim_document(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}), [], keep_action=lambda a: a in kept,
                      config=CFG)
    for entry in actions_of(t.document):
        if "*" in entry:
            assert not any(is_high_risk(a) for a in cat.expand(entry)), entry
