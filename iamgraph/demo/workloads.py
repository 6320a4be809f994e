"""The ordinary estate of a workload account (Prod, Dev, Sandbox): the orders application's resources, the
service roles and compute that run it, and generic Lambda roles up to ``roles_per_account``.

Nothing here is a planted finding; the findings (iamgraph/demo/findings.py) are built on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from iamgraph.demo.context import HOME, SLUG, Ctx, key_policy, service_role_actor, tagged
from iamgraph.demo.world import AcctBuilder, call, doc, policy_for_calls, trust_service


@dataclass(frozen=True, slots=True, kw_only=True)
class _Orders:
    """The ARNs of one account's orders application, which the roles below are granted on."""

    key: str
    data: str
    artifacts: str
    secret: str
    topic: str
    queue: str
    table: str
    repo: str
    loggroup: str
    cluster: str

    @property
    def obj(self) -> str:
        return f"{self.data}/"


def workloads(ctx: Ctx, acct: AcctBuilder, *, full: bool) -> None:
    """Resources, service roles and compute of a workload account; ``full`` adds the deployment pipeline and
    the data platform (prod-01 and dev-01, where the planted findings need them)."""
    o = _orders_resources(ctx, acct)
    _orders_api_ecs(ctx, acct, o)
    _orders_worker_lambda(ctx, acct, o)
    _web_tier(ctx, acct, o)
    if not full:
        return
    _deploy_pipeline(ctx, acct, o)
    _data_platform(ctx, acct, o)


def _orders_resources(ctx: Ctx, acct: AcctBuilder) -> _Orders:
    aid, name = acct.account_id, acct.name
    sensitive = "PII" if acct.ou == "Prod" else "Internal"
    key = acct.arn("kms", f"key/{ctx.ids.uuid('key', aid, 'app')}", HOME)
    acct.resource(
        key,
        "kms:key",
        target="key",
        name="app-key",
        policy=key_policy(acct),
        tags=tagged(sensitive),
        attributes={"key_manager": "CUSTOMER", "grants": []},
    )
    data = acct.bucket(f"{SLUG}-{name}-data-{aid}", tags=tagged(sensitive), kms_key=key)
    artifacts = acct.bucket(f"{SLUG}-{name}-artifacts-{aid}", tags=tagged("Internal"))
    secret = acct.arn("secretsmanager", f"secret:{name}/orders/db-{ctx.ids.alnum(6, 'secret', aid)}", HOME)
    acct.resource(
        secret,
        "secretsmanager:secret",
        target="secret",
        name=f"{name}/orders/db",
        tags=tagged("PCI" if acct.ou == "Prod" else "Internal"),
        attributes={"kms_key_id": key},
        # Only the orders API reads it, and nobody from outside the account (identity policies still apply).
        policy=doc({"Sid": "OrdersApiRead", "Effect": "Allow",
                    "Principal": {"AWS": acct.iam_arn("role", "orders-api-task")},
                    "Action": "secretsmanager:GetSecretValue", "Resource": "*"}),
    )
    topic = acct.arn("sns", "orders-events", HOME)
    queue = acct.arn("sqs", "orders-queue", HOME)
    acct.resource(
        topic,
        "sns:topic",
        target="topic",
        name="orders-events",
        tags=tagged("Internal"),
        policy=doc(
            {
                "Sid": "OwnerPublish",
                "Effect": "Allow",
                "Principal": {"AWS": acct.root_arn},
                "Action": ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"],
                "Resource": topic,
            }
        ),
    )
    acct.resource(
        queue,
        "sqs:queue",
        target="queue",
        name="orders-queue",
        tags=tagged("Internal"),
        policy=doc(
            {
                "Sid": "FromOrdersTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            }
        ),
        attributes={"url": f"https://sqs.{HOME}.amazonaws.com/{aid}/orders-queue"},
    )
    table = acct.arn("dynamodb", "table/orders", HOME)
    acct.resource(
        table,
        "other",
        target="table",
        name="orders",
        tags=tagged(sensitive),
        attributes={"resource_type": "AWS::DynamoDB::Table", "sse_kms_key": key},
    )
    repo = acct.arn("ecr", "repository/orders-api", HOME)
    acct.resource(
        repo,
        "ecr:repository",
        target="repository",
        name="orders-api",
        tags=tagged("Internal"),
        policy=doc(
            {
                "Sid": "OrgPull",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ctx.org_id}},
            }
        ),
    )
    loggroup = acct.arn("logs", "log-group:/aws/lambda/orders-worker", HOME)
    acct.targets["loggroup"].append(loggroup)
    acct.targets["param"].append(acct.arn("ssm", "parameter/orders/config", HOME))
    acct.targets["stream"].append(acct.arn("kinesis", "stream/orders-stream", HOME))
    cluster = acct.arn("ecs", "cluster/orders", HOME)
    acct.targets["cluster"].append(cluster)
    return _Orders(key=key, data=data, artifacts=artifacts, secret=secret, topic=topic, queue=queue, table=table,
                   repo=repo, loggroup=loggroup, cluster=cluster)


def _orders_api_ecs(ctx: Ctx, acct: AcctBuilder, o: _Orders) -> None:
    table, queue, key, secret = o.table, o.queue, o.key, o.secret
    cluster, repo, loggroup = o.cluster, o.repo, o.loggroup
    # ECS: the task role does the work, the execution role pulls the image and ships logs.
    task_calls = [
        call("dynamodb.GetItem", table),
        call("dynamodb.PutItem", table),
        call("dynamodb.Query", table),
        call("sqs.SendMessage", queue),
        call("kms.Decrypt", key),
        call("secretsmanager.GetSecretValue", secret),
        call("ec2.DescribeInstances"),
    ]
    acct.role(
        "orders-api-task",
        trust_service("ecs-tasks.amazonaws.com"),
        inline={"orders-api": policy_for_calls(task_calls)},
        description="ECS task role of orders-api",
    )
    acct.role(
        "ecsTaskExecutionRole",
        trust_service("ecs-tasks.amazonaws.com"),
        managed=[ctx.aws("AmazonECSTaskExecutionRolePolicy")],
    )
    task_role = acct.role_by_name["orders-api-task"].arn
    taskdef = acct.compute(
        "ecs_task_definition",
        acct.arn("ecs", "task-definition/orders-api:12", HOME),
        "orders-api:12",
        role_arn=task_role,
        attributes={"execution_role_arn": acct.role_by_name["ecsTaskExecutionRole"].arn},
    )
    acct.compute(
        "ecs_service",
        acct.arn("ecs", "service/orders/orders-api", HOME),
        "orders-api",
        role_arn=task_role,
        attributes={"cluster": cluster, "task_definition": taskdef, "launch_type": "FARGATE"},
    )
    service_role_actor(ctx, acct, "orders-api-task", "ecs-tasks.amazonaws.com", task_calls, weight=3.0)
    service_role_actor(
        ctx,
        acct,
        "ecsTaskExecutionRole",
        "ecs-tasks.amazonaws.com",
        [
            call("ecr.GetAuthorizationToken"),
            call("ecr.BatchGetImage", repo),
            call("ecr.GetDownloadUrlForLayer", repo),
            call("logs.CreateLogStream", loggroup),
        ],
        weight=1.0,
    )


def _orders_worker_lambda(ctx: Ctx, acct: AcctBuilder, o: _Orders) -> None:
    queue, table, topic, loggroup = o.queue, o.table, o.topic, o.loggroup
    # Lambda worker.
    worker_calls = [
        call("sqs.ReceiveMessage", queue),
        call("sqs.DeleteMessage", queue),
        call("dynamodb.UpdateItem", table),
        call("sns.Publish", topic),
        call("logs.CreateLogStream", loggroup),
    ]
    worker = acct.role(
        "orders-worker-lambda",
        trust_service("lambda.amazonaws.com"),
        managed=[ctx.aws("AWSLambdaBasicExecutionRole")],
        inline={"orders-worker": policy_for_calls(worker_calls[:4])},
    )
    fn = acct.compute(
        "lambda_function",
        acct.arn("lambda", "function:orders-worker", HOME),
        "orders-worker",
        role_arn=worker.arn,
        target="function",
        attributes={"runtime": "python3.12"},
    )
    acct.resource(
        fn,
        "lambda:function",
        target="function",
        name="orders-worker",
        policy=doc(
            {
                "Sid": "sqs-trigger",
                "Effect": "Allow",
                "Principal": {"Service": "sqs.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": fn,
                "Condition": {"ArnLike": {"AWS:SourceArn": queue}},
            }
        ),
    )
    acct.targets["function"].pop()  # listed once
    service_role_actor(ctx, acct, "orders-worker-lambda", "lambda.amazonaws.com", worker_calls, weight=2.0)


def _web_tier(ctx: Ctx, acct: AcctBuilder, o: _Orders) -> None:
    aid, artifacts = acct.account_id, o.artifacts
    # EC2 web tier with an instance profile, managed by SSM.
    web_calls = [
        call("ssm.UpdateInstanceInformation"),
        call("s3.GetObject", f"{artifacts}/"),
        call("ssm.GetParameter", acct.targets["param"][0]),
    ]
    web = acct.role(
        "web-ec2",
        trust_service("ec2.amazonaws.com"),
        managed=[ctx.aws("AmazonSSMManagedInstanceCore")],
        inline={"web": policy_for_calls(web_calls[1:])},
        profile=True,
    )
    inst = acct.arn("ec2", f"instance/i-{ctx.ids.hex(17, 'web', aid)}", HOME)
    acct.compute(
        "ec2_instance",
        inst,
        "web-1",
        role_arn=web.arn,
        profile_arn=web.instance_profiles[0],
        target="instance",
        attributes={"state": "running", "instance_type": "t3.medium"},
    )
    acct.compute(
        "ssm_managed_instance",
        acct.arn("ssm", f"managed-instance/{inst.rsplit('/', 1)[1]}", HOME),
        "web-1",
        role_arn=web.arn,
        profile_arn=web.instance_profiles[0],
        attributes={"instance_id": inst.rsplit("/", 1)[1], "ping_status": "Online"},
    )
    service_role_actor(ctx, acct, "web-ec2", "ec2.amazonaws.com", web_calls, weight=1.5)


def _deploy_pipeline(ctx: Ctx, acct: AcctBuilder, o: _Orders) -> None:
    """CloudFormation with a service role, and the CodeBuild project that builds the image."""
    aid, repo, artifacts, loggroup = acct.account_id, o.repo, o.artifacts, o.loggroup
    cfn_calls = [
        call("ec2.DescribeSecurityGroups"),
        call("ec2.AuthorizeSecurityGroupIngress"),
        call("logs.CreateLogGroup", loggroup),
        call("logs.PutRetentionPolicy", loggroup),
    ]
    cfn = acct.role(
        "cfn-deploy",
        trust_service("cloudformation.amazonaws.com"),
        inline={"cfn-deploy": policy_for_calls(cfn_calls)},
    )
    acct.compute(
        "cloudformation_stack",
        acct.arn("cloudformation", f"stack/orders-platform/{ctx.ids.uuid('stack', aid)}", HOME),
        "orders-platform",
        role_arn=cfn.arn,
        target="stack",
        attributes={"status": "UPDATE_COMPLETE"},
    )
    service_role_actor(ctx, acct, "cfn-deploy", "cloudformation.amazonaws.com", cfn_calls, weight=0.3)
    cb_calls = [
        call("ecr.GetAuthorizationToken"),
        call("ecr.PutImage", repo),
        call("s3.PutObject", f"{artifacts}/"),
        call("logs.CreateLogStream", loggroup),
        call("codecommit.GitPull"),
        call("ssm.GetParameters", acct.targets["param"][0]),
    ]
    cb = acct.role(
        "codebuild-orders",
        trust_service("codebuild.amazonaws.com"),
        inline={"codebuild": policy_for_calls(cb_calls)},
    )
    acct.compute(
        "codebuild_project",
        acct.arn("codebuild", "project/orders-api-build", HOME),
        "orders-api-build",
        role_arn=cb.arn,
        target="project",
    )
    service_role_actor(ctx, acct, "codebuild-orders", "codebuild.amazonaws.com", cb_calls, weight=0.8)


def _data_platform(ctx: Ctx, acct: AcctBuilder, o: _Orders) -> None:
    """Glue ETL and a SageMaker notebook over the data bucket."""
    obj, key, repo = o.obj, o.key, o.repo
    glue_calls = [
        call("glue.GetTable"),
        call("glue.GetPartitions"),
        call("glue.BatchCreatePartition"),
        call("s3.GetObject", obj),
        call("s3.PutObject", obj),
        call("kms.Decrypt", key),
    ]
    glue = acct.role(
        "glue-etl",
        trust_service("glue.amazonaws.com"),
        managed=[ctx.aws("AWSGlueServiceRole")],
        inline={"data-lake": policy_for_calls(glue_calls[3:])},
    )
    acct.compute(
        "glue_job", acct.arn("glue", "job/orders-etl", HOME), "orders-etl", role_arn=glue.arn, target="job"
    )
    service_role_actor(ctx, acct, "glue-etl", "glue.amazonaws.com", glue_calls, weight=0.8)
    sm_calls = [
        call("sagemaker.CreateTrainingJob"),
        call("sagemaker.DescribeTrainingJob"),
        call("s3.GetObject", obj),
        call("ecr.BatchGetImage", repo),
        call("kms.Decrypt", key),
    ]
    sm = acct.role(
        "sagemaker-exec",
        trust_service("sagemaker.amazonaws.com"),
        managed=[ctx.aws("AmazonSageMakerFullAccess")],
        inline={"data": policy_for_calls([sm_calls[2], sm_calls[4]])},
    )
    acct.compute(
        "sagemaker_notebook",
        acct.arn("sagemaker", "notebook-instance/ml-notebook", HOME),
        "ml-notebook",
        role_arn=sm.arn,
        target="notebook",
        attributes={"direct_internet_access": "Disabled"},
    )
    service_role_actor(ctx, acct, "sagemaker-exec", "sagemaker.amazonaws.com", sm_calls, weight=0.5)


_WORDS = (
    "billing",
    "catalog",
    "checkout",
    "inventory",
    "search",
    "shipping",
    "profile",
    "reviews",
    "pricing",
    "notify",
    "reports",
    "ledger",
    "fraud",
    "loyalty",
    "media",
    "auth",
    "gateway",
    "export",
    "audit",
    "quotes",
)


def top_up(ctx: Ctx, acct: AcctBuilder) -> None:
    """Generic workload roles (Lambda functions) until the account holds ``roles_per_account`` roles."""
    if acct.ou not in ("Prod", "Dev", "Sandbox"):
        return
    table, queue = acct.targets["table"][0], acct.targets["queue"][0]
    obj, key = acct.targets["object"][0], acct.targets["key"][0]
    n = 0
    while len(acct.roles) < ctx.cfg.roles_per_account:
        n += 1
        word = _WORDS[(n - 1) % len(_WORDS)]
        name = f"app-{word}-{n:04d}"
        variant = n % 4
        calls = [
            call("logs.CreateLogStream", acct.targets["loggroup"][0]),
            [
                call("dynamodb.Query", table),
                call("sqs.SendMessage", queue),
                call("s3.GetObject", obj),
                call("kms.Decrypt", key),
            ][variant],
            [
                call("dynamodb.GetItem", table),
                call("sqs.ReceiveMessage", queue),
                call("s3.PutObject", obj),
                call("secretsmanager.GetSecretValue", acct.targets["secret"][0]),
            ][variant],
        ]
        policy = policy_for_calls(calls)
        if n % 2:
            role = acct.role(
                name,
                trust_service("lambda.amazonaws.com"),
                inline={f"{name}-access": policy},
                tags={"team": word, "app": name},
            )
        else:
            parn = acct.policy(f"{name}-access", [policy], description=f"Access for {name}")
            role = acct.role(
                name, trust_service("lambda.amazonaws.com"), managed=[parn], tags={"team": word, "app": name}
            )
        fn = acct.arn("lambda", f"function:{word}-{n:04d}", HOME)
        acct.compute(
            "lambda_function",
            fn,
            f"{word}-{n:04d}",
            role_arn=role.arn,
            target="function",
            attributes={"runtime": "python3.12"},
        )
        service_role_actor(ctx, acct, name, "lambda.amazonaws.com", calls, weight=0.3)
