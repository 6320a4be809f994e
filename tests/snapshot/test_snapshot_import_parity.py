"""Offline import of what the live collector also reads: IAM Identity Center, S3 Block Public
Access and KMS grants (layouts in docs/snapshot-format.md).

The files are the responses of a moto server, written the way ``aws ... --output json`` prints
them; what moto does not answer here (a permission set's boundary; the accounts a set is
provisioned to; s3control, whose endpoint puts the account id in the host name) is written by hand
in the API reference's shape. The snapshot must hold the same
fields the live collector fills (``iamgraph/collect/aws_org.py``, ``aws_account.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

from iamgraph.collect import files as files_mod
from iamgraph.collect import files_identity_center as ic_mod
from iamgraph.collect.files import load_paths
from iamgraph.errors import InputError
from iamgraph.graph import build_graph
from iamgraph.snapshot.model import (
    AccountAssignment,
    CustomerManagedPolicyReference,
    GroupMembership,
    PermissionsBoundaryRef,
)

REGION = "us-east-1"
BUCKET = "data-bucket"
BPA_ACCOUNT = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
               "RestrictPublicBuckets": True}
BPA_BUCKET = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
              "RestrictPublicBuckets": False}
INLINE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _save(path: Path, response: dict[str, Any]) -> None:
    def default(o: Any) -> str:
        if isinstance(o, dt.datetime):
            return o.isoformat()
        raise TypeError(type(o).__name__)

    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, default=default, indent=2))


def _export(out: Path) -> dict[str, Any]:
    """Populate moto and write every input file; returns the facts the snapshot must hold."""
    acct = boto3.client("sts").get_caller_identity()["Account"]
    facts: dict[str, Any] = {"account": acct}
    # -- Identity Center
    sso = boto3.client("sso-admin", region_name=REGION)
    ids = boto3.client("identitystore", region_name=REGION)
    inst = sso.list_instances()
    inst_arn, store = inst["Instances"][0]["InstanceArn"], inst["Instances"][0]["IdentityStoreId"]
    ps = sso.create_permission_set(Name="DataAdmins", InstanceArn=inst_arn, Description="data",
                                   SessionDuration="PT2H")["PermissionSet"]["PermissionSetArn"]
    # SessionDuration given: moto's default is the number 3600 where AWS says "PT1H".
    plain = sso.create_permission_set(Name="Plain", InstanceArn=inst_arn,
                                      SessionDuration="PT1H")["PermissionSet"]["PermissionSetArn"]
    sso.put_inline_policy_to_permission_set(InstanceArn=inst_arn, PermissionSetArn=ps, InlinePolicy=json.dumps(INLINE))
    sso.attach_managed_policy_to_permission_set(InstanceArn=inst_arn, PermissionSetArn=ps,
                                                ManagedPolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=inst_arn, PermissionSetArn=ps, CustomerManagedPolicyReference={"Name": "data-access", "Path": "/d/"})
    uid = ids.create_user(IdentityStoreId=store, UserName="carol", DisplayName="Carol C",
                          Name={"GivenName": "Carol", "FamilyName": "C"})["UserId"]
    gid = ids.create_group(IdentityStoreId=store, DisplayName="data", Description="data team")["GroupId"]
    ids.create_group_membership(IdentityStoreId=store, GroupId=gid, MemberId={"UserId": uid})
    sso.create_account_assignment(InstanceArn=inst_arn, TargetId=acct, TargetType="AWS_ACCOUNT",
                                  PermissionSetArn=ps, PrincipalType="GROUP", PrincipalId=gid)
    ic = out / "identity-center"
    _save(ic / "list-instances.json", sso.list_instances())
    _save(ic / "list-permission-sets.json", sso.list_permission_sets(InstanceArn=inst_arn))
    for arn in (ps, plain):
        pid = arn.rsplit("/", 1)[-1]
        kw = {"InstanceArn": inst_arn, "PermissionSetArn": arn}
        _save(ic / "describe-permission-set" / f"{pid}.json", sso.describe_permission_set(**kw))
        _save(ic / "get-inline-policy-for-permission-set" / f"{pid}.json", sso.get_inline_policy_for_permission_set(**kw))
        _save(ic / "list-managed-policies-in-permission-set" / f"{pid}.json",
              sso.list_managed_policies_in_permission_set(**kw))
        _save(ic / "list-customer-managed-policy-references-in-permission-set" / f"{pid}.json",
              sso.list_customer_managed_policy_references_in_permission_set(**kw))
        provisioned = sso.list_accounts_for_provisioned_permission_set(**kw)
        if arn == ps and not provisioned["AccountIds"]:
            # moto lists no account here; CreateAccountAssignment provisions the set to the account in AWS.
            provisioned = {"AccountIds": [acct]}
        _save(ic / "list-accounts-for-provisioned-permission-set" / f"{pid}.json", provisioned)
        for a in provisioned["AccountIds"]:
            _save(ic / "list-account-assignments" / pid / f"{a}.json",
                  sso.list_account_assignments(AccountId=a, **kw))
    # moto has no GetPermissionsBoundaryForPermissionSet: the API reference's response shape.
    _save(ic / "get-permissions-boundary-for-permission-set" / f"{ps.rsplit('/', 1)[-1]}.json",
          {"PermissionsBoundary": {"CustomerManagedPolicyReference": {"Name": "limit", "Path": "/"}}})
    _save(ic / "identitystore" / "list-users.json", ids.list_users(IdentityStoreId=store))
    _save(ic / "identitystore" / "list-groups.json", ids.list_groups(IdentityStoreId=store))
    _save(ic / "identitystore" / "list-group-memberships" / f"{gid}.json",
          ids.list_group_memberships(IdentityStoreId=store, GroupId=gid))
    facts["sso"] = (inst_arn, store, ps, plain, uid, gid)
    # -- S3 Block Public Access (account and bucket)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=BPA_BUCKET)
    # s3control puts the account id in the host name, which a loopback moto server cannot answer:
    # the response is written in the API reference's shape (GetPublicAccessBlock, S3 Control).
    _save(out / "public-access-block" / f"{acct}.json", {"PublicAccessBlockConfiguration": BPA_ACCOUNT})
    _save(out / "public-access-block" / acct / f"{BUCKET}.json", s3.get_public_access_block(Bucket=BUCKET))
    _save(out / "resource-policies" / acct / "global" / "s3" / f"{BUCKET}.json",
          {"Arn": f"arn:aws:s3:::{BUCKET}", "Policy": None})
    # -- KMS key policy and grants
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]
    grantee = f"arn:aws:iam::{acct}:role/app"
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Decrypt", "GenerateDataKey"],
                     Constraints={"EncryptionContextSubset": {"app": "orders"}})
    _save(out / "resource-policies" / acct / REGION / "kms" / f"{key['KeyId']}.json",
          kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default"))
    _save(out / "kms-grants" / acct / REGION / f"{key['KeyId']}.json", kms.list_grants(KeyId=key["KeyId"]))
    facts["key"] = (key["Arn"], grantee)
    return facts


@pytest.fixture()
def exported(aws_env: Any, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "in"
    return out, _export(out)


@pytest.mark.moto
def test_identity_center_bpa_and_grants_import_as_the_collector_fills_them(
        exported: tuple[Path, dict[str, Any]]) -> None:
    out, facts = exported
    snap = load_paths([out], collected_at="2026-01-01T00:00:00Z")
    inst_arn, store, ps, plain, uid, gid = facts["sso"]
    ic = snap.identity_center
    assert ic is not None and (ic.instance_arn, ic.identity_store_id) == (inst_arn, store)
    sets = {p.arn: p for p in ic.permission_sets}
    assert set(sets) == {ps, plain}
    data = sets[ps]
    assert (data.name, data.description, data.session_duration) == ("DataAdmins", "data", "PT2H")
    assert data.inline_policy == INLINE
    assert data.aws_managed_policies == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert data.customer_managed_policies == [CustomerManagedPolicyReference(name="data-access", path="/d/")]
    assert data.permissions_boundary == PermissionsBoundaryRef(
        customer_managed_policy=CustomerManagedPolicyReference(name="limit", path="/"))
    assert sets[plain].inline_policy is None and sets[plain].permissions_boundary is None
    assert ic.assignments == [AccountAssignment(account_id=facts["account"], permission_set_arn=ps,
                                                principal_type="GROUP", principal_id=gid)]
    assert [(u.user_id, u.user_name, u.display_name) for u in ic.users] == [(uid, "carol", "Carol C")]
    assert [(g.group_id, g.display_name, g.description) for g in ic.groups] == [(gid, "data", "data team")]
    assert ic.memberships == [GroupMembership(group_id=gid, user_id=uid)]

    acct = snap.account(facts["account"])
    assert acct is not None and acct.public_access_block == BPA_ACCOUNT
    bucket = next(r for r in acct.resources if r.arn == f"arn:aws:s3:::{BUCKET}")
    assert bucket.policy is None and bucket.attributes["public_access_block"] == BPA_BUCKET
    key_arn, grantee = facts["key"]
    key = next(r for r in acct.resources if r.arn == key_arn)
    (grant,) = key.attributes["grants"]
    assert grant["GranteePrincipal"] == grantee
    assert sorted(grant["Operations"]) == ["Decrypt", "GenerateDataKey"]
    assert grant["Constraints"] == {"EncryptionContextSubset": {"app": "orders"}}
    # The graph reads the imported Identity Center like a collected one.
    build_graph(snap)


@pytest.mark.moto
@pytest.mark.parametrize(("damage", "message"), [
    ("drop-describe", "missing file of the IAM Identity Center export"),
    ("drop-membership", "missing file of the IAM Identity Center export"),
    ("stray", "was not used"),
    ("next-token", "one page of several"),
    ("grant-without-key", "whose key policy no input holds"),
    ("bpa-without-bucket", "which no input holds"),
    ("bpa-unknown-flag", "unknown key"),
])
def test_incomplete_or_wrong_inputs_stop_the_import(exported: tuple[Path, dict[str, Any]], damage: str,
                                                    message: str) -> None:
    out, facts = exported
    ic = out / "identity-center"
    ps_id = facts["sso"][2].rsplit("/", 1)[-1]
    acct = facts["account"]
    if damage == "drop-describe":
        (ic / "describe-permission-set" / f"{ps_id}.json").unlink()
    elif damage == "drop-membership":
        (ic / "identitystore" / "list-group-memberships" / f"{facts['sso'][5]}.json").unlink()
    elif damage == "stray":
        (ic / "describe-permission-set" / "ps-0000000000000000.json").write_text("{}")
    elif damage == "next-token":
        path = ic / "list-permission-sets.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "NextToken": "abc"}))
    elif damage == "grant-without-key":
        for p in (out / "resource-policies" / acct / REGION / "kms").iterdir():
            p.unlink()
    elif damage == "bpa-without-bucket":
        (out / "resource-policies" / acct / "global" / "s3" / f"{BUCKET}.json").unlink()
    elif damage == "bpa-unknown-flag":
        (out / "public-access-block" / f"{acct}.json").write_text(
            json.dumps({"PublicAccessBlockConfiguration": {**BPA_ACCOUNT, "BlockEverything": True}}))
    with pytest.raises(InputError, match=message):
        load_paths([out], collected_at="2026-01-01T00:00:00Z")


def test_readers_know_exactly_the_members_of_the_aws_shapes() -> None:
    session = botocore.session.get_session()
    sso = session.get_service_model("sso-admin")
    store = session.get_service_model("identitystore")
    kms = session.get_service_model("kms")
    assert list(sso.shape_for("InstanceMetadata").members) == list(ic_mod.INSTANCE_KEYS)
    assert list(sso.shape_for("PermissionSet").members) == list(ic_mod.PERMISSION_SET_KEYS)
    assert list(sso.shape_for("AccountAssignment").members) == list(ic_mod.ASSIGNMENT_KEYS)
    assert list(store.shape_for("User").members) == list(ic_mod.USER_KEYS)
    assert list(store.shape_for("Group").members) == list(ic_mod.GROUP_KEYS)
    assert list(store.shape_for("GroupMembership").members) == list(ic_mod.MEMBERSHIP_KEYS)
    for svc in ("s3", "s3control"):
        shape = session.get_service_model(svc).shape_for("PublicAccessBlockConfiguration")
        assert list(shape.members) == list(files_mod.BPA_FLAGS)
    assert list(kms.shape_for("GrantListEntry").members) == list(files_mod.GRANT_KEYS)
    assert list(kms.shape_for("GrantConstraints").members) == list(files_mod.GRANT_CONSTRAINT_KEYS)
