"""The shipped collector policy (docs/collector-policy.json) against the collector's own list of API calls,
decided by iamgraph's evaluation engine, so the two cannot drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest

from iamgraph.catalog import AccessLevel, get_catalog
from iamgraph.collect.aws import API_CALLS
from iamgraph.eval import PolicySet, PolicyType, Request, named_policy
from iamgraph.eval.engine import authorize

DOCS = Path(__file__).resolve().parents[2] / "docs"
MGMT = "111122223333"
MEMBER = "444455556666"
SESSION = f"arn:aws:sts::{MGMT}:assumed-role/iamgraph-collector/iamgraph-collector"
POLICY = json.loads((DOCS / "collector-policy.json").read_text())
TRUST = json.loads((DOCS / "collector-trust-policy.json").read_text())


def _identity() -> PolicySet:
    return PolicySet(identity=(named_policy(POLICY, "collector-policy", PolicyType.IDENTITY),))


@pytest.mark.parametrize(
    "api", [c for c in API_CALLS if c.action], ids=lambda c: f"{c.service}:{c.operation}"
)
def test_every_call_the_collector_makes_is_allowed(api: object) -> None:
    action = api.action  # type: ignore[attr-defined]
    if action == "sts:AssumeRole":
        # Cross-account: the member role's trust policy must agree too (the shipped one).
        target = f"arn:aws:iam::{MEMBER}:role/iamgraph-collector"
        policies = PolicySet(
            identity=_identity().identity, resource=named_policy(TRUST, "trust", PolicyType.RESOURCE)
        )
        decision = authorize(Request(principal=SESSION, action=action, resource=target), policies)
    else:
        decision = authorize(Request(principal=SESSION, action=action, resource="*"), _identity())
    assert decision.allowed, (action, decision)


def test_default_member_role_can_be_assumed() -> None:
    # Organizations creates OrganizationAccountAccessRole trusting the management account:
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_create-cross-account-role.html
    org_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MGMT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    policies = PolicySet(
        identity=_identity().identity, resource=named_policy(org_trust, "org", PolicyType.RESOURCE)
    )
    target = f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole"
    assert authorize(Request(principal=SESSION, action="sts:AssumeRole", resource=target), policies).allowed


def test_policy_grants_exactly_the_listed_actions() -> None:
    granted: set[str] = set()
    for st in POLICY["Statement"]:
        assert st["Effect"] == "Allow" and "NotAction" not in st
        granted.update([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    assert granted == {c.action for c in API_CALLS if c.action}


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateUser", "*"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{MEMBER}:role/x"),
        ("s3:GetObject", "arn:aws:s3:::bucket/key"),
        ("secretsmanager:GetSecretValue", "*"),
        ("kms:Decrypt", "*"),
        ("sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/Admin"),
        ("organizations:LeaveOrganization", "*"),
    ],
)
def test_nothing_else_is_allowed(action: str, resource: str) -> None:
    decision = authorize(Request(principal=SESSION, action=action, resource=resource), _identity())
    assert not decision.possible


def test_listed_actions_are_read_only_and_known() -> None:
    catalog = get_catalog()
    for c in API_CALLS:
        if c.action is None:
            continue
        assert catalog.is_known(c.action), c.action
        level = catalog.access_level(c.action)
        if c.action == "sts:AssumeRole":
            continue  # the one write-level action: reaching the member accounts
        assert level in (AccessLevel("List"), AccessLevel("Read")), (c.action, level)


def test_listed_operations_exist_in_botocore() -> None:
    session = botocore.session.get_session()
    for c in API_CALLS:
        model = session.get_service_model(c.service)
        assert c.operation in model.operation_names, (c.service, c.operation)


def test_trust_policy_admits_only_the_collector_role() -> None:
    trust = named_policy(TRUST, "member-trust", PolicyType.RESOURCE)
    target = f"arn:aws:iam::{MEMBER}:role/iamgraph-collector"
    # The shipped trust names account 111122223333: copy it with the management account's ID.
    ok = authorize(
        Request(principal=SESSION, action="sts:AssumeRole", resource=target),
        PolicySet(identity=_identity().identity, resource=trust),
    )
    assert ok.allowed
    other = f"arn:aws:sts::{MGMT}:assumed-role/developer/someone"
    denied = authorize(
        Request(principal=other, action="sts:AssumeRole", resource=target),
        PolicySet(identity=_identity().identity, resource=trust),
    )
    assert not denied.possible
