"""Taking over compute that already runs with a role: make it run the caller's code, keep its role.

One row of ``TAKEOVERS`` per way (kind of compute, the calls, what triggers the code); the edge ends
at the compute's role. When a step hands the role over again (``ecs:RunTask`` on a task definition
with a task role), ``iam:PassRole`` on it is needed too. Pointing existing compute at a *different*
role is a pass of that role (``passrole.py``); launch templates and StackSets, whose role is chosen
elsewhere, are ``compute_redeploy.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from iamgraph.eval.types import Decision
from iamgraph.graph.candidates import resource_matches
from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, compute_roles, make_edge
from iamgraph.graph.rules.passrole import PASS_ROLE, PASSED_TO
from iamgraph.graph.types import Edge, EdgeKind, Reason


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


def _of_account(ctx: BuildContext, action: str, account: str) -> list[str]:
    """The principals of ``account`` (in ``principals_by_account``'s order) whose Allows could cover ``action``:
    one list per (action, account), not a walk over every principal of the account per compute item."""
    table: dict[tuple[str, str], list[str]] = ctx.cache.setdefault("takeover_callers", {})
    hit = table.get((action, account))
    if hit is None:
        holders = ctx.candidates.principals_with(action)
        hit = table[(action, account)] = [p for p in ctx.candidates.principals_by_account.get(account, ())
                                          if p in holders]
    return hit


class TakeoverComputeRule(EdgeRule):
    name = "takeover-compute"
    kinds = (EdgeKind.TAKEOVER_COMPUTE, EdgeKind.SSM_COMMAND, EdgeKind.EC2_INSTANCE_CONNECT)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for item in ctx.index.compute.values():
            roles = compute_roles(ctx, item)
            if not roles:
                continue
            acct = ctx.account(item.arn)
            if not ctx.in_scope(acct) and not any(ctx.in_scope(ctx.account(r)) for r in roles):
                continue  # callers are of the item's account; the role may be of another
            for tech in TAKEOVERS:
                if tech.kind != item.kind:
                    continue
                first = ctx.candidates.principals_with(tech.steps[0])
                for principal in _of_account(ctx, tech.steps[0], acct):
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
