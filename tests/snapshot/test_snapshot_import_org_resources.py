"""Organizations exports, resource-policy folders and credential reports, produced by a moto server.

The files are written the way `aws ... --output json` prints them (boto3 response minus
ResponseMetadata, timestamps as ISO text, blobs base64), into the layouts of docs/snapshot-format.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from iamgraph.collect.files import load_paths
from iamgraph.errors import InputError
from iamgraph.snapshot import SnapshotIndex, read_snapshot, write_snapshot

pytestmark = pytest.mark.moto

WHEN = "2026-01-01T00:00:00Z"
DENY_LEAVE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}],
}
DENY_REGIONS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "NotAction": ["iam:*", "sts:*"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}},
        }
    ],
}


def _save(path: Path, response: dict[str, Any]) -> None:
    def default(o: Any) -> str:
        if isinstance(o, dt.datetime):
            return o.isoformat()
        if isinstance(o, bytes):
            return base64.b64encode(o).decode()
        raise TypeError(type(o).__name__)

    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, default=default, indent=2))


def _export_org(out: Path) -> dict[str, Any]:
    org = boto3.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root_id = org.list_roots()["Roots"][0]["Id"]
    org.enable_policy_type(RootId=root_id, PolicyType="SERVICE_CONTROL_POLICY")
    prod = org.create_organizational_unit(ParentId=root_id, Name="prod")["OrganizationalUnit"]["Id"]
    web = org.create_organizational_unit(ParentId=prod, Name="web")["OrganizationalUnit"]["Id"]
    acct = org.create_account(AccountName="web-prod", Email="web@example.com")["CreateAccountStatus"][
        "AccountId"
    ]
    org.move_account(AccountId=acct, SourceParentId=root_id, DestinationParentId=web)
    scp = org.create_policy(
        Content=json.dumps(DENY_REGIONS), Description="regions", Name="regions", Type="SERVICE_CONTROL_POLICY"
    )["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=scp, TargetId=prod)
    leave = org.create_policy(
        Content=json.dumps(DENY_LEAVE), Description="", Name="no-leave", Type="SERVICE_CONTROL_POLICY"
    )["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=leave, TargetId=root_id)
    org.attach_policy(PolicyId=leave, TargetId=acct)

    _save(out / "describe-organization.json", org.describe_organization())
    _save(out / "list-roots.json", org.list_roots())
    _save(out / "list-accounts.json", org.list_accounts())
    for parent in (root_id, prod, web):
        _save(
            out / f"list-organizational-units-for-parent/{parent}.json",
            org.list_organizational_units_for_parent(ParentId=parent),
        )
        _save(out / f"list-accounts-for-parent/{parent}.json", org.list_accounts_for_parent(ParentId=parent))
    for pol in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]:
        _save(out / f"describe-policy/{pol['Id']}.json", org.describe_policy(PolicyId=pol["Id"]))
        _save(
            out / f"list-targets-for-policy/{pol['Id']}.json", org.list_targets_for_policy(PolicyId=pol["Id"])
        )
    _save(
        out / "list-policies/SERVICE_CONTROL_POLICY.json", org.list_policies(Filter="SERVICE_CONTROL_POLICY")
    )
    mgmt = org.describe_organization()["Organization"]["MasterAccountId"]
    return {"root": root_id, "prod": prod, "web": web, "acct": acct, "scp": scp, "leave": leave, "mgmt": mgmt}


def _export_resources(out: Path, account: str) -> dict[str, str]:
    """One resource policy per service, each file as its `aws <service> get-*-policy` call prints it."""
    region = "us-east-1"
    base = out / "resource-policies" / account
    arns: dict[str, str] = {}

    def pol(resource: str, principal: Any = None) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal or {"AWS": "arn:aws:iam::999988887777:root"},
                    "Action": "*",
                    "Resource": resource,
                }
            ],
        }

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data-bucket")
    s3.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps(pol("arn:aws:s3:::data-bucket/*", "*")))
    _save(base / "global/s3/data-bucket.json", s3.get_bucket_policy(Bucket="data-bucket"))
    arns["s3"] = "arn:aws:s3:::data-bucket"

    kms = boto3.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(pol("*")))
    _save(
        base / f"{region}/kms/{key['KeyId']}.json",
        kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default"),
    )
    arns["kms"] = key["Arn"]

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    qarn = f"arn:aws:sqs:{region}:{account}:jobs"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(pol(qarn))})
    _save(
        base / f"{region}/sqs/jobs.json",
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy", "QueueArn"]),
    )
    arns["sqs"] = qarn

    sns = boto3.client("sns")
    tarn = sns.create_topic(Name="alerts")["TopicArn"]
    sns.set_topic_attributes(TopicArn=tarn, AttributeName="Policy", AttributeValue=json.dumps(pol(tarn)))
    _save(base / f"{region}/sns/alerts.json", sns.get_topic_attributes(TopicArn=tarn))
    arns["sns"] = tarn

    sm = boto3.client("secretsmanager")
    sarn = sm.create_secret(Name="db/password", SecretString="not-a-real-secret")["ARN"]
    sm.put_resource_policy(SecretId=sarn, ResourcePolicy=json.dumps(pol("*")))
    _save(base / f"{region}/secretsmanager/db-password.json", sm.get_resource_policy(SecretId=sarn))
    arns["secretsmanager"] = sarn

    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName="team/app")
    ecr.set_repository_policy(repositoryName="team/app", policyText=json.dumps({**pol("*"), "Statement": [
        {k: v for k, v in pol("*")["Statement"][0].items() if k != "Resource"}]}))  # fmt: skip
    _save(base / f"{region}/ecr/team/app.json", ecr.get_repository_policy(repositoryName="team/app"))
    arns["ecr"] = f"arn:aws:ecr:{region}:{account}:repository/team/app"

    iam = boto3.client("iam")
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(e, c):\n    return 1\n")
    lam = boto3.client("lambda")
    lam.create_function(
        FunctionName="fn",
        Runtime="python3.11",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    lam.add_permission(
        FunctionName="fn", StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
    )
    _save(base / f"{region}/lambda/fn.json", lam.get_policy(FunctionName="fn"))
    arns["lambda"] = f"arn:aws:lambda:{region}:{account}:function:fn"
    return arns


@pytest.fixture()
def exported(aws_env: Any, tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, str]]:
    org_ids = _export_org(tmp_path / "org")
    arns = _export_resources(tmp_path, org_ids["mgmt"])
    iam = boto3.client("iam")
    iam.create_user(UserName="alice")
    iam.generate_credential_report()
    _save(tmp_path / "credential-report.json", iam.get_credential_report())
    return tmp_path, org_ids, arns


def test_org_resources_and_credential_report(
    exported: tuple[Path, dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    root, ids, arns = exported
    snap = load_paths(
        [root / "org", root / "resource-policies", root / "credential-report.json"], collected_at=WHEN
    )
    out = tmp_path / "out" / "s.json.gz"
    back = read_snapshot(out) if write_snapshot(snap, out) else None
    assert back is not None

    org = back.organization
    assert org is not None
    assert org.management_account_id == ids["mgmt"] and org.root_id == ids["root"]
    assert "SERVICE_CONTROL_POLICY" in org.enabled_policy_types
    assert {(u.id, u.parent_id) for u in org.organizational_units} == {
        (ids["prod"], ids["root"]),
        (ids["web"], ids["prod"]),
    }
    parents = {a.id: a.parent_id for a in org.accounts}
    assert parents[ids["acct"]] == ids["web"] and parents[ids["mgmt"]] == ids["root"]
    by_id = {p.id: p for p in org.policies}
    assert by_id[ids["scp"]].document == DENY_REGIONS and by_id[ids["scp"]].targets == [ids["prod"]]
    assert sorted(by_id[ids["leave"]].targets) == sorted([ids["root"], ids["acct"]])
    # the AWS managed FullAWSAccess SCP that Organizations attaches to everything is kept too
    assert any(p.aws_managed and p.name == "FullAWSAccess" for p in org.policies)

    # the index walks root -> prod -> web -> account, with the SCPs of each level
    chain = SnapshotIndex(back).org_chain(ids["acct"])
    assert [lvl.target_id for lvl in chain] == [ids["root"], ids["prod"], ids["web"], ids["acct"]]
    assert ids["scp"] in [p.id for p in chain[1].scps]

    acct = back.account(ids["mgmt"])
    assert acct is not None
    # the account's name comes from list-accounts
    assert acct.name and acct.name == next(a.name for a in org.accounts if a.id == ids["mgmt"])
    res = {r.arn: r for r in acct.resources}
    assert set(res) == set(arns.values())
    assert res[arns["s3"]].type == "s3:bucket" and res[arns["s3"]].policy is not None
    assert res[arns["s3"]].policy["Statement"][0]["Principal"] == "*"
    assert res[arns["kms"]].region == "us-east-1" and res[arns["kms"]].type == "kms:key"
    assert res[arns["secretsmanager"]].type == "secretsmanager:secret"  # ARN taken from the file
    assert res[arns["ecr"]].name == "team/app"
    lam = res[arns["lambda"]].policy
    assert lam is not None and lam["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}

    users = [row["user"] for row in acct.credential_report]
    # moto's report has no <root_account> row (real AWS puts it first); alice's row names the account
    assert users == ["alice"]
    assert all(row["arn"].startswith(f"arn:aws:iam::{ids['mgmt']}:") for row in acct.credential_report)


def test_org_export_problems_are_named(exported: tuple[Path, dict[str, Any], dict[str, str]]) -> None:
    root, ids, _ = exported
    org = root / "org"
    # a stray file is not skipped silently
    (org / "list-tags-for-resource.json").write_text("{}")
    with pytest.raises(
        InputError, match=r"list-tags-for-resource\.json: this file of the organizations export was not used"
    ):
        load_paths([org])
    (org / "list-tags-for-resource.json").unlink()
    # a policy listed without its targets: its attachments would be unknown
    (org / f"list-targets-for-policy/{ids['scp']}.json").unlink()
    with pytest.raises(
        InputError, match=re.escape(f"list-targets-for-policy/{ids['scp']}.json") + r": missing file"
    ):
        load_paths([org])
    # an account whose parent nobody says: the SCPs above it would be unknown
    for f in (org / "list-accounts-for-parent").iterdir():
        f.unlink()
    with pytest.raises(InputError, match=r"list-accounts\.json: Accounts\[\d\]: no parent known for account"):
        load_paths([org])


def test_resource_layout_problems_are_named(tmp_path: Path) -> None:
    base = tmp_path / "resource-policies"
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}],
    }
    (base / "111122223333/global/s3").mkdir(parents=True)
    (base / "111122223333/global/s3/b.json").write_text(json.dumps(doc))
    snap = load_paths([base])
    assert [r.arn for r in snap.accounts[0].resources] == ["arn:aws:s3:::b"]

    bad = base / "111122223333/us-east-1/secretsmanager/s.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"s\.json: cannot derive the ARN of a secretsmanager resource"):
        load_paths([base])
    bad.write_text(
        json.dumps({"Arn": "arn:aws:secretsmanager:us-east-1:444455556666:secret:s-AbCdEf", "Policy": doc})
    )
    with pytest.raises(InputError, match=r"names account 444455556666, but the file is under 111122223333"):
        load_paths([base])
    bad.unlink()

    nodoc = base / "111122223333/global/s3/c.json"
    nodoc.write_text(json.dumps({"Policy": json.dumps({"Version": "2012-10-17", "Statement": []})}))
    with pytest.raises(InputError, match=r"c\.json: Policy\.Statement: the policy has 0 statements"):
        load_paths([base])
    nodoc.write_text(
        json.dumps(
            {"Policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})}
        )
    )
    with pytest.raises(
        InputError,
        match=r"c\.json: Policy\.Statement\[0\]: a resource-based policy statement needs Principal",
    ):
        load_paths([base])
    nodoc.unlink()

    nested = base / "111122223333/global/s3/a/b.json"
    nested.parent.mkdir()
    nested.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"b\.json: sub-folders are for ECR repository names"):
        load_paths([base])
    nested.unlink()
    nested.parent.rmdir()

    (base / "not-an-account").mkdir()
    (base / "not-an-account/x.json").write_text("{}")
    with pytest.raises(InputError, match=r"x\.json: not in the resource policy layout"):
        load_paths([base])


def test_credential_report_csv(tmp_path: Path) -> None:
    header = "user,arn,user_creation_time,password_enabled,mfa_active,access_key_1_active"
    rows = [
        "<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,true,false",
        "alice,arn:aws:iam::111122223333:user/alice,2021-01-01T00:00:00+00:00,true,false,true",
    ]
    f = tmp_path / "report.csv"
    f.write_text("\n".join([header, *rows]) + "\n")
    [acct] = load_paths([f]).accounts
    assert acct.account_id == "111122223333"
    assert acct.credential_report[1] == {
        "user": "alice",
        "arn": "arn:aws:iam::111122223333:user/alice",
        "user_creation_time": "2021-01-01T00:00:00+00:00",
        "password_enabled": "true",
        "mfa_active": "false",
        "access_key_1_active": "true",
    }
    f.write_text("\n".join([header, rows[0], "alice,arn:aws:iam::111122223333:user/alice"]) + "\n")
    with pytest.raises(InputError, match=r"report\.csv: line 3: 2 fields where the header has 6"):
        load_paths([f])
    f.write_text("name,value\nx,y\n")
    with pytest.raises(InputError, match=r"report\.csv: line 1: not an IAM credential report"):
        load_paths([f])
