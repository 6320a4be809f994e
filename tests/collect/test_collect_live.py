"""The live collector against a moto server holding a four-account organization, compared field by field.

moto gaps are filled per operation (collect_moto_org.fake_operation: validated against the service
model like botocore's Stubber) and only for what moto 5.2.5 does not implement (TESTING-AWS.md):
- s3control GetPublicAccessBlock: the endpoint puts the account ID in the host name
  (``<account>.127.0.0.1``), which does not resolve;
- ssm DescribeInstanceInformation, sso-admin GetPermissionsBoundaryForPermissionSet and
  ListTagsForResource: HTTP 500 (not implemented);
- sso-admin ListAccountsForProvisionedPermissionSet: moto lists only the caller's account (AWS lists
  every account the permission set was assigned in);
- lambda ListFunctionUrlConfigs: HTTP 404 (not implemented); the fake answers from moto's own
  GetFunctionUrlConfig, so the data is still what the population put in;
- iam GenerateServiceLastAccessedDetails / GetServiceLastAccessedDetails (Access Advisor): HTTP 500.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from collect_moto_org import (
    MGMT,
    REGION,
    REGION2,
    Built,
    build_org,
    fake_compute_more_gaps,
    fake_operation,
    inject_on_send,
    session_for,
)

from iamgraph.collect.aws import API_CALLS, CollectOptions, CollectorError, EventKind, ProgressEvent, collect
from iamgraph.collect.aws_advisor import PollPolicy
from iamgraph.collect.aws_api import ClientSpec, UnlistedCallError
from iamgraph.snapshot import read_snapshot, write_snapshot
from iamgraph.snapshot.model import Snapshot

# One xdist worker runs the whole module (and, in the same group, other users of the managed-policy server).
pytestmark = [pytest.mark.moto, pytest.mark.slow, pytest.mark.xdist_group("moto_server_managed")]

AWS = "arn:aws:iam::aws:policy/"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def _org_state(moto_server_managed: Any) -> Iterator[dict[str, Any]]:
    """One populated organization for the whole module (population takes ~10-30 s)."""
    moto_server_managed.reset()
    with pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(k)
        for k, v in moto_server_managed.client_env().items():
            mp.setenv(k, v)
        yield {"built": build_org(), "server": moto_server_managed}


@pytest.fixture()
def org(_org_state: dict[str, Any]) -> Built:
    """The organization, rebuilt if another module reset the shared server in between."""
    built: Built = _org_state["built"]
    try:
        alive = boto3.client("organizations").describe_organization()["Organization"]["Id"] == built.org_id
    except Exception:
        alive = False
    if not alive:
        _org_state["server"].reset()
        _org_state["built"] = built = build_org()
    return built


class Gaps:
    """The client hook that fills moto's gaps (see the module docstring), one instance per run."""

    def __init__(self, built: Built) -> None:
        self.built = built
        self.jobs: dict[str, str] = {}
        self.polls: dict[str, int] = {}
        self.advisor_generated: list[str] = []

    def __call__(self, spec: ClientSpec, client: Any) -> None:
        svc = spec.service
        fake_compute_more_gaps(svc, client)
        if svc == "s3control":
            fake_operation(client, "GetPublicAccessBlock", self._account_bpa)
        elif svc == "ssm":
            fake_operation(client, "DescribeInstanceInformation", lambda p: self._ssm(spec))
        elif svc == "lambda":
            fake_operation(client, "ListFunctionUrlConfigs", lambda p: self._urls(spec, p))
        elif svc == "sso-admin":
            fake_operation(client, "GetPermissionsBoundaryForPermissionSet", self._boundary)
            fake_operation(
                client, "ListTagsForResource", lambda p: {"Tags": [{"Key": "level", "Value": "high"}]}
            )
            fake_operation(client, "ListAccountsForProvisionedPermissionSet", self._provisioned)
        elif svc == "iam" and spec.purpose == "access-advisor":
            fake_operation(client, "GenerateServiceLastAccessedDetails", self._generate)
            fake_operation(client, "GetServiceLastAccessedDetails", self._get)

    def _account_bpa(self, p: dict[str, Any]) -> Any:
        if p["AccountId"] == MGMT:
            return {"PublicAccessBlockConfiguration": MGMT_BPA}
        return ("error", "NoSuchPublicAccessBlockConfiguration", "none", 404)

    def _ssm(self, spec: ClientSpec) -> dict[str, Any]:
        if (spec.account_id, spec.region) != (MGMT, REGION):
            return {"InstanceInformationList": []}
        return {
            "InstanceInformationList": [
                {
                    "InstanceId": "mi-0123456789abcdef0",
                    "IamRole": "app-role",
                    "PingStatus": "Online",
                    "ResourceType": "ManagedInstance",
                    "ComputerName": "onprem-1",
                }
            ]
        }

    def _urls(self, spec: ClientSpec, p: dict[str, Any]) -> dict[str, Any]:
        lam = session_for(spec.account_id).client("lambda", region_name=spec.region)
        try:
            got = lam.get_function_url_config(FunctionName=p["FunctionName"])
        except lam.exceptions.ResourceNotFoundException:
            return {"FunctionUrlConfigs": []}
        keep = ("FunctionUrl", "FunctionArn", "AuthType", "CreationTime", "LastModifiedTime")
        return {"FunctionUrlConfigs": [{k: got[k] for k in keep}]}

    def _provisioned(self, p: dict[str, Any]) -> dict[str, Any]:
        # AWS provisions a permission set to every account it is assigned in; moto only lists the
        # caller's account, and only after an explicit ProvisionPermissionSet.
        assert p["PermissionSetArn"] == self.built.facts["sso"][2]
        return {"AccountIds": sorted([self.built.accounts["prod1"], self.built.accounts["dev1"]])}

    def _boundary(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"PermissionsBoundary": {"CustomerManagedPolicyReference": {"Name": "boundary", "Path": "/"}}}

    def _generate(self, p: dict[str, Any]) -> dict[str, Any]:
        assert p["Granularity"] == "ACTION_LEVEL"
        job = str(uuid.uuid5(uuid.NAMESPACE_URL, p["Arn"]))
        self.jobs[job] = p["Arn"]
        self.advisor_generated.append(p["Arn"])
        return {"JobId": job}

    def _get(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = self.jobs[p["JobId"]]
        self.polls[arn] = self.polls.get(arn, 0) + 1
        base = {"JobType": "ACTION_LEVEL", "JobCreationDate": T0}
        if self.polls[arn] == 1 and arn.endswith(":user/bob"):
            return {**base, "JobStatus": "IN_PROGRESS", "JobCompletionDate": T0, "ServicesLastAccessed": []}
        svc_s3 = {
            "ServiceName": "Amazon S3",
            "ServiceNamespace": "s3",
            "LastAuthenticated": T0,
            "LastAuthenticatedEntity": arn,
            "LastAuthenticatedRegion": REGION,
            "TotalAuthenticatedEntities": 1,
            "TrackedActionsLastAccessed": [
                {
                    "ActionName": "GetObject",
                    "LastAccessedEntity": arn,
                    "LastAccessedTime": T0,
                    "LastAccessedRegion": REGION,
                }
            ],
        }
        svc_sqs = {"ServiceName": "Amazon SQS", "ServiceNamespace": "sqs", "TotalAuthenticatedEntities": 0}
        done = {**base, "JobStatus": "COMPLETED", "JobCompletionDate": T0}
        if "Marker" not in p:  # results come in two pages
            return {**done, "ServicesLastAccessed": [svc_s3], "IsTruncated": True, "Marker": "page2"}
        return {**done, "ServicesLastAccessed": [svc_sqs], "IsTruncated": False}


DISABLED = "ap-east-1"
# Per-item reads of the 1.1 compute kinds, which this organization does not populate
# (tests/collect/test_collect_compute_more.py exercises them).
NOT_POPULATED = {
    "ec2:DescribeLaunchTemplateVersions",
    "autoscaling:DescribeAutoScalingGroups",
    "cloudformation:DescribeStackSet",
    "cloudformation:ListStackInstances",
    "apprunner:DescribeService",
    "bedrock-agentcore-control:GetCodeInterpreter",
    "bedrock-agentcore-control:GetAgentRuntime",
    "bedrock-agentcore-control:GetBrowser",
}

MGMT_BPA = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": False,
}


def options(tmp: Path, built: Built, **kw: Any) -> CollectOptions:
    base: dict[str, Any] = {
        "work_dir": tmp / "work",
        "organization": True,
        "regions": (REGION, REGION2),
        "concurrency": 4,
        "max_attempts": 3,
        "rates": {},
        "default_rate": 0,
        "identity_center_region": REGION,
        "advisor_poll": PollPolicy(initial_delay=0.01, max_delay=0.02, timeout=5),
        "client_hook": Gaps(built),
    }
    base.update(kw)
    return CollectOptions(**base)


_CLEAN: dict[str, Any] = {}


def clean_run(tmp_path_factory: pytest.TempPathFactory, built: Built) -> Any:
    if _CLEAN.get("org_id") != built.org_id:
        opts = options(tmp_path_factory.mktemp("clean"), built)
        _CLEAN.update(org_id=built.org_id, result=collect(opts), gaps=opts.client_hook)
    return _CLEAN["result"]


def _strip(snap: Snapshot) -> dict[str, Any]:
    data = snap.model_dump(mode="json", exclude={"collected_at", "content_hash"})
    for a in data["accounts"]:
        a.pop("collected_at")
        for r in a["roles"]:
            r.pop("last_used")  # moto stamps OrganizationAccountAccessRole on every AssumeRole, as AWS does
    return data


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out.extend(_differences(a.get(k), b.get(k), f"{path}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


# ---------------------------------------------------------------- the snapshot matches the population


def test_organization_matches(org: Built, tmp_path_factory: pytest.TempPathFactory) -> None:
    snap = clean_run(tmp_path_factory, org).snapshot
    o = snap.organization
    assert o is not None
    assert (o.id, o.management_account_id, o.root_id, o.feature_set) == (org.org_id, MGMT, org.root_id, "ALL")
    assert {u.name: (u.id, u.parent_id) for u in o.organizational_units} == org.ous
    assert {a.id: a.parent_id for a in o.accounts} == org.account_parent
    assert {a.name for a in o.accounts if a.id != MGMT} == set(org.accounts)
    by_name = {p.name: p for p in o.policies}
    for name, (pid, doc, targets) in {**org.scps, **org.rcps}.items():
        assert by_name[name].id == pid
        assert by_name[name].document == doc
        assert by_name[name].targets == sorted(targets)
    assert by_name["org-only-s3"].type == "RESOURCE_CONTROL_POLICY"
    assert by_name["region-lock"].type == "SERVICE_CONTROL_POLICY"
    assert [(d.account_id, d.service_principal) for d in o.delegated_administrators] == [
        (org.accounts["dev1"], "ssm.amazonaws.com")
    ]
    assert {a.account_id for a in snap.accounts} == {MGMT, *org.accounts.values()}
    assert snap.errors == []


def test_iam_matches(org: Built, tmp_path_factory: pytest.TempPathFactory) -> None:
    snap = clean_run(tmp_path_factory, org).snapshot
    mg = snap.account(MGMT)
    assert mg is not None and mg.alias == "mgmt-alias" and mg.regions == [REGION2, REGION]
    f = org.facts
    varn, versions, default = f["versioned"]
    pol = next(p for p in mg.policies if p.arn == varn)
    assert (pol.name, pol.path, pol.default_version_id, pol.description) == (
        "app-access",
        "/app/",
        default,
        "app",
    )
    assert {v.version_id: v.document for v in pol.versions} == versions
    assert [v.version_id for v in pol.versions if v.is_default] == ["v2"]
    assert pol.default_document() == versions["v2"]

    users = {u.name: u for u in mg.users}
    alice = users["alice"]
    assert alice.arn == f"arn:aws:iam::{MGMT}:user/people/alice" and alice.path == "/people/"
    assert alice.groups == ["admins"] and alice.attached_managed_policies == [varn]
    assert [(p.name, p.document) for p in alice.inline_policies] == [("decrypt", f["user_inline"])]
    assert alice.tags == {"team": "sec"}
    assert [(k.access_key_id, k.status) for k in alice.access_keys] == [(f["alice_key"], "Active")]
    assert alice.has_console_password is True and users["bob"].has_console_password is False
    # Real reports also have a <root_account> row; moto's has only the IAM users.
    assert {row["user"] for row in mg.credential_report} - {"<root_account>"} == {"alice", "bob"}
    assert next(r for r in mg.credential_report if r["user"] == "alice")["access_key_1_active"] == "true"

    group = next(g for g in mg.groups if g.name == "admins")
    assert group.attached_managed_policies == [AWS + "ReadOnlyAccess"]
    assert [(p.name, p.document) for p in group.inline_policies] == [("describe", f["group_inline"])]

    role_arn, trust, role_inline = f["role"]
    roles = {r.arn: r for r in mg.roles}
    role = roles[role_arn]
    assert role.trust_policy == trust and role.path == "/service/"
    assert (role.description, role.max_session_duration, role.tags) == ("runs the app", 7200, {"env": "prod"})
    assert role.permissions_boundary == f["boundary"]
    assert role.attached_managed_policies == sorted([varn, AWS + "AWSLambdaExecute"])
    assert [(p.name, p.document) for p in role.inline_policies] == [("publish", role_inline)]
    prof, ec2_role, empty_prof = f["profiles"]
    assert roles[ec2_role].instance_profiles == [prof]
    assert {p.arn: p.roles for p in mg.instance_profiles} == {prof: [ec2_role], empty_prof: []}
    saml, oidc = f["providers"]
    assert [p.arn for p in mg.saml_providers] == [saml]
    assert [(p.arn, p.url, p.client_ids) for p in mg.oidc_providers] == [
        (oidc, "token.actions.githubusercontent.com", ["sts.amazonaws.com"])
    ] or [(p.arn, p.url) for p in mg.oidc_providers] == [
        (oidc, "https://token.actions.githubusercontent.com")
    ]

    prod = snap.account(org.accounts["prod1"])
    assert prod is not None and prod.name == "prod1"
    deployer = next(r for r in prod.roles if r.name == "deployer")
    assert deployer.trust_policy == f["prod_trust"]
    # Only AWS managed policies attached somewhere are kept (moto lists all ~1,500), each once.
    attached_by_moto = set()
    for acct in org.accounts.values():
        iam = session_for(acct).client("iam")
        for r in iam.list_roles()["Roles"]:
            for p in iam.list_attached_role_policies(RoleName=r["RoleName"])["AttachedPolicies"]:
                attached_by_moto.add(p["PolicyArn"])
    expected = {AWS + "ReadOnlyAccess", AWS + "AWSLambdaExecute", AWS + "PowerUserAccess"} | {
        a for a in attached_by_moto if a.startswith(AWS)
    }
    assert [p.arn for p in snap.aws_managed_policies] == sorted(expected)
    ro = next(p for p in snap.aws_managed_policies if p.arn == AWS + "ReadOnlyAccess")
    assert ro.default_document() is not None and ro.attachment_count is None


def test_resources_match(org: Built, tmp_path_factory: pytest.TempPathFactory) -> None:
    snap = clean_run(tmp_path_factory, org).snapshot
    mg = snap.account(MGMT)
    assert mg is not None
    f = org.facts
    res = {r.arn: r for r in mg.resources}
    bucket = res["arn:aws:s3:::mgmt-data"]
    assert (bucket.type, bucket.region, bucket.policy, bucket.tags) == (
        "s3:bucket",
        REGION,
        f["bucket_policy"],
        {"classification": "pii"},
    )
    assert bucket.attributes["public_access_block"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    eu = res["arn:aws:s3:::mgmt-eu-logs"]
    assert (eu.region, eu.policy, "public_access_block" in eu.attributes) == (REGION2, None, False)
    assert mg.public_access_block == MGMT_BPA
    assert snap.account(org.accounts["dev1"]).public_access_block is None  # type: ignore[union-attr]

    key_arn, key_policy, grant_id = f["kms"]
    key = res[key_arn]
    assert (key.type, key.policy, key.tags, key.attributes["key_manager"]) == (
        "kms:key",
        key_policy,
        {"owner": "sec"},
        "CUSTOMER",
    )
    assert [g["GrantId"] for g in key.attributes["grants"]] == [grant_id]
    assert key.attributes["grants"][0]["Operations"] == ["Decrypt"]
    qarn, qpol = f["sqs"]
    assert (res[qarn].policy, res[qarn].tags) == (qpol, {"team": "data"})
    tarn, tpol = f["sns"]
    assert (res[tarn].policy, res[tarn].tags) == (tpol, {"team": "ops"})
    fn = res[f["lambda"]]
    assert fn.policy is not None and fn.tags == {"app": "worker"}
    assert [s["Sid"] for s in fn.policy["Statement"]] == ["s3-invoke"]
    assert fn.policy["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert fn.attributes["function_url_auth_type"] == "NONE"
    sarn, spol = f["secret"]
    assert (res[sarn].policy, res[sarn].tags) == (spol, {"tier": "db"})
    rarn, rpol = f["ecr"]
    assert (res[rarn].policy, res[rarn].region) == (rpol, REGION2)
    prod = snap.account(org.accounts["prod1"])
    assert prod is not None and [r.name for r in prod.resources if r.type == "s3:bucket"] == ["prod-assets"]


def test_compute_matches(org: Built, tmp_path_factory: pytest.TempPathFactory) -> None:
    snap = clean_run(tmp_path_factory, org).snapshot
    mg = snap.account(MGMT)
    assert mg is not None
    f = org.facts
    role_arn = f["role"][0]
    by_kind: dict[str, list[Any]] = {}
    for c in mg.compute:
        by_kind.setdefault(c.kind, []).append(c)
    assert [(c.arn, c.role_arn) for c in by_kind["lambda_function"]] == [(f["lambda"], role_arn)]
    [ec2] = by_kind["ec2_instance"]
    assert (ec2.name, ec2.instance_profile_arn, ec2.region) == (f["ec2"], f["profiles"][0], REGION)
    assert [(c.arn, c.role_arn) for c in by_kind["cloudformation_stack"]] == [(f["stack"], role_arn)]
    assert [(c.arn, c.role_arn) for c in by_kind["codebuild_project"]] == [(f["codebuild"], role_arn)]
    # Glue was given the role *name*; the ARN (with its /service/ path) comes from the account's roles.
    assert [(c.name, c.role_arn) for c in by_kind["glue_job"]] == [("etl", role_arn)]
    assert [(c.arn, c.role_arn) for c in by_kind["sagemaker_notebook"]] == [(f["notebook"], role_arn)]
    td, svc = f["ecs"]
    [task] = by_kind["ecs_task_definition"]
    assert (task.arn, task.role_arn, task.attributes["execution_role_arn"]) == (
        td,
        role_arn,
        f["profiles"][1],
    )
    # The service's code runs as its task definition's task role (not the service's load-balancer role).
    assert [(c.arn, c.role_arn, c.attributes["task_definition"]) for c in by_kind["ecs_service"]] == [
        (svc, role_arn, td)
    ]
    [mi] = by_kind["ssm_managed_instance"]
    assert (mi.name, mi.role_arn) == ("onprem-1", role_arn)


def test_identity_center_and_access_advisor_match(
    org: Built, tmp_path_factory: pytest.TempPathFactory
) -> None:
    snap = clean_run(tmp_path_factory, org).snapshot
    ic = snap.identity_center
    inst, store, ps_arn, ps_inline, uid, gid = org.facts["sso"]
    assert ic is not None and (ic.instance_arn, ic.identity_store_id, ic.home_region) == (inst, store, REGION)
    [ps] = ic.permission_sets
    assert (ps.arn, ps.name, ps.description, ps.session_duration) == (ps_arn, "Admins", "admins", "PT4H")
    assert ps.inline_policy == ps_inline and ps.aws_managed_policies == [AWS + "ReadOnlyAccess"]
    assert [(c.name, c.path) for c in ps.customer_managed_policies] == [("app-access", "/app/")]
    assert ps.permissions_boundary is not None and ps.permissions_boundary.customer_managed_policy is not None
    assert ps.permissions_boundary.customer_managed_policy.name == "boundary"
    assert ps.tags == {"level": "high"}
    assert {(a.account_id, a.principal_type, a.principal_id) for a in ic.assignments} == {
        (org.accounts["prod1"], "GROUP", gid),
        (org.accounts["dev1"], "USER", uid),
    }
    # Assignments are looked up only where the permission set is provisioned (two accounts, not four).
    assert clean_run(tmp_path_factory, org).calls_by_operation["sso-admin:ListAccountAssignments"] == 2
    assert [(u.user_id, u.user_name, u.display_name) for u in ic.users] == [(uid, "carol", "Carol C")]
    assert [(g.group_id, g.display_name) for g in ic.groups] == [(gid, "platform")]
    assert [(m.group_id, m.user_id) for m in ic.memberships] == [(gid, uid)]

    # Access Advisor: one job per user and role of every account, each read in two pages.
    gaps = _CLEAN["gaps"]
    every = sorted(a for arns in org.principals.values() for a in arns)
    assert sorted(gaps.advisor_generated) == every
    adv = snap.activity.access_advisor
    assert sorted({e.principal_arn for e in adv}) == every
    assert len(adv) == 2 * len(every)
    bob = [e for e in adv if e.principal_arn.endswith(":user/bob")]
    assert gaps.polls[bob[0].principal_arn] == 3  # in progress, then two pages
    s3 = next(e for e in bob if e.service_namespace == "s3")
    assert [(t.action_name, t.last_accessed_region) for t in s3.tracked_actions] == [("GetObject", REGION)]
    assert s3.job_completion_date == T0.isoformat() and snap.activity.tracking_period_days == 400


def test_calls_are_listed_and_snapshot_round_trips(
    org: Built, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    result = clean_run(tmp_path_factory, org)
    listed = {f"{c.service}:{c.operation}" for c in API_CALLS}
    assert set(result.calls_by_operation) <= listed
    # The run exercised most of the list (what it did not: dev endpoints have nothing to list, etc.)
    assert len(result.calls_by_operation) >= len(listed) - 3 - len(NOT_POPULATED)
    path = tmp_path / "snap.json.gz"
    written = write_snapshot(result.snapshot, path)
    assert read_snapshot(path) == written
    # The work directory holds one file per account and nothing else is needed to assemble.
    assert result.accounts_collected == tuple(sorted([MGMT, *org.accounts.values()]))


def test_unlisted_operation_is_refused(org: Built, tmp_path: Path) -> None:
    from iamgraph.collect.aws_api import CallStats, Clients, RateLimiter, make_config

    clients = Clients(
        account_id=MGMT,
        session=boto3.Session(),
        config=make_config(max_attempts=1, max_pool=1),
        limiter=RateLimiter({}),
        stats=CallStats(),
    )
    with pytest.raises(UnlistedCallError, match="iam:CreateUser"):
        clients.get("iam").create_user(UserName="nope")
    assert "nope" not in [u["UserName"] for u in boto3.client("iam").list_users()["Users"]]


# ---------------------------------------------------------------- faults


def test_unassumable_account_denied_service_and_disabled_region(org: Built, tmp_path: Path) -> None:
    sandbox, dev1 = org.accounts["sandbox"], org.accounts["dev1"]
    gaps = Gaps(org)
    counters: dict[str, Any] = {}

    def hook(spec: ClientSpec, client: Any) -> None:
        if spec.region == DISABLED:
            # An opt-in region that is not enabled rejects the account's credentials on every call.
            inject_on_send(
                client,
                "*",
                "AuthFailure" if spec.service == "ec2" else "UnrecognizedClientException",
                401 if spec.service == "ec2" else 400,
                times=None,
            )
            return
        gaps(spec, client)
        if spec.service == "sts" and spec.account_id == MGMT:
            # moto does not check trust policies, so the refusal is made at the HTTP layer (STS's own error).
            counters["sts"] = inject_on_send(
                client,
                "AssumeRole",
                "AccessDenied",
                403,
                times=None,
                when=lambda r: sandbox in (r.body.decode() if isinstance(r.body, bytes) else str(r.body)),
            )
        if spec.service == "sqs" and spec.account_id == dev1:
            counters["sqs"] = inject_on_send(client, "ListQueues", "AccessDeniedException", 400, times=None)

    res = collect(
        options(
            tmp_path,
            org,
            accounts=(sandbox, dev1, MGMT),
            regions=(REGION, DISABLED),
            client_hook=hook,
            access_advisor=False,
        )
    )
    snap = res.snapshot
    assert res.accounts_failed == (sandbox,)
    assert {a.account_id for a in snap.accounts} == {dev1, MGMT}
    regional = {
        "kms",
        "sqs",
        "sns",
        "secretsmanager",
        "ecr",
        "lambda",
        "ec2",
        "cloudformation",
        "codebuild",
        "glue",
        "sagemaker",
        "ecs",
        "ssm",
        "apprunner",
        "bedrock-agentcore-control",
    }
    for acct in (dev1, MGMT):
        # Every regional service failed in the disabled region; each failure is recorded, nothing is invented.
        assert {e.service for e in snap.errors if e.account_id == acct and e.region == DISABLED} == regional
        read = snap.account(acct)
        assert read is not None and DISABLED in read.regions
        assert not [r for r in (*read.resources, *read.compute) if r.region == DISABLED]
    kms_err = next(e for e in snap.errors if e.region == DISABLED and e.service == "kms")
    assert (kms_err.call, kms_err.error_code) == ("ListKeys", "UnrecognizedClientException")
    errs = {
        (e.account_id, e.region, e.service, e.call, e.error_code) for e in snap.errors if e.region != DISABLED
    }
    assert errs == {
        (sandbox, None, "sts", "AssumeRole", "AccessDenied"),
        (dev1, REGION, "sqs", "ListQueues", "AccessDeniedException"),
    }
    assert counters["sts"]["injected"] == 1  # AccessDenied is not retried
    dev = snap.account(dev1)
    assert dev is not None and [r.name for r in dev.roles] == ["OrganizationAccountAccessRole"]
    mg = snap.account(MGMT)
    assert mg is not None and any(r.type == "sqs:queue" for r in mg.resources)  # other accounts unaffected


def test_denied_policy_reads_keep_the_resource_with_its_policy_unknown(org: Built, tmp_path: Path) -> None:
    """AccessDenied on GetKeyPolicy and GetQueueAttributes (injected at the HTTP layer: moto does not
    enforce IAM): the key and the queue stay in the snapshot, ``policy_unknown``, and the errors are
    recorded; the other resources are read as before (policy known, even when absent)."""

    def hook(spec: ClientSpec, client: Any) -> None:
        Gaps(org)(spec, client)
        if spec.account_id == MGMT and spec.service == "kms":
            inject_on_send(client, "GetKeyPolicy", "AccessDeniedException", 400, times=None)
        if spec.account_id == MGMT and spec.service == "sqs":
            inject_on_send(client, "GetQueueAttributes", "AccessDenied", 403, times=None)

    snap = collect(options(tmp_path, org, accounts=(MGMT,), regions=(REGION,), client_hook=hook,
                           access_advisor=False)).snapshot
    mg = snap.account(MGMT)
    assert mg is not None
    res = {r.arn: r for r in mg.resources}
    key_arn, _, _ = org.facts["kms"]
    qarn, _ = org.facts["sqs"]
    assert (res[key_arn].policy, res[key_arn].policy_unknown) == (None, True)
    assert (res[qarn].type, res[qarn].policy, res[qarn].policy_unknown) == ("sqs:queue", None, True)
    assert res[qarn].attributes["queue_url"].endswith(qarn.rsplit(":", 1)[-1])
    assert {(e.call, e.error_code) for e in snap.errors if e.account_id == MGMT} >= {
        ("GetKeyPolicy", "AccessDeniedException"), ("GetQueueAttributes", "AccessDenied")}
    assert not res["arn:aws:s3:::mgmt-data"].policy_unknown and not res[org.facts["sns"][0]].policy_unknown


def test_throttling_recovers_and_past_retries_is_recorded(org: Built, tmp_path: Path) -> None:
    gaps = Gaps(org)
    counters: dict[str, Any] = {}

    def hook(spec: ClientSpec, client: Any) -> None:
        gaps(spec, client)
        if spec.account_id == MGMT and spec.service == "kms":
            counters["kms"] = inject_on_send(client, "ListKeys", "ThrottlingException", 400, times=2)
        if spec.account_id == MGMT and spec.service == "sns":
            counters["sns"] = inject_on_send(client, "ListTopics", "Throttling", 400, times=None)

    res = collect(
        options(
            tmp_path,
            org,
            accounts=(MGMT,),
            regions=(REGION,),
            client_hook=hook,
            max_attempts=3,
            access_advisor=False,
            identity_center=False,
        )
    )
    snap = res.snapshot
    # kms: throttled twice, the third attempt goes through: nothing lost.
    assert counters["kms"] == {"sent": 3, "injected": 2}
    mg = snap.account(MGMT)
    assert mg is not None and [r.arn for r in mg.resources if r.type == "kms:key"] == [org.facts["kms"][0]]
    # sns: throttled on every attempt; recorded after max_attempts, the rest carries on.
    assert counters["sns"]["sent"] == 3
    assert [(e.service, e.call, e.error_code) for e in snap.errors] == [("sns", "ListTopics", "Throttling")]
    assert not [r for r in mg.resources if r.type == "sns:topic"]
    assert any(r.type == "sqs:queue" for r in mg.resources)


def test_interrupted_run_resumes_without_loss_or_duplicates(
    org: Built, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clean = clean_run(tmp_path_factory, org)
    done: list[str] = []

    def interrupt_after_two(ev: ProgressEvent) -> None:
        if ev.kind is EventKind.DONE:
            done.append(ev.account_id)
            if len(done) == 2:
                raise KeyboardInterrupt  # as Ctrl-C would, after two accounts are written

    with pytest.raises(KeyboardInterrupt):
        collect(options(tmp_path, org, concurrency=1), progress=interrupt_after_two)
    written = sorted(p.stem for p in (tmp_path / "work" / "accounts").glob("*.json"))
    assert written == sorted(done) and len(written) == 2

    with pytest.raises(CollectorError, match="--resume"):
        collect(options(tmp_path, org))

    seen: list[ProgressEvent] = []
    res = collect(options(tmp_path, org, resume=True), progress=seen.append)
    assert res.accounts_resumed == tuple(written)
    assert set(res.accounts_collected) == {MGMT, *org.accounts.values()} - set(written)
    assert not [e for e in seen if e.kind is EventKind.STARTED and e.account_id in written]
    snap = res.snapshot
    assert len({a.account_id for a in snap.accounts}) == len(snap.accounts) == 4
    arns = [p.arn for p in snap.aws_managed_policies]
    assert len(arns) == len(set(arns))
    keys = [(e.principal_arn, e.service_namespace) for e in snap.activity.access_advisor]
    assert len(keys) == len(set(keys))
    assert _differences(_strip(snap), _strip(clean.snapshot)) == []


def test_resume_refuses_other_settings(org: Built, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    collect(
        options(
            tmp_path, org, organization=False, regions=(REGION,), access_advisor=False, identity_center=False
        )
    )
    with pytest.raises(CollectorError, match="other settings"):
        collect(
            options(tmp_path, org, organization=False, regions=(REGION2,), resume=True, access_advisor=False)
        )


def test_cli_collect_single_account(org: Built, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from iamgraph.cli import app

    out = tmp_path / "snap.json.gz"
    r = CliRunner().invoke(
        app,
        [
            "collect",
            "-o",
            str(out),
            "--regions",
            REGION,
            "--no-access-advisor",
            "--no-identity-center",
            "--max-attempts",
            "1",
            "--rate",
            "iam=0",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    snap = read_snapshot(out)
    assert summary["accounts_collected"] == [MGMT] and snap.organization is None
    assert [a.account_id for a in snap.accounts] == [MGMT]
    # Without the test's gap fillers, moto's unimplemented calls show up as recorded errors, not a crash.
    # (S3 Control is reached at the endpoint's own host, so it answers: tests/collect/test_collect_faults.py.)
    assert {(e["service"], e["call"]) for e in summary["errors"]} == {
        ("ssm", "DescribeInstanceInformation"),
        ("lambda", "ListFunctionUrlConfigs"),
        ("apprunner", "ListServices"),
        ("bedrock-agentcore-control", "ListCodeInterpreters"),
        ("bedrock-agentcore-control", "ListBrowsers"),
    }
    assert not (tmp_path / "snap.json.gz.work").exists()
    bad = CliRunner().invoke(app, ["collect", "-o", str(out), "--rate", "iam"])
    assert bad.exit_code == 2 and "SERVICE=REQUESTS_PER_SECOND" in bad.output
