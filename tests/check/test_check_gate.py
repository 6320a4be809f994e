"""iamgraph check: Terraform plans, CloudFormation templates, policy pairs; SARIF; exit codes; config.

Expectations come from AWS documentation:
- A bucket policy with ``"Principal": "*"`` and no condition is public (S3 "The meaning of public":
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html#access-control-block-public-access-policy-status).
- ``"AWS": "*"`` is the same as ``"*"`` for every principal, anonymous included (IAM "AWS JSON policy
  elements: Principal", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-anonymous).
- Fixing a Principal "*" to a source ARN (aws:SourceArn) or an organization (aws:PrincipalOrgID)
  restricts who can use it (same S3 page: values of those keys make a policy non-public).
- A role's trust policy naming another account's root lets that account's admins delegate the role
  (IAM "Cross account resource access": https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies-cross-account-resource-access.html).
- AdministratorAccess is Action "*" on Resource "*" (AWS managed policy reference).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from iamgraph.cli import app

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["check", *args])
    return res.exit_code, res.stdout


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[nth - 1]


@pytest.fixture(scope="module")
def plan_result() -> dict[str, Any]:
    code, out = run("--terraform-plan", str(DATA / "plan.json"), "--format", "json")
    assert code == 1, out
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def cfn_result() -> dict[str, Any]:
    code, out = run("--cloudformation", str(DATA / "template.yaml"), "--format", "json")
    assert code == 1, out
    result: dict[str, Any] = json.loads(out)
    return result


def by(result: dict[str, Any], rule: str, subject: str) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["rule"].startswith(rule) and f["subject"].startswith(subject)]


# -- Terraform -----------------------------------------------------------------------------------------


def test_plan_public_bucket_policy(plan_result: dict[str, Any]) -> None:
    (f,) = by(plan_result, "IG002", "aws_s3_bucket_policy.public")
    assert f["severity"] == "critical"
    assert f["details"]["actions"] == ["s3:GetObject"]
    assert f["line"] == line_of(DATA / "plan.json", '\\"Sid\\":\\"PublicRead\\"')


def test_plan_public_trust_policy_and_new_inline_policy(plan_result: dict[str, Any]) -> None:
    (f,) = by(plan_result, "IG002", "aws_iam_role.app (trust policy)")
    assert f["severity"] == "critical" and f["details"]["actions"] == ["sts:AssumeRole"]
    # The before side trusted only ec2.amazonaws.com: the only line whose trust has AWS "*" is after.
    assert f["line"] == line_of(DATA / "plan.json", '{\\"AWS\\":\\"*\\"},\\"Action\\":\\"sts:AssumeRole\\"')
    (inline,) = by(plan_result, "IG001", "aws_iam_role.app (inline policy logs)")
    assert {n["action"] for n in inline["details"]["new"]} == {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_plan_updated_policy_new_access_and_escalation(plan_result: dict[str, Any]) -> None:
    (new,) = by(plan_result, "IG001", "aws_iam_policy.reader")
    # Only the two added actions: s3:GetObject/ListBucket were there before.
    assert {n["action"] for n in new["details"]["new"]} == {"iam:CreatePolicyVersion", "s3:DeleteObject"}
    assert new["severity"] == "high"  # iam:CreatePolicyVersion is Permissions management
    (esc,) = by(plan_result, "IG005", "aws_iam_policy.reader")
    assert esc["details"]["actions"] == ["iam:CreatePolicyVersion"]
    (wild,) = by(plan_result, "IG007", "aws_iam_policy.reader")
    assert set(wild["details"]["actions"]) == {"iam:CreatePolicyVersion", "s3:DeleteObject"}


def test_plan_admin_inline_and_attachment(plan_result: dict[str, Any]) -> None:
    assert by(plan_result, "IG004", "aws_iam_role_policy.app_admin")[0]["severity"] == "critical"
    att = by(plan_result, "IG004", "aws_iam_role_policy_attachment.app_admin")
    assert att and att[0]["line"] == line_of(DATA / "plan.json", "policy/AdministratorAccess")
    # An admin grant is not also listed as SoD conflicts and wildcard writes.
    assert not by(plan_result, "IG006", "aws_iam_role_policy.app_admin")


def test_plan_policy_document_data_source_resolves_unknown_policy(plan_result: dict[str, Any]) -> None:
    (esc,) = by(plan_result, "IG005", "aws_iam_policy.deployer")
    assert esc["details"]["actions"] == ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"]
    assert esc["line"] == line_of(DATA / "plan.json", '"json": ')
    # The group attachment of that (not yet created) policy is judged on the policy itself.
    assert not [
        f for f in plan_result["findings"] if f["subject"].startswith("aws_iam_group_policy_attachment")
    ]


def test_plan_unknown_managed_policy_is_reported_not_passed(plan_result: dict[str, Any]) -> None:
    (f,) = by(plan_result, "IG009", "aws_iam_policy_attachment.legacy")
    assert "not known" in f["message"]


def test_plan_kms_sqs_sns(plan_result: dict[str, Any]) -> None:
    kms = by(plan_result, "IG003", "aws_kms_key.data")
    partner = [f for f in kms if "444455556666" in f["details"]["principal"]]
    assert partner and set(partner[0]["details"]["actions"]) == {"kms:Decrypt", "kms:DescribeKey"}
    (sqs,) = by(plan_result, "IG002", "aws_sqs_queue_policy.jobs")
    assert sqs["severity"] == "medium" and not sqs["details"]["definite"]  # pinned by aws:SourceArn
    (sns,) = by(plan_result, "IG002", "aws_sns_topic_policy.events")
    assert sns["details"]["actions"] == ["sns:Subscribe"]  # Publish was already granted to the owner only
    assert not by(plan_result, "IG", "aws_sqs_queue.unchanged")


def test_plan_kms_owner_from_config_is_not_cross_account(tmp_path: Path) -> None:
    cfg = tmp_path / "iamgraph.yaml"
    cfg.write_text("check:\n  accounts: ['111122223333']\n")
    _code, out = run("--terraform-plan", str(DATA / "plan.json"), "-f", "json", "-c", str(cfg))
    kms = by(json.loads(out), "IG003", "aws_kms_key.data")
    assert [f["details"]["principal"] for f in kms] == ["arn:aws:iam::444455556666:root"]


def test_plan_that_only_narrows_is_clean() -> None:
    code, out = run("--terraform-plan", str(DATA / "plan-clean.json"))
    assert code == 0, out
    assert "pass" in out


# -- CloudFormation --------------------------------------------------------------------------------------


def test_cfn_yaml_short_tags_and_lines(cfn_result: dict[str, Any]) -> None:
    tpl = DATA / "template.yaml"
    (pub,) = by(cfn_result, "IG002", "ReportsBucketPolicy")
    assert pub["severity"] == "critical" and pub["line"] == line_of(tpl, "Sid: PublicRead")
    (trust,) = by(cfn_result, "IG003", "AppRole (AWS::IAM::Role trust policy)")
    assert trust["details"]["principal"].startswith(
        "arn:aws:iam::444455556666:"
    )  # !Sub of a parameter default
    (logs,) = by(cfn_result, "IG001", "AppRole (inline policy logs)")
    # !Sub with a !FindInMap variable and pseudo parameters resolved.
    assert {n["resource"] for n in logs["details"]["new"]} == {
        "arn:aws:logs:us-east-1:000000000000:log-group:/acme/app:*"
    }
    (esc,) = by(cfn_result, "IG005", "DeployPolicy")
    assert esc["line"] == line_of(tpl, "Sid: ManageUsers")
    (admin,) = by(cfn_result, "IG004", "AppRole (managed policy")
    assert admin["line"] == line_of(tpl, "policy/AdministratorAccess")


def test_cfn_unresolvable_values_are_unknown_not_dropped(cfn_result: dict[str, Any]) -> None:
    env = by(cfn_result, "IG009", "EnvPolicy")
    assert env and "Fn::GetAtt Table.Arn" in env[0]["message"] and "Env has no Default" in env[0]["message"]
    assert any(
        "AWS::AccountId" in f["message"] for f in cfn_result["findings"] if f["rule"].startswith("IG009")
    )
    (org,) = by(cfn_result, "IG002", "EventsTopicPolicy")
    assert org["severity"] == "medium"  # Principal "*" pinned by aws:PrincipalOrgID
    assert not by(cfn_result, "IG002", "JobsQueuePolicy")  # a service principal is not public


def test_cfn_json_clean_template_exit_0() -> None:
    code, out = run("--cloudformation", str(DATA / "template-clean.json"))
    assert code == 0, out


def test_cfn_bad_ref_is_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "Resources:\n  P:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n"
        "      PolicyDocument:\n        Statement:\n          - Effect: Allow\n"
        "            Action: s3:GetObject\n            Resource: !Ref Nope\n"
    )
    res = runner.invoke(app, ["check", "--cloudformation", str(bad)])
    assert res.exit_code == 2
    assert "Nope" in res.stderr and "bad.yaml" in res.stderr


# -- pairs, SARIF, exit codes, config -----------------------------------------------------------------------


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_pair_exit_codes_and_threshold(tmp_path: Path) -> None:
    before = _write(
        tmp_path / "b.json",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}],
        },
    )
    same = _write(tmp_path / "same.json", json.loads(before.read_text()))
    wider = _write(
        tmp_path / "a.json",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"},
            ],
        },
    )
    assert run("--before", str(before), "--after", str(same))[0] == 0
    assert run("--before", str(before), "--after", str(wider))[0] == 0  # medium < default threshold high
    code, out = run("--before", str(before), "--after", str(wider), "--fail-on", "medium")
    assert code == 1 and "IG001" in out
    assert run("--before", str(before))[0] == 2
    assert run("--after", str(wider), "--terraform-plan", str(DATA / "plan.json"))[0] == 2
    assert run("--after", str(tmp_path / "missing.json"))[0] == 2
    (tmp_path / "broken.json").write_text('{"Statement": [}')
    res = runner.invoke(app, ["check", "--after", str(tmp_path / "broken.json")])
    assert res.exit_code == 2 and "broken.json" in res.stderr and "line 1" in res.stderr


def test_suppression_and_severity_override(tmp_path: Path) -> None:
    cfg = tmp_path / "iamgraph.yaml"
    cfg.write_text(
        "check:\n  fail_on: critical\n  suppressions:\n"
        "    - rule: IG002\n      subject: 'aws_s3_bucket_policy.*'\n      reason: website bucket, reviewed\n"
        "    - rule: IG002\n      subject: 'aws_sns_topic_policy.events'\n      reason: expired\n"
        "      expires: 2000-01-01\n"
        "  severity_overrides:\n    IG004: high\n    IG002-public-access: high\n"
    )
    code, out = run("--terraform-plan", str(DATA / "plan.json"), "-f", "json", "-c", str(cfg))
    res = json.loads(out)
    assert code == 0, "every critical was downgraded or suppressed"
    (s3,) = by(res, "IG002", "aws_s3_bucket_policy.public")
    assert s3["suppressed"] == "website bucket, reviewed"
    (sns,) = by(res, "IG002", "aws_sns_topic_policy.events")
    assert sns["suppressed"] is None and sns["severity"] == "high"
    bad = tmp_path / "bad.yaml"
    bad.write_text("check:\n  suppressions:\n    - rule: IG002\n")
    assert (
        runner.invoke(app, ["check", "--terraform-plan", str(DATA / "plan.json"), "-c", str(bad)]).exit_code
        == 2
    )


def test_sarif_is_valid_and_located(tmp_path: Path) -> None:
    out_file = tmp_path / "out.sarif"
    for inp in (
        ["--terraform-plan", str(DATA / "plan.json")],
        ["--cloudformation", str(DATA / "template.yaml")],
    ):
        res = runner.invoke(app, ["check", *inp, "--format", "sarif", "-o", str(out_file)])
        assert res.exit_code == 1
        sarif = json.loads(out_file.read_text())
        jsonschema.validate(sarif, SCHEMA)
        results = sarif["runs"][0]["results"]
        assert results and all(r["ruleId"].startswith("IG") for r in results)
        located = [r for r in results if "region" in r["locations"][0]["physicalLocation"]]
        assert len(located) >= len(results) - 3
        uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith("/") and uri.endswith((".json", ".yaml"))
        levels = {r["level"] for r in results}
        assert "error" in levels and levels <= {"error", "warning", "note"}
    # A schema-breaking document must fail validation (the check can fail).
    broken = dict(sarif, version="2.0")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_plan_that_is_not_a_plan(tmp_path: Path) -> None:
    p = _write(tmp_path / "x.json", {"hello": 1})
    res = runner.invoke(app, ["check", "--terraform-plan", str(p)])
    assert res.exit_code == 2 and "terraform show -json" in res.stderr


def test_repeated_json_key_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "dup.json"
    p.write_text('{"Version": "2012-10-17", "Statement": [], "Statement": []}')
    res = runner.invoke(app, ["check", "--after", str(p)])
    assert res.exit_code == 2 and re.search(r"repeated key 'Statement'", res.stderr)


def test_pair_lines_and_resource_kind(tmp_path: Path) -> None:
    after = _write(
        tmp_path / "after.json",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Own",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                },
                {
                    "Sid": "World",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                },
            ],
        },
    )
    code, out = run(
        "--after", str(after), "--kind", "resource", "--resource-arn", "arn:aws:s3:::b", "-f", "json"
    )
    assert code == 1
    (pub,) = by(json.loads(out), "IG002", str(after))
    # json.dumps(indent=2) puts the second statement's "{" on the line before its "Sid": "World".
    assert pub["line"] == line_of(after, '"Sid": "World"') - 1
    assert run("--after", str(after), "--kind", "nonsense")[0] == 2


def test_plan_role_managed_policy_arns(plan_result: dict[str, Any]) -> None:
    """aws_iam_role.managed_policy_arns: only the added ARN is a change; IAMFullAccess lets the role attach
    policies and write inline policies (iam:AttachRolePolicy, iam:PutRolePolicy: Permissions management)."""
    (esc,) = by(
        plan_result, "IG005", "aws_iam_role.app (managed policy arn:aws:iam::aws:policy/IAMFullAccess)"
    )
    assert {"iam:AttachRolePolicy", "iam:PutRolePolicy", "iam:CreatePolicyVersion"} <= set(
        esc["details"]["actions"]
    )
    assert len(esc["details"]["methods"]) >= 10
    assert not by(
        plan_result, "IG", "aws_iam_role.app (managed policy arn:aws:iam::aws:policy/ReadOnlyAccess)"
    )


def test_plan_user_group_queue_topic(plan_result: dict[str, Any]) -> None:
    (esc,) = by(plan_result, "IG005", "aws_iam_user_policy.ops")
    assert esc["details"]["actions"] == ["iam:CreateLoginProfile"]  # on user/*: other users' passwords
    (wild,) = by(plan_result, "IG007", "aws_iam_group_policy.devs")
    assert wild["details"]["actions"] == ["ec2:TerminateInstances"]
    (queue,) = by(plan_result, "IG002", "aws_sqs_queue.orders")
    assert queue["severity"] == "critical" and queue["details"]["actions"] == ["sqs:ReceiveMessage"]
    (topic,) = by(plan_result, "IG003", "aws_sns_topic.alerts")
    assert topic["details"]["principal"].startswith("arn:aws:iam::444455556666:")


def test_cfn_user_group_role_policies(cfn_result: dict[str, Any]) -> None:
    tpl = DATA / "template.yaml"
    (pw,) = by(cfn_result, "IG005", "OpsUser (inline policy passwords)")
    assert pw["line"] == line_of(tpl, "Sid: Passwords")
    (wild,) = by(cfn_result, "IG007", "DevsGroupPolicy")
    assert wild["line"] == line_of(tpl, "Sid: Terminate")
    (queues,) = by(cfn_result, "IG001", "AppRolePolicy")
    assert [n["resource"] for n in queues["details"]["new"]] == ["arn:aws:sqs:us-east-1:000000000000:jobs"]
    # iam:CreateAccessKey on user/${aws:username}: the user's own keys, which is not an escalation
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
    (own,) = by(cfn_result, "IG001", "OpsUserPolicy")
    assert [n["resource"] for n in own["details"]["new"]] == ["arn:aws:iam::000000000000:user/ops"]
    assert not by(cfn_result, "IG005", "OpsUserPolicy")


def test_trust_pair_oidc_subject(tmp_path: Path) -> None:
    """GitHub's OIDC tokens go to every GitHub user: a trust without a ``sub`` condition lets any repository
    assume the role (IAM "Configuring a role for GitHub OIDC identity provider":
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html#idp_oidc_Create_GitHub)."""
    provider = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    base = {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    aud = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
    sub = {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:acme/app:ref:refs/heads/main",
        }
    }
    role = ["--kind", "trust", "--resource-arn", "arn:aws:iam::111122223333:role/deploy", "-f", "json"]
    open_ = _write(
        tmp_path / "open.json", {"Version": "2012-10-17", "Statement": [base | {"Condition": aud}]}
    )
    pinned = _write(
        tmp_path / "pinned.json", {"Version": "2012-10-17", "Statement": [base | {"Condition": sub}]}
    )
    code, out = run("--after", str(open_), *role)
    (f,) = [x for x in json.loads(out)["findings"] if x["rule"].startswith("IG002")]
    assert code == 1 and f["severity"] == "high" and "no condition pins" in f["message"]
    code, out = run("--after", str(pinned), *role)
    found = json.loads(out)["findings"]
    assert code == 0 and not [x for x in found if x["rule"].startswith("IG002")]
    assert [x["rule"] for x in found if "identities of" in x["message"]] == ["IG001-new-access"]


def test_resource_pair_cross_account_user(tmp_path: Path) -> None:
    """A bucket policy naming a user of another account grants it access (its own identity policy must also
    allow, which the gate assumes: that is the exposure the bucket owner controls)."""
    bob = "arn:aws:iam::444455556666:user/bob"
    doc = _write(
        tmp_path / "p.json",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": bob},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                }
            ],
        },
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text("check:\n  accounts: ['111122223333']\n")
    _code, out = run(
        "--after",
        str(doc),
        "--kind",
        "resource",
        "--resource-arn",
        "arn:aws:s3:::b",
        "-f",
        "json",
        "-c",
        str(cfg),
    )
    (f,) = [x for x in json.loads(out)["findings"] if x["rule"].startswith("IG003")]
    assert f["details"]["principal"] == bob and f["details"]["actions"] == ["s3:GetObject"]
    assert not [x for x in json.loads(out)["findings"] if x["rule"].startswith("IG002")]


# The gate asks about made-up callers (a role of each account a policy names, a member of a group); findings
# name what they stand for, never the made-up names.
INTERNAL_NAMES = re.compile(r"iamgraph-(?:check-probe|check-member-of|sod|policy-probe|new-principal|variable)")


@pytest.mark.parametrize("source", ["--terraform-plan=plan.json", "--cloudformation=template.yaml"])
@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_findings_name_no_internal_probe(source: str, fmt: str) -> None:
    flag, name = source.split("=")
    code, out = run(flag, str(DATA / name), "--format", fmt)
    assert code == 1, out
    assert "IG003" in out  # the cross-account findings, which ask about a probe of the named account
    assert not INTERNAL_NAMES.search(out), INTERNAL_NAMES.search(out)


def test_a_named_account_is_shown_as_the_account(plan_result: dict[str, Any]) -> None:
    (topic,) = by(plan_result, "IG003", "aws_sns_topic.alerts")
    # A policy that names an account (its 12 digits or its root ARN) trusts the account, which delegates to any
    # of its principals its own policies allow (IAM "AWS account principals").
    assert topic["details"]["principal"] == "arn:aws:iam::444455556666:root"
    assert "account 444455556666 (any principal its own policies allow), another account" in topic["message"]
