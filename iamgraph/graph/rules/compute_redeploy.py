"""Existing compute that runs code as a role chosen elsewhere: launch templates and StackSets.

Launch templates (pathfinding.cloud ec2-005): a new template version with the caller's user data
runs when an Auto Scaling group next launches from it. A group asking for ``$Latest`` takes the new
version at once; ``$Default`` needs the version made the default (ec2:ModifyLaunchTemplate). The
version may name any instance profile: EC2 does not restrict what a launch template version
specifies, and the group's service-linked role passes the role at launch
(AutoScalingServiceRolePolicy allows ``iam:PassRole`` to ``ec2.amazonaws.com*``), so the target is
any role EC2 may assume. A group pinned to a version number must be pointed at the new one, and
updating a group with a launch template checks the caller's ``ec2:RunInstances`` and ``iam:PassRole``.
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/permissions-for-launch-templates.html
https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AutoScalingServiceRolePolicy.html
https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-api-permissions.html

StackSets (pathfinding.cloud cloudformation-004): UpdateStackSet deploys the caller's template to
every stack instance. With self-managed permissions, CloudFormation uses the administration role
(passed by the caller) to assume the execution role in each target account, and the template runs
as that execution role. With service-managed permissions StackSets creates a ``stacksets-exec-*``
role with AdministratorAccess in each target account and uses it.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-prereqs-self-managed.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-custom-execution-role.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from iamgraph.eval.types import Decision
from iamgraph.graph.candidates import resource_matches
from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.base import EdgeRule, make_edge
from iamgraph.graph.rules.passrole import INSTANCE_PROFILE_STEPS, PASS_ROLE, PASSED_TO
from iamgraph.graph.types import Edge, EdgeKind, Reason
from iamgraph.snapshot.model import Compute

EC2 = "ec2.amazonaws.com"
LAUNCH_SOON = ("autoscaling:StartInstanceRefresh", "autoscaling:SetDesiredCapacity")
"""Calls that make the group launch an instance now (the edge is definite with one of them)."""
DEFAULT_ADMIN_ROLE = "AWSCloudFormationStackSetAdministrationRole"
DEFAULT_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"
SERVICE_MANAGED_PREFIX = "stacksets-exec-"


def _profile_roles(ctx: BuildContext, profile_arn: str | None) -> list[str]:
    if not profile_arn:
        return []
    return sorted(r.arn for r in ctx.index.roles.values() if profile_arn in r.instance_profiles)


def _all_possible(ctx: BuildContext, rule: str, principal: str,
                  steps: list[tuple[str, str, dict[str, Any] | None]]) -> list[Decision] | None:
    out: list[Decision] = []
    for action, resource, context in steps:
        d = ctx.possible(rule, principal, action, resource, context)
        if d is None:
            return None
        out.append(d)
    return out


def _callers(ctx: BuildContext, action: str, arn: str) -> list[str]:
    """Principals of the resource's account whose Allows could cover ``action`` on it.

    Admins of the account are kept: the rules skip them per target (``admin_of`` with the target),
    since a StackSet reaches roles of other accounts that no admin node covers.
    """
    acct = ctx.account(arn)
    return [p for p, patterns in ctx.principals_with_in(action, acct)
            if any(resource_matches(pat, arn) for pat in patterns)]


class LaunchTemplateRule(EdgeRule):
    name = "launch-template-version"
    kinds = (EdgeKind.TAKEOVER_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for item in ctx.index.compute.values():
            if item.kind != "ec2_launch_template" or not ctx.in_scope(ctx.account(item.arn)):
                continue  # callers and roles are of the template's account
            groups = [g for g in item.attributes.get("autoscaling_groups") or [] if isinstance(g, dict)]
            if not groups:
                continue  # nothing launches from it by itself: a new version would wait for someone's RunInstances
            for principal in _callers(ctx, "ec2:CreateLaunchTemplateVersion", item.arn):
                yield from self._for(ctx, principal, item, groups)

    def _for(self, ctx: BuildContext, principal: str, item: Compute, groups: list[dict[str, Any]]) -> Iterator[Edge]:
        acct = ctx.account(item.arn)
        region = item.region
        best: dict[str, Edge] = {}
        targets = _ec2_roles(ctx, self.name, acct)
        own = set(_profile_roles(ctx, item.instance_profile_arn))
        for group in groups:
            version = str(group.get("version") or "$Default")
            group_arn = str(group.get("arn") or f"arn:aws:autoscaling:{region}:{acct}:autoScalingGroup:*:"
                            f"autoScalingGroupName/{group.get('name', '*')}")
            steps: list[tuple[str, str, dict[str, Any] | None]] = [("ec2:CreateLaunchTemplateVersion", item.arn, None)]
            if version == "$Default":
                steps.append(("ec2:ModifyLaunchTemplate", item.arn, None))
            elif version != "$Latest":
                steps.append(("autoscaling:UpdateAutoScalingGroup", group_arn, None))
                steps.append(("ec2:RunInstances", f"arn:aws:ec2:{region}:{acct}:instance/*", None))
            ds = _all_possible(ctx, self.name, principal, steps)
            if ds is None:
                continue
            via = [a for a, _, _ in steps]
            assumptions: list[str] = []
            soon = next(((a, d) for a in LAUNCH_SOON
                         if (d := ctx.possible(self.name, principal, a, group_arn)) is not None), None)
            if soon is None:
                assumptions.append(f"the code runs when Auto Scaling group {group.get('name')} next launches "
                                   "an instance")
            else:
                via.append(soon[0])
                ds.append(soon[1])
            for role, trust in targets.items():
                if role == principal or ctx.admin_of(principal, acct, role):
                    continue
                extra: list[Decision] = [trust]
                more: list[str] = []
                if version not in ("$Default", "$Latest"):
                    # Pointing the group at a version: the caller's own PassRole is checked.
                    p = ctx.possible(self.name, principal, PASS_ROLE, role, {PASSED_TO: "ec2.amazonaws.com"})
                    if p is None:
                        continue
                    extra.append(p)
                    more.append(PASS_ROLE)
                if not ctx.index.roles[role].instance_profiles:
                    made = _all_possible(ctx, self.name, principal, [
                        (a, t.format(account=acct).replace("*", "iamgraph-new"), None)
                        for a, t in INSTANCE_PROFILE_STEPS])
                    if made is None:
                        continue
                    extra.extend(made)
                    more.extend(a for a, _ in INSTANCE_PROFILE_STEPS)
                edge = make_edge(
                    EdgeKind.TAKEOVER_COMPUTE, principal, role,
                    Reason(via=(*via, *more), target=item.arn, service=item.kind,
                           note="launch-template-new-version" if role in own else "launch-template-other-profile"),
                    *ds, *extra, assumptions=tuple(assumptions),
                )
                cur = best.get(role)
                if cur is None or (len(edge.assumptions), len(edge.conditions)) < (len(cur.assumptions),
                                                                                  len(cur.conditions)):
                    best[role] = edge
        yield from best.values()


def _ec2_roles(ctx: BuildContext, rule: str, account: str) -> dict[str, Decision]:
    """Roles of the account that EC2 may assume (trust decision): what a launch template may name."""
    table: dict[str, dict[str, Decision]] = ctx.cache.setdefault("ec2_roles", {})
    hit = table.get(account)
    if hit is None:
        hit = {}
        for role in ctx.candidates.principals_by_account.get(account, ()):
            if role not in ctx.index.roles:
                continue
            trusted = ctx.candidates.trust(role)
            if EC2 not in trusted.services and not trusted.everyone:
                continue
            d = ctx.as_outsider(rule, EC2, "sts:AssumeRole", role)
            if d is not None:
                hit[role] = d
        table[account] = hit
    return hit


STACKSETS_DELEGATE = "member.org.stacksets.cloudformation.amazonaws.com"
DELEGATED_ASSUMPTION = ("a delegated administrator's call (CallAs DELEGATED_ADMIN) is checked against its own "
                        "identity policies as if the StackSet were in its account (AWS does not document the "
                        "resource ARN of that check)")


def _delegated_callers(ctx: BuildContext, arn: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Principals of StackSets delegated administrator accounts whose Allows could cover UpdateStackSet.

    A delegated administrator manages the management account's service-managed StackSets with
    ``CallAs=DELEGATED_ADMIN``:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStackSet.html
    Each comes with the ARN its own policies are evaluated against (the StackSet's, in its account).
    """
    org = ctx.index.snapshot.organization
    if org is None:
        return []
    home = ctx.account(arn)
    delegates = {d.account_id for d in org.delegated_administrators
                 if d.service_principal == STACKSETS_DELEGATE and d.account_id != home}
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for principal, patterns in ctx.candidates.principals_with("cloudformation:UpdateStackSet").items():
        acct = ctx.account(principal)
        if acct not in delegates:
            continue
        local = arn.replace(f":{home}:", f":{acct}:", 1)
        if any(resource_matches(p, local) for p in patterns):
            out.append((principal, local, (DELEGATED_ASSUMPTION,)))
    return out


class StackSetRule(EdgeRule):
    name = "stackset-update"
    kinds = (EdgeKind.TAKEOVER_COMPUTE,)

    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        for item in ctx.index.compute.values():
            if item.kind != "cloudformation_stackset":
                continue
            targets = self._targets(ctx, item)
            if not targets:
                continue
            callers: list[tuple[str, str, tuple[str, ...]]] = [
                (p, item.arn, ()) for p in _callers(ctx, "cloudformation:UpdateStackSet", item.arn)]
            if not self._self_managed(item):
                callers.extend(_delegated_callers(ctx, item.arn))
            for principal, checked_arn, notes in callers:
                d = ctx.possible(self.name, principal, "cloudformation:UpdateStackSet", checked_arn)
                if d is None:
                    continue
                ds = [d]
                via = ["cloudformation:UpdateStackSet"]
                admin = self._admin_role(ctx, item)
                if self._self_managed(item) and admin is not None:
                    # The caller passes the administration role to CloudFormation.
                    p = ctx.possible(self.name, principal, PASS_ROLE, admin,
                                     {PASSED_TO: "cloudformation.amazonaws.com"})
                    if p is None:
                        continue
                    ds.append(p)
                    via.insert(0, PASS_ROLE)
                for role, link in targets:
                    if role == principal or ctx.admin_of(principal, ctx.account(role), role):
                        continue
                    yield make_edge(
                        EdgeKind.TAKEOVER_COMPUTE, principal, role,
                        Reason(via=tuple(via), target=item.arn, service=item.kind, note="cloudformation-stackset-update"),
                        *ds, *link, assumptions=notes,
                    )

    @staticmethod
    def _admin_role(ctx: BuildContext, item: Compute) -> str | None:
        if item.role_arn:
            return ctx.resolve_principal(item.role_arn) or item.role_arn
        found = ctx.index.role_by_name(ctx.account(item.arn), DEFAULT_ADMIN_ROLE)
        return found.arn if found is not None else None

    @staticmethod
    def _self_managed(item: Compute) -> bool:
        return str(item.attributes.get("permission_model") or "SELF_MANAGED") != "SERVICE_MANAGED"

    def _targets(self, ctx: BuildContext, item: Compute) -> list[tuple[str, list[Decision]]]:
        """Execution roles the template would run as, each with what lets CloudFormation reach it."""
        accounts = [str(a) for a in item.attributes.get("instance_accounts") or []]
        out: list[tuple[str, list[Decision]]] = []
        if not self._self_managed(item):
            for a in accounts:
                account = ctx.index.accounts.get(a)
                if account is None:
                    continue
                out.extend((r.arn, []) for r in account.roles if r.name.startswith(SERVICE_MANAGED_PREFIX))
            return out
        admin = self._admin_role(ctx, item)
        if admin is None or admin not in ctx.index.roles:
            return []
        trust = ctx.as_outsider(self.name, "cloudformation.amazonaws.com", "sts:AssumeRole", admin)
        if trust is None:
            return []
        name = str(item.attributes.get("execution_role_name") or DEFAULT_EXECUTION_ROLE)
        for a in accounts:
            found = ctx.index.role_by_name(a, name)
            if found is None:
                continue
            node = found.arn
            hop = ctx.possible(self.name, admin, "sts:AssumeRole", node)
            if hop is None:
                continue
            out.append((node, [trust, hop]))
        return out
