"""Passing a role to compute: new compute started with the role, or existing compute pointed at it.

Passing a role needs ``iam:PassRole`` on it with ``iam:PassedToService`` set to the service that
receives it (supplied in the request context, so a condition naming another service fails), the
service's own create/run actions, and a trust policy that lets that service assume the role.
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
Only roles of the caller's own account can be passed, and compute APIs are not cross-account, so
targets are searched in the caller's account.

* ``pass-role``: new compute started with the role, one row of ``PASS_ROLE_TECHNIQUES`` per way
  (the table holds the techniques of both public catalogs, tests/graph/privesc_catalogs.json).
* ``ecs-task-role-override``: ``ecs:RunTask``/``ecs:StartTask`` on an *existing* task
  definition with ``overrides.taskRoleArn`` set to another role. The override is a pass of that
  role (``iam:PassRole``), so no new task definition is needed.
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskOverride.html
* ``glue-update-job-role``: ``glue:UpdateJob`` can change an existing job's ``Role`` (a pass of
  the new role) and script; ``glue:StartJobRun`` or a new trigger runs it.
  https://docs.aws.amazon.com/glue/latest/webapi/API_JobUpdate.html

All end at the passed role with ``PassRoleToNewCompute`` edges. Taking over compute that already
runs with a role, without passing one, is ``compute_takeover.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from iamgraph.eval.types import Decision
from iamgraph.graph.candidates import resource_matches
from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, compute_roles, fewest_conditions, make_edge
from iamgraph.graph.types import Edge, EdgeKind, Reason

PASS_ROLE = "iam:PassRole"
PASSED_TO = "iam:PassedToService"
AGENTCORE = "bedrock-agentcore.amazonaws.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class Technique:
    """One way to start new compute with a passed role: the service principal and the calls it takes."""

    name: str
    service: str
    steps: tuple[tuple[str, str], ...]
    """(action, resource template with {region} and {account}; ``*`` for actions without a resource)."""
    instance_profile: bool = False
    finish: tuple[tuple[str, str], ...] = ()
    """Alternative last steps that reach the running code (any one will do, the first possible is shown)."""
    finish_assumption: str | None = None
    """What the edge assumes when the caller may take none of ``finish``."""


T = Technique
PASS_ROLE_TECHNIQUES: tuple[Technique, ...] = (
    T(name="ec2-run-instances", service="ec2.amazonaws.com", instance_profile=True,
      steps=(("ec2:RunInstances", "arn:aws:ec2:{region}:{account}:instance/*"),)),
    T(name="ec2-spot-request", service="ec2.amazonaws.com", instance_profile=True,
      steps=(("ec2:RequestSpotInstances", "arn:aws:ec2:{region}:{account}:spot-instances-request/*"),)),
    T(name="ec2-launch-template-autoscaling", service="ec2.amazonaws.com", instance_profile=True,
      steps=(("ec2:CreateLaunchTemplate", "arn:aws:ec2:{region}:{account}:launch-template/*"),
             ("autoscaling:CreateAutoScalingGroup",
              "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/*"))),
    T(name="autoscaling-launch-configuration", service="ec2.amazonaws.com", instance_profile=True,
      steps=(("autoscaling:CreateLaunchConfiguration",
              "arn:aws:autoscaling:{region}:{account}:launchConfiguration:*:launchConfigurationName/*"),
             ("autoscaling:CreateAutoScalingGroup",
              "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/*"))),
    T(name="lambda-create-invoke", service="lambda.amazonaws.com",
      steps=(("lambda:CreateFunction", "arn:aws:lambda:{region}:{account}:function:*"),
             ("lambda:InvokeFunction", "arn:aws:lambda:{region}:{account}:function:*"))),
    T(name="lambda-event-source-mapping", service="lambda.amazonaws.com",
      steps=(("lambda:CreateFunction", "arn:aws:lambda:{region}:{account}:function:*"),
             ("lambda:CreateEventSourceMapping", "*"))),
    T(name="lambda-function-url", service="lambda.amazonaws.com",
      steps=(("lambda:CreateFunction", "arn:aws:lambda:{region}:{account}:function:*"),
             ("lambda:CreateFunctionUrlConfig", "arn:aws:lambda:{region}:{account}:function:*"),
             ("lambda:InvokeFunctionUrl", "arn:aws:lambda:{region}:{account}:function:*"))),
    T(name="cloudformation-stack", service="cloudformation.amazonaws.com",
      steps=(("cloudformation:CreateStack", "arn:aws:cloudformation:{region}:{account}:stack/*"),)),
    T(name="cloudformation-change-set", service="cloudformation.amazonaws.com",
      steps=(("cloudformation:CreateChangeSet", "arn:aws:cloudformation:{region}:{account}:stack/*"),
             ("cloudformation:ExecuteChangeSet", "arn:aws:cloudformation:{region}:{account}:stack/*"))),
    T(name="cloudformation-stackset", service="cloudformation.amazonaws.com",
      steps=(("cloudformation:CreateStackSet", "arn:aws:cloudformation:{region}:{account}:stackset/*"),
             ("cloudformation:CreateStackInstances", "arn:aws:cloudformation:{region}:{account}:stackset/*"))),
    T(name="codebuild-project", service="codebuild.amazonaws.com",
      steps=(("codebuild:CreateProject", "arn:aws:codebuild:{region}:{account}:project/*"),
             ("codebuild:StartBuild", "arn:aws:codebuild:{region}:{account}:project/*"))),
    T(name="codebuild-batch", service="codebuild.amazonaws.com",
      steps=(("codebuild:CreateProject", "arn:aws:codebuild:{region}:{account}:project/*"),
             ("codebuild:StartBuildBatch", "arn:aws:codebuild:{region}:{account}:project/*"))),
    T(name="glue-dev-endpoint", service="glue.amazonaws.com",
      steps=(("glue:CreateDevEndpoint", "arn:aws:glue:{region}:{account}:devEndpoint/*"),)),
    T(name="glue-job", service="glue.amazonaws.com",
      steps=(("glue:CreateJob", "arn:aws:glue:{region}:{account}:job/*"),
             ("glue:StartJobRun", "arn:aws:glue:{region}:{account}:job/*"))),
    T(name="glue-session", service="glue.amazonaws.com",
      steps=(("glue:CreateSession", "arn:aws:glue:{region}:{account}:session/*"),
             ("glue:RunStatement", "arn:aws:glue:{region}:{account}:session/*"))),
    # The notebook's terminal runs as the role. The caller reaches it through a presigned URL, or
    # an on-start lifecycle script it wrote runs as the role; failing both, through the console.
    T(name="sagemaker-notebook", service="sagemaker.amazonaws.com",
      steps=(("sagemaker:CreateNotebookInstance", "arn:aws:sagemaker:{region}:{account}:notebook-instance/*"),),
      finish=(("sagemaker:CreatePresignedNotebookInstanceUrl",
               "arn:aws:sagemaker:{region}:{account}:notebook-instance/*"),
              ("sagemaker:CreateNotebookInstanceLifecycleConfig",
               "arn:aws:sagemaker:{region}:{account}:notebook-instance-lifecycle-config/*")),
      finish_assumption="the caller opens the notebook's Jupyter terminal from the SageMaker console"),
    T(name="sagemaker-training-job", service="sagemaker.amazonaws.com",
      steps=(("sagemaker:CreateTrainingJob", "arn:aws:sagemaker:{region}:{account}:training-job/*"),)),
    T(name="sagemaker-processing-job", service="sagemaker.amazonaws.com",
      steps=(("sagemaker:CreateProcessingJob", "arn:aws:sagemaker:{region}:{account}:processing-job/*"),)),
    T(name="datapipeline", service="datapipeline.amazonaws.com",
      steps=(("datapipeline:CreatePipeline", "*"),
             ("datapipeline:PutPipelineDefinition", "arn:aws:datapipeline:{region}:{account}:pipeline/*"),
             ("datapipeline:ActivatePipeline", "arn:aws:datapipeline:{region}:{account}:pipeline/*"))),
    T(name="ecs-run-task", service="ecs-tasks.amazonaws.com",
      steps=(("ecs:RegisterTaskDefinition", "*"),
             ("ecs:RunTask", "arn:aws:ecs:{region}:{account}:task-definition/*"))),
    T(name="ecs-start-task", service="ecs-tasks.amazonaws.com",
      steps=(("ecs:RegisterTaskDefinition", "*"),
             ("ecs:StartTask", "arn:aws:ecs:{region}:{account}:task-definition/*"))),
    T(name="ecs-service", service="ecs-tasks.amazonaws.com",
      steps=(("ecs:RegisterTaskDefinition", "*"),
             ("ecs:CreateService", "arn:aws:ecs:{region}:{account}:service/*"))),
    T(name="ssm-automation", service="ssm.amazonaws.com",
      steps=(("ssm:StartAutomationExecution", "arn:aws:ssm:{region}:{account}:automation-definition/*"),)),
    T(name="apprunner-service", service="tasks.apprunner.amazonaws.com",
      steps=(("apprunner:CreateService", "arn:aws:apprunner:{region}:{account}:service/*"),)),
    T(name="bedrock-agentcore-code-interpreter", service=AGENTCORE,
      steps=(("bedrock-agentcore:CreateCodeInterpreter",
              "arn:aws:bedrock-agentcore:{region}:{account}:code-interpreter-custom/*"),
             ("bedrock-agentcore:StartCodeInterpreterSession",
              "arn:aws:bedrock-agentcore:{region}:{account}:code-interpreter-custom/*"),
             ("bedrock-agentcore:InvokeCodeInterpreter",
              "arn:aws:bedrock-agentcore:{region}:{account}:code-interpreter-custom/*"))),
    T(name="bedrock-agent", service="bedrock.amazonaws.com",
      steps=(("bedrock:CreateAgent", "arn:aws:bedrock:{region}:{account}:agent/*"),
             ("bedrock:InvokeAgent", "arn:aws:bedrock:{region}:{account}:agent-alias/*"))),
    # Resource templates follow the Service Authorization Reference for each action; the Create*
    # calls of AgentCore take no resource ARN there, hence "*".
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrockagentcore.html
    T(name="bedrock-agentcore-runtime", service=AGENTCORE,
      steps=(("bedrock-agentcore:CreateAgentRuntime", "*"),
             ("bedrock-agentcore:InvokeAgentRuntimeCommand",
              "arn:aws:bedrock-agentcore:{region}:{account}:runtime/*"))),
    # A harness (pathfinding.cloud bedrock-005) needs no technique of its own: CreateHarness
    # provisions a runtime and needs CreateAgentRuntime too, so whoever can use it can use this one.
    T(name="bedrock-agentcore-browser", service=AGENTCORE,
      steps=(("bedrock-agentcore:CreateBrowser", "*"),
             ("bedrock-agentcore:StartBrowserSession",
              "arn:aws:bedrock-agentcore:{region}:{account}:browser-custom/*"),
             ("bedrock-agentcore:ConnectBrowserAutomationStream",
              "arn:aws:bedrock-agentcore:{region}:{account}:browser-custom/*"))),
    # A scheduled or conditional trigger created with StartOnCreation runs the job without StartJobRun.
    # https://docs.aws.amazon.com/glue/latest/webapi/API_CreateTrigger.html
    T(name="glue-job-trigger", service="glue.amazonaws.com",
      steps=(("glue:CreateJob", "arn:aws:glue:{region}:{account}:job/*"),
             ("glue:CreateTrigger", "arn:aws:glue:{region}:{account}:trigger/*"))),
)

INSTANCE_PROFILE_STEPS = (
    ("iam:CreateInstanceProfile", "arn:aws:iam::{account}:instance-profile/*"),
    ("iam:AddRoleToInstanceProfile", "arn:aws:iam::{account}:instance-profile/*"),
)


def _steps_possible(
    ctx: BuildContext, rule: str, principal: str, steps: tuple[tuple[str, str], ...]
) -> list[Decision] | None:
    acct = ctx.account(principal)
    region = ctx.region(acct)
    out: list[Decision] = []
    for action, template in steps:
        arn = template.format(region=region, account=acct).replace("*", "iamgraph-new") if template != "*" else "*"
        d = ctx.possible_on_any(rule, principal, action, arn)
        if d is None:
            return None
        out.append(d)
    return out


def _finish(
    ctx: BuildContext, rule: str, principal: str, finish: tuple[tuple[str, str], ...]
) -> tuple[str, Decision] | None:
    """The first of the alternative last steps the principal may take, fewest conditions first."""
    acct = ctx.account(principal)
    region = ctx.region(acct)
    found: list[tuple[str, Decision]] = []
    for action, template in finish:
        arn = template.format(region=region, account=acct).replace("*", "iamgraph-new") if template != "*" else "*"
        d = ctx.possible_on_any(rule, principal, action, arn)
        if d is not None:
            found.append((action, d))
    return min(found, key=lambda f: len(f[1].conditions)) if found else None


class PassRoleRule(EdgeRule):
    name = "pass-role"
    kinds = (EdgeKind.PASS_ROLE_TO_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        passers = ctx.principals_in_scope(PASS_ROLE)
        trusts: dict[tuple[str, str], Decision | None] = {}
        for principal, patterns in passers.items():
            acct = ctx.account(principal)
            admin = ctx.admin_of(principal, acct)
            if admin and not ctx.protected(acct):
                continue  # the account's admin node covers it (AdminControlRule)
            usable: list[tuple[Technique, list[Decision]]] = []
            for tech in PASS_ROLE_TECHNIQUES:
                if not all(action == "*" or ctx.candidates.principals_with(action).get(principal)
                           for action, _ in tech.steps):
                    continue
                ds = _steps_possible(ctx, self.name, principal, tech.steps)
                if ds is not None:
                    usable.append((tech, ds))
            if not usable:
                continue
            for role_arn in ctx.candidates.principals_by_account.get(acct, ()):
                if role_arn not in ctx.index.roles or role_arn == principal:
                    continue
                if admin and ctx.admin_of(principal, acct, role_arn):
                    continue
                if not any(resource_matches(p, role_arn) for p in patterns):
                    continue
                options: list[Edge] = []
                trusted = ctx.candidates.trust(role_arn)
                for tech, ds in usable:
                    if tech.service not in trusted.services and not trusted.everyone:
                        continue  # the trust policy does not name the service: it cannot assume the role
                    key = (role_arn, tech.service)
                    if key not in trusts:
                        trusts[key] = ctx.as_outsider(self.name, tech.service, "sts:AssumeRole", role_arn)
                    trust = trusts[key]
                    if trust is None:
                        continue
                    d_pass = ctx.possible(self.name, principal, PASS_ROLE, role_arn, {PASSED_TO: tech.service})
                    if d_pass is None:
                        continue
                    extra: list[Decision] = []
                    via = [PASS_ROLE, *(a for a, _ in tech.steps)]
                    assumptions: tuple[str, ...] = ()
                    if tech.finish:
                        done = _finish(ctx, self.name, principal, tech.finish)
                        if done is None:
                            assumptions = (tech.finish_assumption,) if tech.finish_assumption else ()
                        else:
                            via.append(done[0])
                            extra.append(done[1])
                    if tech.instance_profile and not ctx.index.roles[role_arn].instance_profiles:
                        more = _steps_possible(ctx, self.name, principal, INSTANCE_PROFILE_STEPS)
                        if more is None:
                            continue
                        extra += more
                        via += [a for a, _ in INSTANCE_PROFILE_STEPS]
                    options.append(make_edge(
                        EdgeKind.PASS_ROLE_TO_COMPUTE, principal, role_arn,
                        Reason(via=tuple(via), service=tech.service, note=tech.name),
                        d_pass, *ds, *extra, trust, assumptions=assumptions,
                    ))
                best = fewest_conditions(options)
                if best is not None:
                    yield best


def _passable_roles(ctx: BuildContext, rule: str, principal: str,
                    service: str) -> Iterator[tuple[str, Decision, Decision]]:
    """Roles of the caller's account it may pass to ``service`` and that ``service`` may assume."""
    patterns = ctx.candidates.principals_with(PASS_ROLE).get(principal, ())
    if not patterns:
        return
    for role_arn in ctx.candidates.principals_by_account.get(ctx.account(principal), ()):
        if role_arn not in ctx.index.roles or role_arn == principal:
            continue
        if not any(resource_matches(p, role_arn) for p in patterns):
            continue
        trusted = ctx.candidates.trust(role_arn)
        if service not in trusted.services and not trusted.everyone:
            continue
        d_trust = ctx.as_outsider(rule, service, "sts:AssumeRole", role_arn)
        if d_trust is None:
            continue
        d_pass = ctx.possible(rule, principal, PASS_ROLE, role_arn, {PASSED_TO: service})
        if d_pass is None:
            continue
        yield role_arn, d_pass, d_trust


ECS_TASKS = "ecs-tasks.amazonaws.com"


class EcsTaskRoleOverrideRule(EdgeRule):
    name = "ecs-task-role-override"
    kinds = (EdgeKind.PASS_ROLE_TO_COMPUTE,)

    # StartTask places the task on a container instance the caller names; RunTask can use Fargate.
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StartTask.html
    STARTS: tuple[tuple[str, str, str | None], ...] = (
        ("ecs:RunTask", "ecs-run-task-override", None),
        ("ecs:StartTask", "ecs-start-task-override",
         "a container instance is registered in the task's cluster (or the caller can register one)"),
    )

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for item in ctx.index.compute.values():
            if item.kind != "ecs_task_definition":
                continue
            acct = ctx.account(item.arn)
            if not ctx.in_scope(acct):
                continue  # caller, task definition and passed role are all of its account
            own = set(compute_roles(ctx, item))
            for action, note, assumption in self.STARTS:
                for principal, patterns in ctx.principals_with_in(action, acct):
                    if ctx.admin_of(principal, acct) and not ctx.protected(acct):
                        continue
                    if not any(resource_matches(p, item.arn) for p in patterns):
                        continue
                    d_start = ctx.possible(self.name, principal, action, item.arn)
                    if d_start is None:
                        continue
                    for role_arn, d_pass, d_trust in _passable_roles(ctx, self.name, principal, ECS_TASKS):
                        if role_arn in own or ctx.admin_of(principal, acct, role_arn):
                            continue  # as it is: the takeover-compute rule; or the admin node covers it
                        yield make_edge(
                            EdgeKind.PASS_ROLE_TO_COMPUTE, principal, role_arn,
                            Reason(via=(PASS_ROLE, action), target=item.arn, service=ECS_TASKS, note=note),
                            d_pass, d_start, d_trust, assumptions=(assumption,) if assumption else (),
                        )


class GlueJobRoleRule(EdgeRule):
    name = "glue-update-job-role"
    kinds = (EdgeKind.PASS_ROLE_TO_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        service = "glue.amazonaws.com"
        for item in ctx.index.compute.values():
            if item.kind != "glue_job":
                continue
            acct = ctx.account(item.arn)
            if not ctx.in_scope(acct):
                continue  # caller, job and passed role are all of its account
            region = ctx.region(acct)
            own = set(compute_roles(ctx, item))
            for principal, patterns in ctx.principals_with_in("glue:UpdateJob", acct):
                if ctx.admin_of(principal, acct) and not ctx.protected(acct):
                    continue
                if not any(resource_matches(p, item.arn) for p in patterns):
                    continue
                d_update = ctx.possible(self.name, principal, "glue:UpdateJob", item.arn)
                if d_update is None:
                    continue
                runs: list[tuple[str, str, Decision]] = []
                d_run = ctx.possible(self.name, principal, "glue:StartJobRun", item.arn)
                if d_run is not None:
                    runs.append(("glue:StartJobRun", "glue-update-job-start", d_run))
                d_trig = ctx.possible_on_any(self.name, principal, "glue:CreateTrigger",
                                             f"arn:aws:glue:{region}:{acct}:trigger/iamgraph-new")
                if d_trig is not None:
                    runs.append(("glue:CreateTrigger", "glue-update-job-trigger", d_trig))
                if not runs:
                    continue
                for role_arn, d_pass, d_trust in _passable_roles(ctx, self.name, principal, service):
                    if role_arn in own or ctx.admin_of(principal, acct, role_arn):
                        continue  # keeping the job's role: the takeover-compute rule; or the admin node
                    options = [
                        make_edge(EdgeKind.PASS_ROLE_TO_COMPUTE, principal, role_arn,
                                  Reason(via=(PASS_ROLE, "glue:UpdateJob", run), target=item.arn, service=service,
                                         note=note),
                                  d_pass, d_update, d_r, d_trust)
                        for run, note, d_r in runs
                    ]
                    best = fewest_conditions(options)
                    if best is not None:
                        yield best
