"""Escalation techniques from the public catalogs that the core rules do not model.

Found by checking pathfinding.cloud's paths (tests/graph/privesc_catalogs.json) against the graph:

* ``pass-role-extra``: more ways to start new compute with a passed role (Bedrock AgentCore
  runtimes and custom browsers; a Glue job started by a new trigger).
* ``ecs-task-role-override``: ``ecs:RunTask``/``ecs:StartTask`` on an *existing* task
  definition with ``overrides.taskRoleArn`` set to another role. The override is a pass of that
  role (``iam:PassRole``), so no new task definition is needed.
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskOverride.html
* ``glue-update-job-role``: ``glue:UpdateJob`` can change an existing job's ``Role`` (a pass of
  the new role) and script; ``glue:StartJobRun`` or a new trigger runs it.
  https://docs.aws.amazon.com/glue/latest/webapi/API_JobUpdate.html

All three end at the passed role with ``PassRoleToNewCompute`` edges and, like the core pass-role
rule, require the role's trust policy to let the receiving service assume it. Compute APIs and
``iam:PassRole`` are not cross-account, so only roles and compute of the caller's account count.
"""

from __future__ import annotations

from collections.abc import Iterator

from iamgraph.eval.types import Decision
from iamgraph.graph.candidates import resource_matches
from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, fewest_conditions, make_edge, register
from iamgraph.graph.rules.compute import PASS_ROLE, PASSED_TO, Technique, compute_roles
from iamgraph.graph.types import Edge, EdgeKind, Reason

AGENTCORE = "bedrock-agentcore.amazonaws.com"
T = Technique
# Resource templates follow the Service Authorization Reference for each action; the Create*
# calls of AgentCore take no resource ARN there, hence "*".
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrockagentcore.html
EXTRA_PASS_ROLE_TECHNIQUES: tuple[Technique, ...] = (
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


def _steps(ctx: BuildContext, rule: str, principal: str,
           steps: tuple[tuple[str, str], ...]) -> list[Decision] | None:
    """Each step's decision on a resource the caller would create or name, or None if one is impossible."""
    acct = ctx.account(principal)
    region = ctx.region(acct)
    out: list[Decision] = []
    for action, template in steps:
        if not ctx.candidates.principals_with(action).get(principal):
            return None  # no Allow statement covers the action: the engine would say no
        arn = template.format(region=region, account=acct).replace("*", "iamgraph-new") if template != "*" else "*"
        d = ctx.possible_on_any(rule, principal, action, arn)
        if d is None:
            return None
        out.append(d)
    return out


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


@register
class PassRoleExtraRule(EdgeRule):
    name = "pass-role-extra"
    kinds = (EdgeKind.PASS_ROLE_TO_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for principal in ctx.candidates.principals_with(PASS_ROLE):
            acct = ctx.account(principal)
            if ctx.admin_of(principal, acct) and not ctx.protected(acct):
                continue  # the account's admin node covers it
            by_role: dict[str, list[Edge]] = {}
            for tech in EXTRA_PASS_ROLE_TECHNIQUES:
                ds = _steps(ctx, self.name, principal, tech.steps)
                if ds is None:
                    continue
                for role_arn, d_pass, d_trust in _passable_roles(ctx, self.name, principal, tech.service):
                    if ctx.admin_of(principal, acct, role_arn):
                        continue
                    by_role.setdefault(role_arn, []).append(make_edge(
                        EdgeKind.PASS_ROLE_TO_COMPUTE, principal, role_arn,
                        Reason(via=(PASS_ROLE, *(a for a, _ in tech.steps)), service=tech.service, note=tech.name),
                        d_pass, *ds, d_trust,
                    ))
            for options in by_role.values():
                best = fewest_conditions(options)
                if best is not None:
                    yield best


ECS_TASKS = "ecs-tasks.amazonaws.com"


@register
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
            own = set(compute_roles(ctx, item))
            for action, note, assumption in self.STARTS:
                for principal, patterns in ctx.candidates.principals_with(action).items():
                    if ctx.account(principal) != acct or (ctx.admin_of(principal, acct)
                                                          and not ctx.protected(acct)):
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


@register
class GlueJobRoleRule(EdgeRule):
    name = "glue-update-job-role"
    kinds = (EdgeKind.PASS_ROLE_TO_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        service = "glue.amazonaws.com"
        for item in ctx.index.compute.values():
            if item.kind != "glue_job":
                continue
            acct = ctx.account(item.arn)
            region = ctx.region(acct)
            own = set(compute_roles(ctx, item))
            for principal, patterns in ctx.candidates.principals_with("glue:UpdateJob").items():
                if ctx.account(principal) != acct or (ctx.admin_of(principal, acct) and not ctx.protected(acct)):
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
