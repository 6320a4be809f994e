"""Running code as a role: pass it to new compute, or take over compute that already runs with it.

Passing a role needs ``iam:PassRole`` on it with ``iam:PassedToService`` set to the service that
receives it (supplied in the request context, so a condition naming another service fails), the
service's own create/run actions, and a trust policy that lets that service assume the role.
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
Only roles of the caller's own account can be passed, and compute APIs are not cross-account, so
targets are searched in the caller's account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from iamgraph.eval.types import Decision
from iamgraph.graph.candidates import resource_matches
from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, fewest_conditions, make_edge, register
from iamgraph.graph.types import Edge, EdgeKind, Reason
from iamgraph.snapshot.model import Compute

PASS_ROLE = "iam:PassRole"
PASSED_TO = "iam:PassedToService"


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
    T(name="bedrock-agentcore-code-interpreter", service="bedrock-agentcore.amazonaws.com",
      steps=(("bedrock-agentcore:CreateCodeInterpreter",
              "arn:aws:bedrock-agentcore:{region}:{account}:code-interpreter-custom/*"),
             ("bedrock-agentcore:StartCodeInterpreterSession",
              "arn:aws:bedrock-agentcore:{region}:{account}:code-interpreter-custom/*"),
             ("bedrock-agentcore:InvokeCodeInterpreter",
              "arn:aws:bedrock-agentcore:{region}:{account}:code-interpreter-custom/*"))),
    T(name="bedrock-agent", service="bedrock.amazonaws.com",
      steps=(("bedrock:CreateAgent", "arn:aws:bedrock:{region}:{account}:agent/*"),
             ("bedrock:InvokeAgent", "arn:aws:bedrock:{region}:{account}:agent-alias/*"))),
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


@register
class PassRoleRule(EdgeRule):
    name = "pass-role"
    kinds = (EdgeKind.PASS_ROLE_TO_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        passers = ctx.candidates.principals_with(PASS_ROLE)
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


# -- existing compute


@dataclass(frozen=True, slots=True, kw_only=True)
class Takeover:
    """Calls that make existing compute run the caller's code with its role."""

    name: str
    kind: str
    steps: tuple[str, ...]
    trigger: str | None = None
    """A call that makes the code run now; without it the edge assumes the code runs eventually."""
    edge: EdgeKind = EdgeKind.TAKEOVER_COMPUTE
    assumption: str | None = None
    pass_to: str | None = None
    """The steps hand the compute's role over again: ``iam:PassRole`` on it to this service is needed too."""


TAKEOVERS: tuple[Takeover, ...] = (
    Takeover(name="lambda-update-code", kind="lambda_function", steps=("lambda:UpdateFunctionCode",),
             trigger="lambda:InvokeFunction"),
    Takeover(name="lambda-update-configuration", kind="lambda_function",
             steps=("lambda:UpdateFunctionConfiguration",), trigger="lambda:InvokeFunction",
             assumption="the new configuration (a layer or runtime wrapper) supplies the code"),
    Takeover(name="glue-update-dev-endpoint", kind="glue_dev_endpoint", steps=("glue:UpdateDevEndpoint",)),
    Takeover(name="glue-update-job", kind="glue_job", steps=("glue:UpdateJob",), trigger="glue:StartJobRun"),
    Takeover(name="cloudformation-update-stack", kind="cloudformation_stack",
             steps=("cloudformation:UpdateStack",)),
    Takeover(name="cloudformation-change-set", kind="cloudformation_stack",
             steps=("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet")),
    # StartBuild accepts a buildspec override, so starting a build is enough to run new commands.
    Takeover(name="codebuild-start-build", kind="codebuild_project", steps=("codebuild:StartBuild",)),
    Takeover(name="codebuild-update-project", kind="codebuild_project",
             steps=("codebuild:UpdateProject",), trigger="codebuild:StartBuild"),
    Takeover(name="sagemaker-presigned-url", kind="sagemaker_notebook",
             steps=("sagemaker:CreatePresignedNotebookInstanceUrl",)),
    # A lifecycle configuration runs as the notebook's role on its next start.
    Takeover(name="sagemaker-lifecycle-config", kind="sagemaker_notebook",
             steps=("sagemaker:UpdateNotebookInstance", "sagemaker:StopNotebookInstance",
                    "sagemaker:StartNotebookInstance"),
             assumption="the caller can create a lifecycle configuration (not tied to the notebook's ARN)"),
    Takeover(name="codebuild-start-build-batch", kind="codebuild_project", steps=("codebuild:StartBuildBatch",)),
    Takeover(name="ec2-user-data", kind="ec2_instance",
             steps=("ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances")),
    # RunTask with a task role passes that role (iam:PassRole), as does pointing a service at a new
    # task definition that keeps the role but runs the caller's image.
    Takeover(name="ecs-run-existing-task-definition", kind="ecs_task_definition", steps=("ecs:RunTask",),
             pass_to="ecs-tasks.amazonaws.com"),
    Takeover(name="ecs-update-service", kind="ecs_service",
             steps=("ecs:UpdateService", "ecs:RegisterTaskDefinition"), pass_to="ecs-tasks.amazonaws.com"),
    Takeover(name="ecs-execute-command", kind="ecs_service", steps=("ecs:ExecuteCommand",),
             assumption="ECS Exec is enabled on the service's tasks"),
    Takeover(name="ssm-send-command", kind="ec2_instance", steps=("ssm:SendCommand",),
             edge=EdgeKind.SSM_COMMAND, assumption="the instance runs the SSM agent"),
    Takeover(name="ssm-start-session", kind="ec2_instance", steps=("ssm:StartSession",),
             edge=EdgeKind.SSM_COMMAND, assumption="the instance runs the SSM agent"),
    Takeover(name="ssm-send-command", kind="ssm_managed_instance", steps=("ssm:SendCommand",),
             edge=EdgeKind.SSM_COMMAND),
    Takeover(name="ssm-start-session", kind="ssm_managed_instance", steps=("ssm:StartSession",),
             edge=EdgeKind.SSM_COMMAND),
    # A new deployment of the service runs the caller's image or source with the instance role.
    Takeover(name="apprunner-update-service", kind="apprunner_service", steps=("apprunner:UpdateService",)),
    Takeover(name="agentcore-code-interpreter-session", kind="bedrock_agentcore_code_interpreter",
             steps=("bedrock-agentcore:StartCodeInterpreterSession", "bedrock-agentcore:InvokeCodeInterpreter")),
    Takeover(name="agentcore-runtime-command", kind="bedrock_agentcore_runtime",
             steps=("bedrock-agentcore:InvokeAgentRuntimeCommand",)),
    Takeover(name="agentcore-browser-automation", kind="bedrock_agentcore_browser",
             steps=("bedrock-agentcore:StartBrowserSession", "bedrock-agentcore:ConnectBrowserAutomationStream")),
    Takeover(name="ec2-instance-connect", kind="ec2_instance",
             steps=("ec2-instance-connect:SendSSHPublicKey",), edge=EdgeKind.EC2_INSTANCE_CONNECT,
             assumption="network access to the instance's SSH port"),
)


def compute_roles(ctx: BuildContext, item: Compute) -> list[str]:
    if item.kind == "ecs_service":
        # The service's tasks run as their task definition's role (a service's own roleArn is the
        # load balancer's role); the item's role_arn is used when the task definition is not held.
        taskdef = ctx.index.compute.get(str(item.attributes.get("task_definition") or ""))
        if taskdef is not None and taskdef.role_arn:
            node = ctx.resolve_principal(taskdef.role_arn)
            return [node] if node else []
    if item.role_arn:
        node = ctx.resolve_principal(item.role_arn)
        return [node] if node else []
    if item.instance_profile_arn:
        return [r.arn for r in ctx.index.roles.values() if item.instance_profile_arn in r.instance_profiles]
    return []


@register
class TakeoverComputeRule(EdgeRule):
    name = "takeover-compute"
    kinds = (EdgeKind.TAKEOVER_COMPUTE, EdgeKind.SSM_COMMAND, EdgeKind.EC2_INSTANCE_CONNECT)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for item in ctx.index.compute.values():
            roles = compute_roles(ctx, item)
            if not roles:
                continue
            acct = ctx.account(item.arn)
            for tech in TAKEOVERS:
                if tech.kind != item.kind:
                    continue
                first = ctx.candidates.principals_with(tech.steps[0])
                for principal in ctx.candidates.principals_by_account.get(acct, ()):
                    if ctx.admin_of(principal, acct) and not any(r in ctx.protected(acct) for r in roles):
                        continue
                    if not any(resource_matches(p, item.arn) for p in first.get(principal, ())):
                        continue
                    if not all(ctx.candidates.may(principal, a, item.arn) or ctx.candidates.named_in_policy(
                            principal, item.arn) for a in tech.steps[1:]):
                        continue  # a later step no Allow statement covers: the engine would say no
                    ds: list[Decision] = []
                    for action in tech.steps:
                        d = ctx.possible(self.name, principal, action, item.arn)
                        if d is None:
                            break
                        ds.append(d)
                    else:
                        assumptions: list[str] = [tech.assumption] if tech.assumption else []
                        via = list(tech.steps)
                        if tech.trigger is not None:
                            t = ctx.possible(self.name, principal, tech.trigger, item.arn)
                            if t is not None:
                                ds.append(t)
                                via.append(tech.trigger)
                            else:
                                assumptions.append("the code runs when something else next starts it")
                        if tech.pass_to is not None:
                            passes = [ctx.possible(self.name, principal, PASS_ROLE, r,
                                                   {PASSED_TO: tech.pass_to}) for r in roles]
                            if any(p is None for p in passes):
                                continue
                            ds.extend(p for p in passes if p is not None)
                            via.append(PASS_ROLE)
                        if item.kind == "ecs_service" and item.attributes.get("enable_execute_command"):
                            assumptions = [a for a in assumptions if a != tech.assumption]
                        for role in roles:
                            if role == principal or ctx.admin_of(principal, acct, role):
                                continue
                            yield make_edge(
                                tech.edge, principal, role,
                                Reason(via=tuple(via), target=item.arn, service=item.kind, note=tech.name),
                                *ds, assumptions=tuple(assumptions),
                            )
