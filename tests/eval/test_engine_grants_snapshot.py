"""KMS grants held in a snapshot (``Resource.attributes["grants"]``, as collected or imported) are
evaluated with the key policy (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html)."""

from __future__ import annotations

from typing import Any

from iamgraph.eval import DecisionKind, Mode, SnapshotEvaluator
from iamgraph.graph.context import BuildContext
from iamgraph.snapshot import SnapshotIndex
from iamgraph.snapshot.model import (
    Account,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    Resource,
    Role,
    Snapshot,
)

A = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1111aaaa-22bb-33cc-44dd-555555eeeeee"
BROKEN_KEY = f"arn:aws:kms:us-east-1:{A}:key/2222aaaa-22bb-33cc-44dd-555555eeeeee"
READER = f"arn:aws:iam::{A}:role/reader"
OTHER = f"arn:aws:iam::{A}:role/other"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _snapshot() -> Snapshot:
    weak = ManagedPolicy(arn=f"arn:aws:iam::{A}:policy/weak", name="weak", default_version_id="v1",
                         versions=[PolicyVersion(version_id="v1", is_default=True, document=_doc(
                             {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}))])
    trust = _doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    # Two roles with the same policies: only the grant tells them apart.
    roles = [Role(arn=arn, name=arn.rsplit("/", 1)[1], role_id=f"AROA{i}", trust_policy=trust,
                  attached_managed_policies=[weak.arn]) for i, arn in enumerate((READER, OTHER))]
    # The key policy names no one in particular, so only the grant tells the two roles apart.
    key_policy = _doc({"Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*"})
    grant = {"KeyId": KEY, "GrantId": "abc123", "GranteePrincipal": READER, "IssuingAccount": f"arn:aws:iam::{A}:root",
             "Operations": ["Decrypt"], "Constraints": {"EncryptionContextSubset": {"app": "orders"}},
             "CreationDate": "2026-01-01T00:00:00+00:00"}
    key = Resource(arn=KEY, type="kms:key", policy=key_policy, attributes={"grants": [grant], "key_manager": "CUSTOMER"})
    broken = Resource(arn=BROKEN_KEY, type="kms:key", policy=key_policy,
                      attributes={"grants": [{"GrantId": "x", "GranteePrincipal": READER, "Operations": []}]})
    return Snapshot(collected_at="2026-01-01T00:00:00Z",
                    accounts=[Account(account_id=A, roles=roles, policies=[weak], resources=[key, broken])])


def test_the_grantee_decrypts_under_the_grant_constraint() -> None:
    ev = SnapshotEvaluator(SnapshotIndex(_snapshot()))
    ok = ev.ask(READER, "kms:Decrypt", KEY, context={"kms:EncryptionContext:app": "orders"})
    assert ok.allowed and [r.policy_id for r in ok.reasons] == [f"{KEY}:grant/abc123"]
    assert ev.ask(READER, "kms:Decrypt", KEY, context={"kms:EncryptionContext:app": "billing"}).decision \
        is DecisionKind.IMPLICITLY_DENIED
    assert ev.ask(READER, "kms:Encrypt", KEY).decision is DecisionKind.IMPLICITLY_DENIED
    assert ev.ask(OTHER, "kms:Decrypt", KEY, context={"kms:EncryptionContext:app": "orders"}).decision \
        is DecisionKind.IMPLICITLY_DENIED
    d = ev.ask(READER, "kms:Decrypt", KEY, mode=Mode.DISCOVERY)
    assert d.conditional and {c.key for t in d.conditions for c in t} == {"kms:EncryptionContext:app"}


def test_a_malformed_grant_is_reported_not_dropped() -> None:
    ev = SnapshotEvaluator(SnapshotIndex(_snapshot()))
    d = ev.ask(READER, "kms:Decrypt", BROKEN_KEY)
    assert d.decision is DecisionKind.IMPLICITLY_DENIED
    assert any("Operations" in e.message for e in d.errors)


def test_the_graph_memo_tells_grantee_and_non_grantee_apart() -> None:
    ctx = BuildContext(SnapshotIndex(_snapshot()))
    first = ctx.check("test", READER, "kms:Decrypt", KEY)
    second = ctx.check("test", OTHER, "kms:Decrypt", KEY)
    assert first is not None and first.possible
    assert second is not None and not second.possible


def test_the_snapshot_says_which_keys_aws_manages() -> None:
    """kms-aws-managed-key-immutable reads KeyManager from the snapshot: an administrator cannot
    rewrite the key policy of an AWS managed key (https://docs.aws.amazon.com/kms/latest/developerguide/editing-keys.html)."""
    snap = _snapshot()
    admin_doc = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    admin = Role(arn=f"arn:aws:iam::{A}:role/admin", name="admin", role_id="AROAADMIN",
                 trust_policy=_doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                    "Action": "sts:AssumeRole"}),
                 inline_policies=[InlinePolicy(name="all", document=admin_doc)])
    delegating = _doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*",
                       "Resource": "*"})
    aws_key = f"arn:aws:kms:us-east-1:{A}:key/3333aaaa-22bb-33cc-44dd-555555eeeeee"
    own_key = f"arn:aws:kms:us-east-1:{A}:key/4444aaaa-22bb-33cc-44dd-555555eeeeee"
    snap.accounts[0].roles.append(admin)
    snap.accounts[0].resources += [
        Resource(arn=aws_key, type="kms:key", policy=delegating, attributes={"key_manager": "AWS"}),
        Resource(arn=own_key, type="kms:key", policy=delegating, attributes={"key_manager": "CUSTOMER"}),
    ]
    ev = SnapshotEvaluator(SnapshotIndex(snap))
    refused = ev.ask(admin.arn, "kms:PutKeyPolicy", aws_key, mode=Mode.DISCOVERY)
    assert refused.decision is DecisionKind.IMPLICITLY_DENIED
    assert refused.refused_by is not None and refused.refused_by.rule_id == "kms-aws-managed-key-immutable"
    assert ev.ask(admin.arn, "kms:PutKeyPolicy", own_key).allowed
    assert ev.ask(admin.arn, "kms:Decrypt", aws_key).allowed
