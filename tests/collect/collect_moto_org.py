"""Build a multi-account organization in a moto server, and remember what was put in (for field-by-field checks)."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

MGMT = "123456789012"  # moto's default caller account
REGION = "us-east-1"
REGION2 = "eu-west-1"
STMT_READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@dataclass
class Built:
    """What the population created, keyed the way the checks look it up."""

    org_id: str = ""
    root_id: str = ""
    ous: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (id, parent id)
    accounts: dict[str, str] = field(default_factory=dict)  # name -> id
    account_parent: dict[str, str] = field(default_factory=dict)  # id -> parent id
    scps: dict[str, tuple[str, dict[str, Any], list[str]]] = field(
        default_factory=dict
    )  # name -> (id, doc, targets)
    rcps: dict[str, tuple[str, dict[str, Any], list[str]]] = field(default_factory=dict)
    principals: dict[str, list[str]] = field(
        default_factory=dict
    )  # account -> user ARNs then role ARNs, sorted
    facts: dict[str, Any] = field(default_factory=dict)


def session_for(account_id: str) -> boto3.Session:
    if account_id == MGMT:
        return boto3.Session(region_name=REGION)
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="populate"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(e, c):\n    return 1\n")
    return buf.getvalue()


def build_org() -> Built:
    b = Built()
    org = boto3.client("organizations", region_name=REGION)
    b.org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    b.root_id = org.list_roots()["Roots"][0]["Id"]
    for pt in ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"):
        org.enable_policy_type(RootId=b.root_id, PolicyType=pt)
    prod = org.create_organizational_unit(ParentId=b.root_id, Name="prod")["OrganizationalUnit"]["Id"]
    prod_eu = org.create_organizational_unit(ParentId=prod, Name="prod-eu")["OrganizationalUnit"]["Id"]
    dev = org.create_organizational_unit(ParentId=b.root_id, Name="dev")["OrganizationalUnit"]["Id"]
    b.ous = {"prod": (prod, b.root_id), "prod-eu": (prod_eu, prod), "dev": (dev, b.root_id)}
    for name, parent in (("prod1", prod_eu), ("dev1", dev), ("sandbox", b.root_id)):
        acct = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        if parent != b.root_id:
            org.move_account(AccountId=acct, SourceParentId=b.root_id, DestinationParentId=parent)
        b.accounts[name] = acct
        b.account_parent[acct] = parent
    b.account_parent[MGMT] = b.root_id

    deny_leave = doc({"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"})
    region_lock = doc(
        {
            "Effect": "Deny",
            "NotAction": ["iam:*", "sts:*"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}},
        }
    )
    rcp = doc(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": b.org_id}},
        }
    )
    for name, d, ptype, targets, bucket in (
        ("deny-leave", deny_leave, "SERVICE_CONTROL_POLICY", [b.root_id], b.scps),
        ("region-lock", region_lock, "SERVICE_CONTROL_POLICY", [prod], b.scps),
        ("org-only-s3", rcp, "RESOURCE_CONTROL_POLICY", [b.accounts["prod1"]], b.rcps),
    ):
        pid = org.create_policy(Name=name, Description=f"{name} policy", Content=json.dumps(d), Type=ptype)[
            "Policy"
        ]["PolicySummary"]["Id"]
        for t in targets:
            org.attach_policy(PolicyId=pid, TargetId=t)
        bucket[name] = (pid, d, targets)
    org.register_delegated_administrator(AccountId=b.accounts["dev1"], ServicePrincipal="ssm.amazonaws.com")

    _populate_mgmt(b)
    _populate_prod(b)
    for acct in (MGMT, *b.accounts.values()):
        iam = session_for(acct).client("iam")
        users = sorted(u["Arn"] for u in iam.list_users()["Users"])
        roles = sorted(r["Arn"] for r in iam.list_roles()["Roles"])
        b.principals[acct] = users + roles
    return b


def _populate_mgmt(b: Built) -> None:
    s = session_for(MGMT)
    iam = s.client("iam")
    f = b.facts
    boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=json.dumps(doc(STMT_READ)))["Policy"][
        "Arn"
    ]
    v1 = doc(STMT_READ)
    v2 = doc(STMT_READ, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
    v3 = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    versioned = iam.create_policy(
        PolicyName="app-access", Path="/app/", PolicyDocument=json.dumps(v1), Description="app"
    )
    varn = versioned["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=varn, PolicyDocument=json.dumps(v2), SetAsDefault=True)
    iam.create_policy_version(PolicyArn=varn, PolicyDocument=json.dumps(v3), SetAsDefault=False)
    f["versioned"] = (varn, {"v1": v1, "v2": v2, "v3": v3}, "v2")
    f["boundary"] = boundary

    iam.create_group(GroupName="admins")
    iam.attach_group_policy(GroupName="admins", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    group_inline = doc({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})
    iam.put_group_policy(GroupName="admins", PolicyName="describe", PolicyDocument=json.dumps(group_inline))
    f["group_inline"] = group_inline

    iam.create_user(UserName="alice", Path="/people/", Tags=[{"Key": "team", "Value": "sec"}])
    iam.add_user_to_group(GroupName="admins", UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=varn)
    user_inline = doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    iam.put_user_policy(UserName="alice", PolicyName="decrypt", PolicyDocument=json.dumps(user_inline))
    f["user_inline"] = user_inline
    f["alice_key"] = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    iam.create_login_profile(UserName="alice", Password="Sup3r-secret-pw!")
    iam.create_user(UserName="bob")

    trust = doc(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    role = iam.create_role(
        RoleName="app-role",
        Path="/service/",
        AssumeRolePolicyDocument=json.dumps(trust),
        Description="runs the app",
        MaxSessionDuration=7200,
        PermissionsBoundary=boundary,
        Tags=[{"Key": "env", "Value": "prod"}],
    )["Role"]
    role_inline = doc({"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"})
    iam.put_role_policy(RoleName="app-role", PolicyName="publish", PolicyDocument=json.dumps(role_inline))
    iam.attach_role_policy(RoleName="app-role", PolicyArn=varn)
    iam.attach_role_policy(RoleName="app-role", PolicyArn="arn:aws:iam::aws:policy/AWSLambdaExecute")
    f["role"] = (role["Arn"], trust, role_inline)
    ec2_trust = doc(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    ec2_role = iam.create_role(RoleName="ec2-role", AssumeRolePolicyDocument=json.dumps(ec2_trust))["Role"][
        "Arn"
    ]
    prof = iam.create_instance_profile(InstanceProfileName="ec2-profile")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="ec2-profile", RoleName="ec2-role")
    empty_prof = iam.create_instance_profile(InstanceProfileName="empty-profile")["InstanceProfile"]["Arn"]
    f["profiles"] = (prof, ec2_role, empty_prof)
    saml = iam.create_saml_provider(SAMLMetadataDocument="a" * 1000, Name="okta")["SAMLProviderArn"]
    oidc = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["a" * 40],
    )["OpenIDConnectProviderArn"]
    f["providers"] = (saml, oidc)
    iam.create_account_alias(AccountAlias="mgmt-alias")

    # ---- resources (us-east-1 and eu-west-1)
    s3 = s.client("s3")
    bucket_policy = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{b.accounts['dev1']}:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::mgmt-data/*",
        }
    )
    s3.create_bucket(Bucket="mgmt-data")
    s3.put_bucket_policy(Bucket="mgmt-data", Policy=json.dumps(bucket_policy))
    s3.put_public_access_block(
        Bucket="mgmt-data",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    s3.put_bucket_tagging(Bucket="mgmt-data", Tagging={"TagSet": [{"Key": "classification", "Value": "pii"}]})
    s.client("s3", region_name=REGION2).create_bucket(
        Bucket="mgmt-eu-logs", CreateBucketConfiguration={"LocationConstraint": REGION2}
    )
    f["bucket_policy"] = bucket_policy

    kms = s.client("kms")
    key_policy = doc(
        {
            "Sid": "root",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{MGMT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    key = kms.create_key(Policy=json.dumps(key_policy), Tags=[{"TagKey": "owner", "TagValue": "sec"}])[
        "KeyMetadata"
    ]
    grant = kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=role["Arn"], Operations=["Decrypt"], Name="app-grant"
    )
    f["kms"] = (key["Arn"], key_policy, grant["GrantId"])

    sqs = s.client("sqs")
    qurl = sqs.create_queue(QueueName="jobs", tags={"team": "data"})["QueueUrl"]
    qarn = f"arn:aws:sqs:{REGION}:{MGMT}:jobs"
    queue_policy = doc({"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": qarn})
    sqs.set_queue_attributes(QueueUrl=qurl, Attributes={"Policy": json.dumps(queue_policy)})
    f["sqs"] = (qarn, queue_policy)

    sns = s.client("sns")
    tarn = sns.create_topic(Name="alerts", Tags=[{"Key": "team", "Value": "ops"}])["TopicArn"]
    topic_policy = doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": tarn,
        }
    )
    sns.set_topic_attributes(TopicArn=tarn, AttributeName="Policy", AttributeValue=json.dumps(topic_policy))
    f["sns"] = (tarn, topic_policy)

    lam = s.client("lambda")
    fn = lam.create_function(
        FunctionName="worker",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="index.handler",
        Code={"ZipFile": _zip()},
        Tags={"app": "worker"},
    )["FunctionArn"]
    lam.add_permission(
        FunctionName="worker",
        StatementId="s3-invoke",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::mgmt-data",
    )
    lam.create_function_url_config(FunctionName="worker", AuthType="NONE")
    f["lambda"] = fn

    sm = s.client("secretsmanager")
    sarn = sm.create_secret(Name="db-password", SecretString="x", Tags=[{"Key": "tier", "Value": "db"}])[
        "ARN"
    ]
    secret_policy = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": role["Arn"]},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        }
    )
    sm.put_resource_policy(SecretId=sarn, ResourcePolicy=json.dumps(secret_policy))
    f["secret"] = (sarn, secret_policy)

    ecr = s.client("ecr", region_name=REGION2)
    rarn = ecr.create_repository(repositoryName="app")["repository"]["repositoryArn"]
    repo_policy = doc(
        {
            "Sid": "pull",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{b.accounts['prod1']}:root"},
            "Action": "ecr:BatchGetImage",
        }
    )
    ecr.set_repository_policy(repositoryName="app", policyText=json.dumps(repo_policy))
    f["ecr"] = (rarn, repo_policy)

    # ---- compute
    ec2 = s.client("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, IamInstanceProfile={"Arn": prof})[
        "Instances"
    ][0]
    f["ec2"] = inst["InstanceId"]
    cfn = s.client("cloudformation")
    stack = cfn.create_stack(
        StackName="app-stack",
        TemplateBody=json.dumps(
            {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "cfnq"}}}}
        ),
        RoleARN=role["Arn"],
    )["StackId"]
    f["stack"] = stack
    cb = s.client("codebuild")
    proj = cb.create_project(
        name="build",
        source={"type": "S3", "location": "mgmt-data/src.zip"},
        artifacts={"type": "S3", "location": "mgmt-data"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=role["Arn"],
    )["project"]["arn"]
    f["codebuild"] = proj
    glue = s.client("glue")
    glue.create_job(
        Name="etl", Role="app-role", Command={"Name": "glueetl", "ScriptLocation": "s3://mgmt-data/etl.py"}
    )
    sm_ = s.client("sagemaker")
    nb = sm_.create_notebook_instance(
        NotebookInstanceName="nb", InstanceType="ml.t3.medium", RoleArn=role["Arn"]
    )
    f["notebook"] = nb["NotebookInstanceArn"]
    ecs = s.client("ecs")
    ecs.create_cluster(clusterName="apps")
    td = ecs.register_task_definition(
        family="web",
        taskRoleArn=role["Arn"],
        executionRoleArn=ec2_role,
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}],
    )["taskDefinition"]["taskDefinitionArn"]
    svc = ecs.create_service(cluster="apps", serviceName="web", taskDefinition="web", desiredCount=1)[
        "service"
    ]["serviceArn"]
    f["ecs"] = (td, svc)

    # ---- Identity Center (in the management account)
    sso = s.client("sso-admin")
    inst_arn = sso.list_instances()["Instances"][0]["InstanceArn"]
    store = sso.list_instances()["Instances"][0]["IdentityStoreId"]
    ps = sso.create_permission_set(
        Name="Admins",
        InstanceArn=inst_arn,
        Description="admins",
        SessionDuration="PT4H",
        Tags=[{"Key": "level", "Value": "high"}],
    )["PermissionSet"]["PermissionSetArn"]
    ps_inline = doc({"Effect": "Allow", "Action": "iam:Get*", "Resource": "*"})
    sso.put_inline_policy_to_permission_set(
        InstanceArn=inst_arn, PermissionSetArn=ps, InlinePolicy=json.dumps(ps_inline)
    )
    sso.attach_managed_policy_to_permission_set(
        InstanceArn=inst_arn, PermissionSetArn=ps, ManagedPolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess"
    )
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=inst_arn,
        PermissionSetArn=ps,
        CustomerManagedPolicyReference={"Name": "app-access", "Path": "/app/"},
    )
    ids = s.client("identitystore")
    uid = ids.create_user(
        IdentityStoreId=store,
        UserName="carol",
        DisplayName="Carol C",
        Name={"GivenName": "Carol", "FamilyName": "C"},
    )["UserId"]
    gid = ids.create_group(IdentityStoreId=store, DisplayName="platform", Description="platform team")[
        "GroupId"
    ]
    ids.create_group_membership(IdentityStoreId=store, GroupId=gid, MemberId={"UserId": uid})
    sso.create_account_assignment(
        InstanceArn=inst_arn,
        TargetId=b.accounts["prod1"],
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=ps,
        PrincipalType="GROUP",
        PrincipalId=gid,
    )
    sso.create_account_assignment(
        InstanceArn=inst_arn,
        TargetId=b.accounts["dev1"],
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=ps,
        PrincipalType="USER",
        PrincipalId=uid,
    )
    f["sso"] = (inst_arn, store, ps, ps_inline, uid, gid)


def _populate_prod(b: Built) -> None:
    s = session_for(b.accounts["prod1"])
    iam = s.client("iam")
    trust = doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MGMT}:root"}, "Action": "sts:AssumeRole"}
    )
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="deployer", PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")
    s3 = s.client("s3")
    s3.create_bucket(Bucket="prod-assets")
    b.facts["prod_trust"] = trust


# ---------------------------------------------------------------- stand-ins for what moto does not implement


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def http_response(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse("http://127.0.0.1/fake", status, headers or {}, _Raw(body))


def fake_operation(client: Any, operation: str, respond: Any) -> list[dict[str, Any]]:
    """Answer ``operation`` on this client from ``respond(params)`` instead of the server.

    Like botocore's Stubber (a ``before-call`` handler that short-circuits the HTTP call), and like
    it the response is validated against the operation's output shape in the service model; unlike
    it, other operations of the same client still reach moto, which is what a partly implemented
    service (sso-admin, lambda) needs. ``respond`` may return ``("error", code, message, status)``.
    Returns the list of params seen.
    """
    from botocore.validate import ParamValidator

    seen: list[dict[str, Any]] = []
    model = client.meta.service_model.operation_model(operation)

    def remember(model: Any, params: Any, context: Any, **_: Any) -> None:
        if model.name == operation:  # the API parameters, before they are serialized into a request
            context["fake_params"] = dict(params)

    def handler(model: Any, context: Any, **_: Any) -> Any:
        if model.name != operation:
            return None
        params = context["fake_params"]
        seen.append(params)
        out = respond(params)
        if isinstance(out, tuple) and out[0] == "error":
            _, code, message, status = out
            return http_response(status), {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
        report = ParamValidator().validate(out, model.output_shape)
        if report.has_errors():
            raise AssertionError(
                f"fake {operation} response does not fit the service model: {report.generate_report()}"
            )
        return http_response(200), {**out, "ResponseMetadata": {"HTTPStatusCode": 200}}

    assert model is not None
    # Registered on the same wildcard as the collector's own hook, and after it, so the collector's
    # allow-list check and call counting still see the call.
    client.meta.events.register("before-parameter-build.*.*", remember)
    client.meta.events.register("before-call.*.*", handler)
    return seen


def inject_on_send(
    client: Any, operation: str, code: str, status: int, *, times: int | None, when: Any = None
) -> dict[str, int]:
    """Make the HTTP layer answer ``operation`` with an AWS error, ``times`` times (None: always).

    A ``before-send`` handler runs for every attempt, so botocore's retry logic sees these errors
    exactly as it would see AWS's (unlike a before-call short-circuit, which is never retried).
    Returns counters: ``sent`` (attempts seen) and ``injected``.
    """
    counts = {"sent": 0, "injected": 0}
    sid = client.meta.service_model.service_id.hyphenize()
    protocol = client.meta.service_model.protocol

    def handler(request: Any, **_: Any) -> Any:
        if when is not None and not when(request):
            return None
        counts["sent"] += 1
        if times is not None and counts["injected"] >= times:
            return None
        counts["injected"] += 1
        if protocol == "ec2":
            body = (
                f"<Response><Errors><Error><Code>{code}</Code><Message>injected</Message></Error></Errors>"
                "<RequestID>fake</RequestID></Response>"
            ).encode()
            return http_response(status, body, {"Content-Type": "text/xml"})
        if protocol == "query":
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error>"
                "<RequestId>fake</RequestId></ErrorResponse>"
            ).encode()
            return http_response(status, body, {"Content-Type": "text/xml"})
        if protocol == "rest-xml":
            body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
            return http_response(status, body, {"Content-Type": "application/xml"})
        body = json.dumps({"__type": code, "message": "injected"}).encode()
        return http_response(
            status, body, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
        )

    # "*" means every operation of the client (a handler on the service's event prefix).
    client.meta.events.register(
        f"before-send.{sid}" if operation == "*" else f"before-send.{sid}.{operation}", handler
    )
    return counts


def fake_compute_more_gaps(service: str, client: Any) -> None:
    """Empty answers, validated like every fake here, for the compute calls moto 5.2.5 does not implement.

    App Runner ``ListServices`` and AgentCore ``ListCodeInterpreters`` / ``ListBrowsers`` answer HTTP 500
    in moto; an account without such services gets these answers from AWS. (AgentCore runtimes,
    launch templates, Auto Scaling groups and StackSets are implemented by moto and need nothing.)
    """
    if service == "apprunner":
        fake_operation(client, "ListServices", lambda p: {"ServiceSummaryList": []})
    elif service == "bedrock-agentcore-control":
        fake_operation(client, "ListCodeInterpreters", lambda p: {"codeInterpreterSummaries": []})
        fake_operation(client, "ListBrowsers", lambda p: {"browserSummaries": []})
