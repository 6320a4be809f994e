"""Snapshot 1.1 compute kinds from the live collector: launch templates (with the Auto Scaling groups that use
them), CloudFormation StackSets, App Runner services, AgentCore code interpreters, runtimes and browsers.

Launch templates, Auto Scaling groups, StackSets and AgentCore runtimes are created in a moto server
and read back over HTTP by the real collector; each collected item is compared field by field with what
the test created. What moto 5.2.5 lacks is answered per operation by ``collect_moto_org.fake_operation``
(a before-call short-circuit whose answers are validated against botocore's service model, like
botocore's Stubber), and only that:
- App Runner ``ListServices`` / ``DescribeService``: not implemented (HTTP 500);
- AgentCore ``ListCodeInterpreters`` / ``GetCodeInterpreter`` / ``ListBrowsers`` / ``GetBrowser``:
  not implemented (HTTP 500).
moto quirks the test lives with: ``ListStackSets`` ignores its ``Status`` filter (deleted stack sets are
listed), a service-managed stack set still reports an ``AdministrationRoleARN``, and AgentCore runtime
ARNs have the form ``...:agent/<uuid>:<version>`` (AWS: ``...:runtime/<id>``); the collector keeps the
ARN the service returns, so the runtime is compared with moto's.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from collect_moto_org import fake_operation, inject_on_send

from iamgraph.collect.aws import CollectOptions, collect
from iamgraph.collect.aws_api import PARTIAL_REGION_ATTEMPTS, ClientSpec
from iamgraph.snapshot.model import Compute, Snapshot

pytestmark = [pytest.mark.moto]

ACCT = "123456789012"  # moto's default caller account
OTHER = "111122223333"
REGION = "us-east-1"
REGION2 = "eu-west-1"
T0 = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
NEW_SERVICES = {"ec2", "autoscaling", "cloudformation", "apprunner", "bedrock-agentcore-control"}
NEW_KINDS = {
    "ec2_launch_template",
    "cloudformation_stackset",
    "apprunner_service",
    "bedrock_agentcore_code_interpreter",
    "bedrock_agentcore_runtime",
    "bedrock_agentcore_browser",
}
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-resource-based-policies.html (ARN format)
ASG_ARN = re.compile(
    rf"^arn:aws:autoscaling:{REGION}:{ACCT}:autoScalingGroup:[0-9a-f-]+:autoScalingGroupName/"
)
TEMPLATE = json.dumps({"Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


def _role(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:role/{name}"


def _lt_arn(region: str, template_id: str) -> str:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html (launch-template)
    return f"arn:aws:ec2:{region}:{ACCT}:launch-template/{template_id}"


# ---------------------------------------------------------------- population (moto) and fakes (the rest)


def _populate() -> dict[str, Any]:
    """Create the moto-supported part and return what a correct collector must report."""
    built: dict[str, Any] = {}
    iam = boto3.client("iam")
    web_prof = iam.create_instance_profile(InstanceProfileName="web-profile", Path="/apps/")[
        "InstanceProfile"
    ]
    batch_prof = iam.create_instance_profile(InstanceProfileName="batch-profile")["InstanceProfile"]
    assert web_prof["Arn"] == f"arn:aws:iam::{ACCT}:instance-profile/apps/web-profile"
    built["profiles"] = (web_prof["Arn"], batch_prof["Arn"])

    ec2 = boto3.client("ec2", region_name=REGION)
    # "web": v1 has no profile, v2 names one by Name (a profile with a path), v3 by Arn, v4 has none;
    # the default is v2.
    web = ec2.create_launch_template(
        LaunchTemplateName="web",
        LaunchTemplateData={"ImageId": "ami-12c6146b"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "app", "Value": "web"}]}],
    )["LaunchTemplate"]
    wid = web["LaunchTemplateId"]
    for data in (
        {"IamInstanceProfile": {"Name": "web-profile"}},
        {"IamInstanceProfile": {"Arn": batch_prof["Arn"]}},
        {"ImageId": "ami-12c6146b"},
    ):
        ec2.create_launch_template_version(LaunchTemplateId=wid, LaunchTemplateData=data)
    ec2.modify_launch_template(LaunchTemplateId=wid, DefaultVersion="2")
    # "ghost": its profile name is not an instance profile of the account (deleted, say).
    ghost = ec2.create_launch_template(
        LaunchTemplateName="ghost", LaunchTemplateData={"IamInstanceProfile": {"Name": "gone"}}
    )["LaunchTemplate"]["LaunchTemplateId"]
    bare = ec2.create_launch_template(
        LaunchTemplateName="bare", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    eu = boto3.client("ec2", region_name=REGION2).create_launch_template(
        LaunchTemplateName="eu-batch", LaunchTemplateData={"IamInstanceProfile": {"Arn": batch_prof["Arn"]}}
    )["LaunchTemplate"]["LaunchTemplateId"]
    built["templates"] = {"web": wid, "ghost": ghost, "bare": bare, "eu-batch": eu}

    asg = boto3.client("autoscaling", region_name=REGION)
    common: dict[str, Any] = {"MinSize": 0, "MaxSize": 1, "AvailabilityZones": [f"{REGION}a"]}
    # by name and $Latest; by id and a version number; by id without a version (AWS: $Default);
    # in a mixed instances policy, by name, and in one of its overrides.
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-latest",
        LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        **common,
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-pinned", LaunchTemplate={"LaunchTemplateId": wid, "Version": "1"}, **common
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="bare-default", LaunchTemplate={"LaunchTemplateId": bare}, **common
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-mixed",
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "web", "Version": "3"},
                # An override with its own template, for one instance type.
                "Overrides": [
                    {
                        "InstanceType": "t3.micro",
                        "LaunchTemplateSpecification": {"LaunchTemplateId": bare, "Version": "$Latest"},
                    }
                ],
            }
        },
        **common,
    )
    built["asg_arns"] = {
        g["AutoScalingGroupName"]: g["AutoScalingGroupARN"]
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    }

    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack_set(
        StackSetName="baseline",
        TemplateBody=TEMPLATE,
        AdministrationRoleARN=_role("stackset-admin"),
        ExecutionRoleName="stackset-exec",
        Tags=[{"Key": "owner", "Value": "platform"}],
    )
    cfn.create_stack_instances(StackSetName="baseline", Accounts=[OTHER, ACCT], Regions=[REGION2, REGION])
    cfn.create_stack_instances(StackSetName="baseline", Accounts=[OTHER], Regions=["ap-southeast-2"])
    cfn.create_stack_set(
        StackSetName="org-wide",
        TemplateBody=TEMPLATE,
        PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
    )
    cfn.create_stack_set(StackSetName="retired", TemplateBody=TEMPLATE, AdministrationRoleARN=_role("old"))
    cfn.delete_stack_set(StackSetName="retired")
    eu_ss = boto3.client("cloudformation", region_name=REGION2).create_stack_set(
        StackSetName="eu-only", TemplateBody=TEMPLATE, AdministrationRoleARN=_role("eu-admin")
    )["StackSetId"]
    built["stacksets"] = {
        name: cfn.describe_stack_set(StackSetName=name)["StackSet"]["StackSetId"]
        for name in ("baseline", "org-wide")
    }
    built["stacksets"]["eu-only"] = eu_ss

    agc = boto3.client("bedrock-agentcore-control", region_name=REGION)
    rt = agc.create_agent_runtime(
        agentRuntimeName="support_agent",
        agentRuntimeArtifact={
            "containerConfiguration": {"containerUri": f"{ACCT}.dkr.ecr.{REGION}.amazonaws.com/agent:1"}
        },
        roleArn=_role("agent-runtime"),
        networkConfiguration={"networkMode": "PUBLIC"},
    )
    got = agc.get_agent_runtime(agentRuntimeId=rt["agentRuntimeId"])
    built["runtime"] = (rt["agentRuntimeArn"], got["status"], got["agentRuntimeVersion"])
    return built


CI_ARN = f"arn:aws:bedrock-agentcore:{REGION}:{ACCT}:code-interpreter-custom/data_ci-Ab12Cd34Ef"
CI_ARN2 = f"arn:aws:bedrock-agentcore:{REGION}:{ACCT}:code-interpreter-custom/sandbox_ci-Gh56Ij78Kl"
BROWSER_ARN = f"arn:aws:bedrock-agentcore:{REGION}:{ACCT}:browser-custom/research_browser-Mn90Op12Qr"
SVC_WEB = f"arn:aws:apprunner:{REGION}:{ACCT}:service/web-app/8fe1e10304f84fd2b0df550fe98a71fa"
SVC_GONE = f"arn:aws:apprunner:{REGION}:{ACCT}:service/gone/0123456789abcdef0123456789abcdef"
SVC_CODE = f"arn:aws:apprunner:{REGION}:{ACCT}:service/api-svc/fedcba9876543210fedcba9876543210"


class Fakes:
    """The client hook answering what moto does not implement (App Runner, AgentCore interpreters/browsers)."""

    def __init__(self) -> None:
        self.list_params: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, spec: ClientSpec, client: Any) -> None:
        if spec.service == "apprunner":
            self.list_params[f"apprunner:{spec.region}"] = fake_operation(
                client, "ListServices", lambda p: self._services(spec.region, p)
            )
            fake_operation(client, "DescribeService", lambda p: self._service(p["ServiceArn"]))
        elif spec.service == "bedrock-agentcore-control":
            key = f"agentcore:{spec.region}"
            self.list_params[key + ":ci"] = fake_operation(
                client, "ListCodeInterpreters", lambda p: self._interpreters(spec.region, p)
            )
            fake_operation(client, "GetCodeInterpreter", self._interpreter)
            self.list_params[key + ":browser"] = fake_operation(
                client, "ListBrowsers", lambda p: self._browsers(spec.region)
            )
            fake_operation(client, "GetBrowser", self._browser)

    # App Runner: two pages, one service deleted, one whose source is code (no ECR access role).
    def _services(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        if region != REGION:
            return {"ServiceSummaryList": []}
        if "NextToken" not in p:
            return {
                "ServiceSummaryList": [
                    {"ServiceArn": SVC_WEB, "ServiceName": "web-app", "Status": "RUNNING"}
                ],
                "NextToken": "page-2",
            }
        assert p["NextToken"] == "page-2"
        return {
            "ServiceSummaryList": [
                {"ServiceArn": SVC_GONE, "ServiceName": "gone", "Status": "DELETED"},
                {"ServiceArn": SVC_CODE, "ServiceName": "api-svc", "Status": "PAUSED"},
            ]
        }

    def _service(self, arn: str) -> dict[str, Any]:
        name = arn.split("/")[1]
        status = {SVC_WEB: "RUNNING", SVC_GONE: "DELETED", SVC_CODE: "PAUSED"}[arn]
        if arn == SVC_CODE:
            source: dict[str, Any] = {
                "CodeRepository": {
                    "RepositoryUrl": "https://github.com/example/api",
                    "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                },
                "AuthenticationConfiguration": {
                    "ConnectionArn": f"arn:aws:apprunner:{REGION}:{ACCT}:connection/gh/0123456789abcdef"
                },
            }
            instance: dict[str, Any] = {"Cpu": "1024", "Memory": "2048"}
        else:
            source = {
                "ImageRepository": {
                    "ImageIdentifier": f"{ACCT}.dkr.ecr.{REGION}.amazonaws.com/{name}:latest",
                    "ImageRepositoryType": "ECR",
                },
                "AuthenticationConfiguration": {"AccessRoleArn": _role("apprunner-ecr-access")},
            }
            instance = {"Cpu": "1024", "Memory": "2048", "InstanceRoleArn": _role(f"{name}-instance")}
        return {
            "Service": {
                "ServiceName": name,
                "ServiceId": arn.rsplit("/", 1)[1],
                "ServiceArn": arn,
                "CreatedAt": T0,
                "UpdatedAt": T0,
                "Status": status,
                "SourceConfiguration": source,
                "InstanceConfiguration": instance,
                "AutoScalingConfigurationSummary": {},
                "NetworkConfiguration": {},
            }
        }

    # AgentCore: custom code interpreters in two pages; AWS's own (type SYSTEM) only if asked for.
    def _interpreters(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        if region != REGION:
            return {"codeInterpreterSummaries": []}
        if p.get("type") != "CUSTOM":
            system = f"arn:aws:bedrock-agentcore:{REGION}:aws:code-interpreter/aws.codeinterpreter.v1"
            return {
                "codeInterpreterSummaries": [
                    {
                        "codeInterpreterId": "aws.codeinterpreter.v1",
                        "codeInterpreterArn": system,
                        "status": "READY",
                        "createdAt": T0,
                    }
                ]
            }
        first, second = (
            {
                "codeInterpreterId": arn.rsplit("/", 1)[1],
                "codeInterpreterArn": arn,
                "name": arn.rsplit("/", 1)[1].rsplit("-", 1)[0],
                "status": "READY",
                "createdAt": T0,
            }
            for arn in (CI_ARN, CI_ARN2)
        )
        if "nextToken" not in p:
            return {"codeInterpreterSummaries": [first], "nextToken": "more"}
        return {"codeInterpreterSummaries": [second]}

    def _interpreter(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = {CI_ARN.rsplit("/", 1)[1]: CI_ARN, CI_ARN2.rsplit("/", 1)[1]: CI_ARN2}[p["codeInterpreterId"]]
        out: dict[str, Any] = {
            "codeInterpreterId": p["codeInterpreterId"],
            "codeInterpreterArn": arn,
            "name": p["codeInterpreterId"].rsplit("-", 1)[0],
            "networkConfiguration": {"networkMode": "PUBLIC" if arn == CI_ARN else "SANDBOX"},
            "status": "READY" if arn == CI_ARN else "CREATING",
            "createdAt": T0,
            "lastUpdatedAt": T0,
        }
        if arn == CI_ARN:
            out["executionRoleArn"] = _role("ci-exec")
        return out

    def _browsers(self, region: str) -> dict[str, Any]:
        if region != REGION:
            return {"browserSummaries": []}
        summary = {
            "browserId": BROWSER_ARN.rsplit("/", 1)[1],
            "browserArn": BROWSER_ARN,
            "name": "research_browser",
            "status": "READY",
            "createdAt": T0,
        }
        return {"browserSummaries": [summary]}

    def _browser(self, p: dict[str, Any]) -> dict[str, Any]:
        assert p["browserId"] == BROWSER_ARN.rsplit("/", 1)[1]
        return {
            "browserId": p["browserId"],
            "browserArn": BROWSER_ARN,
            "name": "research_browser",
            "executionRoleArn": _role("browser-exec"),
            "networkConfiguration": {"networkMode": "PUBLIC"},
            "status": "READY",
            "createdAt": T0,
            "lastUpdatedAt": T0,
        }


def _options(tmp: Path, hook: Any, **kw: Any) -> CollectOptions:
    base: dict[str, Any] = {
        "work_dir": tmp / "work",
        "organization": False,
        "regions": (REGION, REGION2),
        "concurrency": 2,
        "max_attempts": 2,
        "rates": {},
        "default_rate": 0,
        "access_advisor": False,
        "identity_center": False,
        "client_hook": hook,
    }
    base.update(kw)
    return CollectOptions(**base)


@pytest.fixture()
def populated(aws_env: Any) -> Iterator[dict[str, Any]]:
    yield _populate()


def _by_kind(snap: Snapshot) -> dict[str, dict[str, Compute]]:
    acct = snap.account(ACCT)
    assert acct is not None
    out: dict[str, dict[str, Compute]] = {}
    for c in acct.compute:
        out.setdefault(c.kind, {})[c.arn] = c
    return out


# ---------------------------------------------------------------- the collected items match the population


def test_new_compute_kinds_match_what_was_created(populated: dict[str, Any], tmp_path: Path) -> None:
    fakes = Fakes()
    res = collect(_options(tmp_path, fakes))
    snap = res.snapshot
    assert not [e for e in snap.errors if e.service in NEW_SERVICES], snap.errors
    kinds = _by_kind(snap)
    assert set(kinds) >= NEW_KINDS

    # ---- launch templates
    web_prof, batch_prof = populated["profiles"]
    t = populated["templates"]
    asg = populated["asg_arns"]
    assert all(ASG_ARN.match(a) for a in asg.values()), asg
    lts = kinds["ec2_launch_template"]
    assert set(lts) == {
        _lt_arn(REGION, t["web"]),
        _lt_arn(REGION, t["ghost"]),
        _lt_arn(REGION, t["bare"]),
        _lt_arn(REGION2, t["eu-batch"]),
    }
    web = lts[_lt_arn(REGION, t["web"])]
    assert (web.name, web.region, web.tags, web.role_arn) == ("web", REGION, {"app": "web"}, None)
    # The default version (2) names web-profile by Name: its ARN carries the profile's path. Only the
    # $Default and $Latest versions are read (not v1, not v3).
    assert web.instance_profile_arn == web_prof
    assert web.attributes == {
        "default_version": 2,
        "latest_version": 4,
        "version_profiles": {"2": web_prof, "4": None},
        "autoscaling_groups": [
            {"name": "web-latest", "arn": asg["web-latest"], "version": "$Latest"},
            {"name": "web-mixed", "arn": asg["web-mixed"], "version": "3"},
            {"name": "web-pinned", "arn": asg["web-pinned"], "version": "1"},
        ],
    }
    ghost = lts[_lt_arn(REGION, t["ghost"])]
    # Named by Name, not an instance profile of the account: the ARN is formed without a path.
    gone = f"arn:aws:iam::{ACCT}:instance-profile/gone"
    assert (ghost.instance_profile_arn, ghost.attributes["version_profiles"]) == (gone, {"1": gone})
    assert ghost.attributes["autoscaling_groups"] == []
    bare = lts[_lt_arn(REGION, t["bare"])]
    assert bare.instance_profile_arn is None
    assert bare.attributes == {
        "default_version": 1,
        "latest_version": 1,
        "version_profiles": {"1": None},
        "autoscaling_groups": [
            {"name": "bare-default", "arn": asg["bare-default"], "version": "$Default"},
            {"name": "web-mixed", "arn": asg["web-mixed"], "version": "$Latest"},
        ],
    }
    eu = lts[_lt_arn(REGION2, t["eu-batch"])]
    assert (eu.region, eu.instance_profile_arn, eu.attributes["version_profiles"]) == (
        REGION2,
        batch_prof,
        {"1": batch_prof},
    )

    # ---- StackSets (the deleted one, which moto still lists, is left out)
    ss = populated["stacksets"]
    sets = {c.name: c for c in kinds["cloudformation_stackset"].values()}
    assert set(sets) == {"baseline", "org-wide", "eu-only"}
    base = sets["baseline"]
    assert base.arn == f"arn:aws:cloudformation:{REGION}:{ACCT}:stackset/{ss['baseline']}"
    assert (base.region, base.role_arn, base.tags) == (REGION, _role("stackset-admin"), {"owner": "platform"})
    assert base.attributes == {
        "permission_model": "SELF_MANAGED",
        "execution_role_name": "stackset-exec",
        "status": "ACTIVE",
        "instance_accounts": sorted([ACCT, OTHER]),
        "instance_regions": sorted([REGION, REGION2, "ap-southeast-2"]),
        "administration_role_arn": _role("stackset-admin"),
    }
    org = sets["org-wide"]
    # Service-managed: StackSets deploys through its own roles, whatever AdministrationRoleARN moto reports.
    assert (org.role_arn, org.attributes["permission_model"]) == (None, "SERVICE_MANAGED")
    assert (org.attributes["instance_accounts"], org.attributes["instance_regions"]) == ([], [])
    eu_only = sets["eu-only"]
    assert (eu_only.region, eu_only.role_arn) == (REGION2, _role("eu-admin"))
    assert eu_only.arn == f"arn:aws:cloudformation:{REGION2}:{ACCT}:stackset/{ss['eu-only']}"

    # ---- App Runner (faked): two pages read, the deleted service left out
    assert [p.get("NextToken") for p in fakes.list_params[f"apprunner:{REGION}"]] == [None, "page-2"]
    assert [p.get("NextToken") for p in fakes.list_params[f"apprunner:{REGION2}"]] == [None]
    services = kinds["apprunner_service"]
    assert set(services) == {SVC_WEB, SVC_CODE}
    assert (services[SVC_WEB].name, services[SVC_WEB].role_arn, services[SVC_WEB].attributes) == (
        "web-app",
        _role("web-app-instance"),
        {"status": "RUNNING", "access_role_arn": _role("apprunner-ecr-access")},
    )
    assert (services[SVC_CODE].role_arn, services[SVC_CODE].attributes) == (
        None,
        {"status": "PAUSED", "access_role_arn": None},
    )

    # ---- AgentCore: runtimes from moto, interpreters and browsers faked (custom ones only, asked for)
    rt_arn, rt_status, rt_version = populated["runtime"]
    [rt] = kinds["bedrock_agentcore_runtime"].values()
    assert (rt.arn, rt.name, rt.region, rt.role_arn) == (
        rt_arn,
        "support_agent",
        REGION,
        _role("agent-runtime"),
    )
    assert rt.attributes == {"status": rt_status, "version": rt_version}
    cis = kinds["bedrock_agentcore_code_interpreter"]
    assert set(cis) == {CI_ARN, CI_ARN2}
    assert (cis[CI_ARN].name, cis[CI_ARN].role_arn, cis[CI_ARN].attributes) == (
        "data_ci",
        _role("ci-exec"),
        {"status": "READY"},
    )
    assert (cis[CI_ARN2].role_arn, cis[CI_ARN2].attributes) == (None, {"status": "CREATING"})
    [br] = kinds["bedrock_agentcore_browser"].values()
    assert (br.arn, br.name, br.role_arn, br.attributes) == (
        BROWSER_ARN,
        "research_browser",
        _role("browser-exec"),
        {"status": "READY"},
    )
    for region in (REGION, REGION2):
        assert {p.get("type") for p in fakes.list_params[f"agentcore:{region}:ci"]} == {"CUSTOM"}
        assert {p.get("type") for p in fakes.list_params[f"agentcore:{region}:browser"]} == {"CUSTOM"}
    assert [p.get("nextToken") for p in fakes.list_params[f"agentcore:{REGION}:ci"]] == [None, "more"]

    # Every new call was made, and every call made is listed (the collector refuses others anyway).
    made = set(res.calls_by_operation)
    for op in (
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeLaunchTemplateVersions",
        "autoscaling:DescribeAutoScalingGroups",
        "cloudformation:ListStackSets",
        "cloudformation:DescribeStackSet",
        "cloudformation:ListStackInstances",
        "apprunner:ListServices",
        "apprunner:DescribeService",
        "bedrock-agentcore-control:ListCodeInterpreters",
        "bedrock-agentcore-control:GetCodeInterpreter",
        "bedrock-agentcore-control:ListAgentRuntimes",
        "bedrock-agentcore-control:GetAgentRuntime",
        "bedrock-agentcore-control:ListBrowsers",
        "bedrock-agentcore-control:GetBrowser",
    ):
        assert op in made, op


# ---------------------------------------------------------------- failures are recorded, the rest is read


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket is closed


def test_denied_and_unsupported_region_are_recorded_and_the_rest_is_collected(
    populated: dict[str, Any], tmp_path: Path
) -> None:
    fakes = Fakes()
    port = _closed_port()
    counters: dict[str, Any] = {}

    sends: dict[str, int] = {}

    def hook(spec: ClientSpec, client: Any) -> None:
        if spec.service in ("apprunner", "bedrock-agentcore-control") and spec.region == REGION2:
            # App Runner and AgentCore have no endpoint in a region they are not offered in: the
            # connection fails. The request goes to a closed port on 127.0.0.1 instead (a real
            # connection error).
            def nowhere(request: Any, service: str = spec.service, **_: Any) -> None:
                sends[service] = sends.get(service, 0) + 1
                request.url = re.sub(r"^https?://[^/]+", f"http://127.0.0.1:{port}", request.url)

            client.meta.events.register_first(f"before-send.{spec.service}", nowhere)
            return
        fakes(spec, client)
        if spec.service == "cloudformation" and spec.region == REGION:
            # An SCP or a missing permission: CloudFormation's own error for a denied call.
            counters["cfn"] = inject_on_send(client, "ListStackSets", "AccessDenied", 403, times=None)

    res = collect(_options(tmp_path, hook))
    snap = res.snapshot
    new_errors = {
        (e.account_id, e.region, e.service, e.call, e.error_code)
        for e in snap.errors
        if e.service in NEW_SERVICES
    }
    assert new_errors == {
        (ACCT, REGION, "cloudformation", "ListStackSets", "AccessDenied"),
        (ACCT, REGION2, "apprunner", "ListServices", EndpointConnectionError.__name__),
        # Once AgentCore's first call found no endpoint, its other list calls in that region are skipped.
        (ACCT, REGION2, "bedrock-agentcore-control", "ListCodeInterpreters", EndpointConnectionError.__name__),
    }
    # Services offered in some regions only are retried less (a missing endpoint is not transient).
    assert sends == {"apprunner": PARTIAL_REGION_ATTEMPTS, "bedrock-agentcore-control": PARTIAL_REGION_ATTEMPTS}
    assert counters["cfn"]["injected"] == 1  # AccessDenied is not retried

    kinds = _by_kind(snap)
    # The denied part is missing in that region only; the unreachable service in that region only.
    assert [c.name for c in kinds["cloudformation_stackset"].values()] == ["eu-only"]
    assert {c.region for c in kinds["apprunner_service"].values()} == {REGION}
    # Everything else of the account is there: the other new kinds, the old ones, IAM.
    t = populated["templates"]
    assert len(kinds["ec2_launch_template"]) == len(t)
    assert len(kinds["bedrock_agentcore_code_interpreter"]) == 2
    assert len(kinds["bedrock_agentcore_runtime"]) == 1
    acct = snap.account(ACCT)
    assert acct is not None and acct.regions == sorted([REGION, REGION2])
    assert {p.arn for p in acct.instance_profiles} == set(populated["profiles"])
    assert res.accounts_collected == (ACCT,)
