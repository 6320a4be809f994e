"""The gate's checks: each takes one policy change and returns findings (data, no text for people).

Access questions go through the one engine (``iamgraph.eval.ask_policies``) in discovery mode, so a
condition nobody can know at check time is kept as a residual ("allowed if ...") instead of being
guessed either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from iamgraph.catalog import AccessLevel, ActionCatalog, get_catalog
from iamgraph.check.types import Finding, Location, PolicyChange, PolicyDoc, PolicyKind, Rule, Severity
from iamgraph.errors import IamGraphError
from iamgraph.eval import Mode, ask_policies, named_policy
from iamgraph.eval.types import Decision, NamedPolicy, PolicyType
from iamgraph.graph.rules.admin import ADMIN_PROBES
from iamgraph.model.policy import Policy

# Keys that, when every way to an allow requires them, pin a Principal "*" statement to known
# callers (an organization, an account, a source resource), so it is not open to the world.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
PINNING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:userid",
        "kms:CallerAccount",
    )
)

# Escalation combinations without a graph: each set of actions on any resource lets a principal
# grant itself more. Source: Rhino Security Labs, "AWS IAM Privilege Escalation – Methods and
# Mitigations" (https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/).
ESCALATION_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("create a new default version of a managed policy", ("iam:CreatePolicyVersion",)),
    ("switch a managed policy's default version", ("iam:SetDefaultPolicyVersion",)),
    ("attach a managed policy to a user", ("iam:AttachUserPolicy",)),
    ("attach a managed policy to a group", ("iam:AttachGroupPolicy",)),
    ("attach a managed policy to a role", ("iam:AttachRolePolicy",)),
    ("write a user's inline policy", ("iam:PutUserPolicy",)),
    ("write a group's inline policy", ("iam:PutGroupPolicy",)),
    ("write a role's inline policy", ("iam:PutRolePolicy",)),
    ("add a user to a group", ("iam:AddUserToGroup",)),
    ("create access keys for another user", ("iam:CreateAccessKey",)),
    ("create a console password for a user", ("iam:CreateLoginProfile",)),
    ("change a user's console password", ("iam:UpdateLoginProfile",)),
    ("rewrite a role's trust policy and assume it", ("iam:UpdateAssumeRolePolicy", "sts:AssumeRole")),
    ("pass a role to a new EC2 instance", ("iam:PassRole", "ec2:RunInstances")),
    (
        "pass a role to a new Lambda function and run it",
        ("iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"),
    ),
    ("pass a role to a CloudFormation stack", ("iam:PassRole", "cloudformation:CreateStack")),
    ("pass a role to a Glue development endpoint", ("iam:PassRole", "glue:CreateDevEndpoint")),
    ("replace the code of an existing Lambda function", ("lambda:UpdateFunctionCode",)),
)

_OTHER_USER = frozenset({"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"})

_LEVEL_SEVERITY = {
    AccessLevel.PERMISSIONS_MANAGEMENT: Severity.HIGH,
    AccessLevel.WRITE: Severity.MEDIUM,
    AccessLevel.TAGGING: Severity.LOW,
    AccessLevel.READ: Severity.LOW,
    AccessLevel.LIST: Severity.LOW,
}
_PROBE_ROLE = "iamgraph-check-probe"
_MAX_DETAIL = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckContext:
    """What the checks know beyond the change itself."""

    own_accounts: frozenset[str] = frozenset()
    """Accounts that are "ours" (config, snapshot); others are cross-account."""
    region: str = "us-east-1"
    managed_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Policy ARN -> default version document (snapshot, or moto's copy of AWS managed ones)."""
    sod_rules: tuple[Any, ...] = ()
    lint: bool = True


def run_checks(change: PolicyChange, ctx: CheckContext) -> list[Finding]:
    after = change.after
    out: list[Finding] = []
    for side in (change.before, after):
        if side is not None and side.unknowns:
            sev = Severity.MEDIUM if side.document is None else Severity.INFO
            what = "could not be evaluated" if side.document is None else "has values not known offline"
            out.append(
                Finding(
                    rule=Rule.UNKNOWN,
                    severity=sev,
                    subject=change.subject,
                    message=f"the {'new' if side is after else 'old'} policy {what}: "
                    + "; ".join(side.unknowns),
                    location=side.location,
                    details={"unknowns": list(side.unknowns)},
                )
            )
    if after is None:
        return out  # A deletion removes access; nothing it adds can be judged.
    if change.kind is PolicyKind.ATTACHMENT:
        return out + _attachment(change, after, ctx)
    if after.document is None:
        return out
    before_doc = change.before.document if change.before is not None else None
    try:
        if change.kind is PolicyKind.IDENTITY:
            out += _identity(change, before_doc, after, ctx)
        else:
            out += _resource(change, before_doc, after, ctx)
    except IamGraphError as exc:
        out.append(
            Finding(
                rule=Rule.UNKNOWN,
                severity=Severity.MEDIUM,
                subject=change.subject,
                message=f"the policy could not be evaluated: {exc}",
                location=after.location,
            )
        )
    return out


# -- identity policies ---------------------------------------------------------------------------


def _identity(
    change: PolicyChange, before: dict[str, Any] | None, after: PolicyDoc, ctx: CheckContext
) -> list[Finding]:
    assert after.document is not None
    cat = get_catalog()
    owner = change.owner_account or min(ctx.own_accounts, default="000000000000")
    principal = _identity_probe(change, owner)
    username = principal.rsplit("/", 1)[-1] if ":user/" in principal else None
    new_np = named_policy(after.document, f"{change.subject} (after)", PolicyType.IDENTITY)
    old_np = named_policy(before, f"{change.subject} (before)", PolicyType.IDENTITY) if before else None
    out: list[Finding] = []

    def decide(np: NamedPolicy | None, action: str, resource: str) -> Decision | None:
        if np is None:
            return None
        # The identity policy alone is the question: the resource is taken to be in the
        # caller's account, where no resource policy is needed.
        return ask_policies(principal, action, resource, identity=(np,), resource_account=owner,
                            mode=Mode.DISCOVERY)

    # New access: every catalog action the new policy's Allow statements name, on each resource
    # they name, that the old policy did not allow.
    new_pairs: list[tuple[str, str, Decision]] = []
    for action, resources in _allow_targets(new_np.policy, cat, username=username).items():
        for resource in resources:
            d = decide(new_np, action, resource)
            if d is None or not d.possible:
                continue
            old = decide(old_np, action, resource)
            if old is not None and old.possible:
                continue
            new_pairs.append((action, resource, d))
    if new_pairs:
        levels: dict[str, int] = {}
        worst = Severity.LOW
        for action, _, _ in new_pairs:
            lvl = cat.access_level(action)
            levels[str(lvl) if lvl else "unknown"] = levels.get(str(lvl) if lvl else "unknown", 0) + 1
            if lvl is not None:
                worst = max(worst, _LEVEL_SEVERITY[lvl])
        actions = sorted({a for a, _, _ in new_pairs})
        conditional = sum(1 for *_, d in new_pairs if not d.allowed)
        summary = ", ".join(f"{n} {lvl}" for lvl, n in sorted(levels.items()))
        msg = f"grants {len(actions)} action(s) the old policy did not ({summary})"
        if conditional:
            msg += f"; {conditional} of the grants depend on conditions"
        out.append(
            Finding(
                rule=Rule.NEW_ACCESS,
                severity=worst,
                subject=change.subject,
                message=msg,
                location=_stmt_location(after, _first_reason(new_pairs[0][2])),
                details={
                    "new": [
                        {"action": a, "resource": r, "decision": d.decision.value}
                        for a, r, d in new_pairs[:_MAX_DETAIL]
                    ],
                    "count": len(new_pairs),
                    "attached_to": list(change.attached_to),
                },
            )
        )

    # Admin-equivalent: allowed every probe action on "*" (the graph's admin probe set).
    def admin(np: NamedPolicy | None) -> tuple[bool, bool]:
        if np is None:
            return False, False
        ds = [decide(np, a, "*") for a in ADMIN_PROBES]
        return all(d is not None and d.allowed for d in ds), all(d is not None and d.possible for d in ds)

    new_def, new_pos = admin(new_np)
    old_def, old_pos = admin(old_np)
    if (new_pos and not old_pos) or (new_def and not old_def):
        d0 = decide(new_np, ADMIN_PROBES[0], "*")
        out.append(
            Finding(
                rule=Rule.ADMIN,
                severity=Severity.CRITICAL if new_def else Severity.HIGH,
                subject=change.subject,
                message=(
                    "grants administrator-equivalent access (every admin probe action on every resource)"
                    + ("" if new_def else ", if its conditions hold")
                ),
                location=_stmt_location(after, _first_reason(d0) if d0 else None),
                details={"probes": list(ADMIN_PROBES), "attached_to": list(change.attached_to)},
            )
        )
    if not new_pos:
        # An admin-equivalent grant already says all of these; listing them would bury it.
        out += _escalation(change, after, old_np, new_np, decide, cat, principal)
        out += _wildcard_write(change, old_np, new_np, after, cat)
        out += _sod(change, old_np, new_np, owner, ctx, principal)
    if ctx.lint:
        out += _lint(change, before, after)
    return out


Decide = Callable[[NamedPolicy | None, str, str], Decision | None]


def _escalation(
    change: PolicyChange,
    after: PolicyDoc,
    old_np: NamedPolicy | None,
    new_np: NamedPolicy,
    decide: Decide,
    cat: ActionCatalog,
    caller: str,
) -> list[Finding]:
    username = caller.rsplit("/", 1)[-1] if ":user/" in caller else None
    targets = _allow_targets(new_np.policy, cat, username=username)

    def holds(np: NamedPolicy | None, actions: tuple[str, ...]) -> Decision | None:
        """The first action's decision when every action is possible on some resource it names."""
        if np is None:
            return None
        first: Decision | None = None
        for a in actions:
            # Keys and passwords for oneself are not an escalation: the method needs another user.
            resources = [r for r in targets.get(a, ("*",)) if not (a in _OTHER_USER and r == caller)]
            hit = next(
                (d for r in resources if (d := decide(np, a, r)) is not None and d.possible),
                None,
            )
            if hit is None:
                return None
            first = first or hit
        return first

    found: list[tuple[str, tuple[str, ...], Decision]] = []
    for label, actions in ESCALATION_SETS:
        now = holds(new_np, actions)
        if now is None or holds(old_np, actions) is not None:
            continue
        found.append((label, actions, now))
    if not found:
        return []
    # One finding per change: a broad IAM grant opens a dozen methods at once.
    labels = [f"{label} ({' + '.join(actions)})" for label, actions, _ in found]
    shown = "; ".join(labels[:3]) + (f"; and {len(labels) - 3} more" if len(labels) > 3 else "")
    return [
        Finding(
            rule=Rule.PRIVESC,
            severity=Severity.HIGH,
            subject=change.subject,
            message=f"allows {len(found)} known privilege-escalation method(s): {shown}",
            location=_stmt_location(after, _first_reason(found[0][2])),
            details={
                "actions": sorted({a for _, actions, _ in found for a in actions}),
                "methods": [
                    {"method": label, "actions": list(actions), "definite": d.allowed}
                    for label, actions, d in found
                ],
            },
        )
    ]


def _wildcard_write(
    change: PolicyChange, old_np: NamedPolicy | None, new_np: NamedPolicy, after: PolicyDoc, cat: ActionCatalog
) -> list[Finding]:
    """Write / Permissions management actions on Resource "*" where the action supports narrower ARNs."""

    def wild(np: NamedPolicy | None) -> dict[str, int]:
        found: dict[str, int] = {}
        for st in np.policy.statements if np is not None else ():
            if not st.is_allow or "*" not in (st.resource or ()):
                continue
            for action in cat.statement_actions(st):
                info = cat.action(action)
                # An action with no resource types only accepts "*" (no resource-level permissions).
                if info is None or not info.resource_types:
                    continue
                if info.access_level in (AccessLevel.WRITE, AccessLevel.PERMISSIONS_MANAGEMENT):
                    found.setdefault(action, st.index)
        return found

    now, old = wild(new_np), wild(old_np)
    fresh = {a: i for a, i in now.items() if a not in old}
    if not fresh:
        return []
    pm = sorted(a for a in fresh if cat.access_level(a) is AccessLevel.PERMISSIONS_MANAGEMENT)
    first = min(fresh.values())
    return [
        Finding(
            rule=Rule.WILDCARD_RESOURCE,
            severity=Severity.HIGH if pm else Severity.MEDIUM,
            subject=change.subject,
            message=(
                f'allows {len(fresh)} Write/Permissions management action(s) on Resource "*" that support '
                f"resource-level permissions ({len(pm)} Permissions management)"
            ),
            location=_stmt_location(after, first),
            details={
                "actions": sorted(fresh)[:_MAX_DETAIL],
                "count": len(fresh),
                "permissions_management": pm[:20],
            },
        )
    ]


def _sod(
    change: PolicyChange,
    old_np: NamedPolicy | None,
    new_np: NamedPolicy,
    owner: str,
    ctx: CheckContext,
    principal: str,
) -> list[Finding]:
    out = []

    def holds(np: NamedPolicy | None, cap: Any) -> Decision | None:
        if np is None:
            return None
        resources = [
            r.replace("{account}", owner).replace("{region}", ctx.region) for r in cap.resources
        ] or ["*"]
        for action in cap.actions:
            for resource in resources:
                d = ask_policies(principal, action, resource, identity=(np,), resource_account=owner,
                                 context=dict(cap.context), mode=Mode.DISCOVERY)
                if d.possible:
                    return d
        return None

    for rule in ctx.sod_rules:
        if rule.scope != "principal":
            continue
        now = [holds(new_np, c) for c in rule.capabilities]
        if not all(now):
            continue
        if all(holds(old_np, c) for c in rule.capabilities):
            continue
        sev = Severity.parse(rule.severity) if rule.severity else Severity.HIGH
        out.append(
            Finding(
                rule=Rule.SOD,
                severity=sev,
                subject=change.subject,
                message=f"creates separation-of-duties conflict {rule.id}: {rule.title}",
                location=change.after.location if change.after else Location(file="?"),
                details={"sod_rule": rule.id, "capabilities": [c.name for c in rule.capabilities]},
            )
        )
    return out


def _lint(change: PolicyChange, before: dict[str, Any] | None, after: PolicyDoc) -> list[Finding]:
    from iamgraph.lint import LintSeverity, lint_policy, new_findings

    sev = {
        LintSeverity.CRITICAL: Severity.CRITICAL,
        LintSeverity.HIGH: Severity.HIGH,
        LintSeverity.MEDIUM: Severity.MEDIUM,
        LintSeverity.LOW: Severity.LOW,
        LintSeverity.INFO: Severity.INFO,
        LintSeverity.MUTE: Severity.INFO,
    }
    assert after.document is not None
    text = json.dumps(after.document, indent=2)
    found = new_findings(before, text) if before is not None else lint_policy(text)
    return [
        Finding(
            rule=Rule.LINT,
            severity=sev[f.severity],
            subject=change.subject,
            message=f"parliament {f.issue}: {f.title}" + (f" ({f.location})" if f.location else ""),
            location=after.location,
            details={"issue": f.issue, "detail": f.detail, "location": f.location},
        )
        for f in found
        # A placeholder for a value not known offline is not the author's mistake; IG009 reports it.
        if f.severity is not LintSeverity.MUTE and "{{unresolved" not in f.location + f.detail
    ]


def _attachment(change: PolicyChange, after: PolicyDoc, ctx: CheckContext) -> list[Finding]:
    arn = change.resource_arn or ""
    doc = ctx.managed_policies.get(arn)
    if doc is None:
        if arn.startswith("(policy created by"):
            return []  # that policy is a change of its own in the same input, judged there
        return [
            Finding(
                rule=Rule.UNKNOWN,
                severity=Severity.MEDIUM,
                subject=change.subject,
                message=f"attaches {arn or 'a policy'} whose document is not known here (give --snapshot)",
                location=after.location,
            )
        ]
    inner = PolicyChange(
        subject=change.subject,
        kind=PolicyKind.IDENTITY,
        resource_type=change.resource_type,
        before=None,
        after=PolicyDoc(document=doc, location=after.location),
        owner_account=change.owner_account,
        attached_to=change.attached_to,
    )
    ctx_nolint = CheckContext(
        own_accounts=ctx.own_accounts,
        region=ctx.region,
        managed_policies={},
        sod_rules=ctx.sod_rules,
        lint=False,
    )
    return _identity(inner, None, inner.after, ctx_nolint)  # type: ignore[arg-type]


# -- resource and trust policies -------------------------------------------------------------------


def _resource(
    change: PolicyChange, before: dict[str, Any] | None, after: PolicyDoc, ctx: CheckContext
) -> list[Finding]:
    assert after.document is not None
    cat = get_catalog()
    owner_known = change.owner_account is not None or bool(ctx.own_accounts)
    owner = change.owner_account or min(ctx.own_accounts, default="000000000000")
    ours = set(ctx.own_accounts) | {owner}
    new_np = named_policy(after.document, f"{change.subject} (after)", PolicyType.RESOURCE)
    old_np = named_policy(before, f"{change.subject} (before)", PolicyType.RESOURCE) if before else None
    named = _named_principals(new_np.policy)
    stranger = next(
        a for a in (f"{n:012d}" for n in range(999999999999, 0, -1)) if a not in named["accounts"]
    )
    probes: list[tuple[str, str]] = [("anonymous", "public"), (_probe(stranger), "public")]
    # A probe stands for "some principal of this account"; findings name the account as a policy does
    # (its root ARN), never the probe's made-up name.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts
    account_of_probe = {_probe(acct): acct for acct in named["accounts"]}
    for acct in sorted(named["accounts"]):
        probes.append((_probe(acct), "own" if acct in ours else "cross"))
    for arn in sorted(named["arns"]):
        acct = arn.split(":")[4]
        probes.append((arn, "own" if acct in ours else "cross"))
    if change.kind is PolicyKind.TRUST:
        probes.extend((f, "federated") for f in sorted(named["federated"]))
    resources = {change.resource_arn} if change.resource_arn else set()
    if change.kind is PolicyKind.TRUST and not resources:
        resources = {f"arn:aws:iam::{owner}:role/{_PROBE_ROLE}-target"}
    targets = _allow_targets(new_np.policy, cat, default_resources=resources)
    allow_all = named_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        "iamgraph check: caller's own identity policy (assumed to allow)",
        PolicyType.IDENTITY,
    )

    def decide(np: NamedPolicy | None, principal: str, action: str, resource: str) -> Decision | None:
        if np is None:
            return None
        # A caller from another account also needs its own identity policy to allow; assume it does,
        # so the answer is what this resource policy opens up.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
        parts = principal.split(":")
        provider = len(parts) > 5 and parts[5].startswith(("oidc-provider/", "saml-provider/"))
        other = len(parts) > 5 and not provider and parts[4] != owner
        return ask_policies(principal, action, resource, identity=(allow_all,) if other else (),
                            resource_policy=np, resource_account=owner, mode=Mode.DISCOVERY)

    out: list[Finding] = []
    anonymous_gained = False
    for principal, scope in probes:
        gained: list[tuple[str, str, Decision]] = []
        for action, rs in targets.items():
            for r in rs:
                d = decide(new_np, principal, action, r)
                if d is None or not d.possible:
                    continue
                old = decide(old_np, principal, action, r)
                if old is not None and old.possible:
                    continue
                gained.append((action, r, d))
        if not gained:
            continue
        if scope == "public" and principal != "anonymous" and anonymous_gained:
            continue  # anyone includes every account; one finding says it
        anonymous_gained = anonymous_gained or principal == "anonymous"
        actions = sorted({a for a, _, _ in gained})
        definite = any(d.allowed for *_, d in gained)
        pinned = not definite and all(_pinned(d) for *_, d in gained)
        acct_probe = account_of_probe.get(principal)
        if principal == "anonymous":
            who, shown = "anyone (anonymous callers)", principal
        elif scope == "public":
            who, shown = "any AWS account", "*"
        elif acct_probe is not None:
            who, shown = f"account {acct_probe} (any principal its own policies allow)", f"arn:aws:iam::{acct_probe}:root"
        else:
            who, shown = principal, principal
        detail = {
            "principal": shown,
            "actions": actions[:_MAX_DETAIL],
            "count": len(actions),
            "definite": definite,
            "conditions": _conditions(gained[0][2]),
        }
        loc = _stmt_location(after, _first_reason(gained[0][2]))
        if scope == "public":
            sev = Severity.CRITICAL if definite else (Severity.MEDIUM if pinned else Severity.HIGH)
            tail = (
                ""
                if definite
                else (
                    " if its conditions hold (they pin the caller: org, account or source)"
                    if pinned
                    else " if its conditions hold"
                )
            )
            out.append(
                Finding(
                    rule=Rule.PUBLIC,
                    severity=sev,
                    subject=change.subject,
                    message=f"opens {len(actions)} action(s) to {who}{tail}",
                    location=loc,
                    details=detail,
                )
            )
        elif scope == "federated":
            out.append(_federated_finding(change, principal, actions, gained, definite, loc, detail))
        elif scope == "cross":
            note = "" if owner_known else " (the owner account is not known: configure check.accounts)"
            out.append(
                Finding(
                    rule=Rule.CROSS_ACCOUNT,
                    severity=Severity.MEDIUM,
                    subject=change.subject,
                    message=f"grants {len(actions)} action(s) to {who}, another account{note}",
                    location=loc,
                    details=detail,
                )
            )
        else:
            out.append(
                Finding(
                    rule=Rule.NEW_ACCESS,
                    severity=Severity.LOW,
                    subject=change.subject,
                    message=f"grants {len(actions)} new action(s) to {who}",
                    location=loc,
                    details=detail,
                )
            )
    return out


def _subject_pinned(d: Decision) -> bool:
    """Every way in requires a token subject: ``<provider>:sub``, or Cognito's identity pool ``:aud``.

    GitHub Actions and other shared OIDC providers issue tokens to every customer; without a
    condition on ``sub`` any of their workflows can assume the role. Cognito identity pools are
    pinned by ``cognito-identity.amazonaws.com:aud``.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html#idp_oidc_Create_GitHub
    """
    return bool(d.conditions) and all(
        any(
            not c.negated
            and (c.key.lower().endswith(":sub") or c.key.lower() == "cognito-identity.amazonaws.com:aud")
            for c in conj
        )
        for conj in d.conditions
    )


def _federated_finding(
    change: PolicyChange,
    provider: str,
    actions: list[str],
    gained: list[tuple[str, str, Decision]],
    definite: bool,
    loc: Location,
    detail: dict[str, Any],
) -> Finding:
    # A SAML provider is the organisation's own identity provider: its users are not the public.
    saml = ":saml-provider/" in provider
    if saml or all(_subject_pinned(d) for *_, d in gained):
        return Finding(
            rule=Rule.NEW_ACCESS,
            severity=Severity.LOW,
            subject=change.subject,
            message=f"lets identities of {provider} assume the role ({', '.join(actions)})",
            location=loc,
            details=detail,
        )
    return Finding(
        rule=Rule.PUBLIC,
        severity=Severity.HIGH,
        subject=change.subject,
        message=(
            f"lets any identity of {provider} assume the role: no condition pins the token subject (sub)"
            + ("" if definite else ", whatever the other conditions")
        ),
        location=loc,
        details=detail,
    )


def _probe(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{_PROBE_ROLE}"


def _named_principals(policy: Policy) -> dict[str, set[str]]:
    accounts: set[str] = set()
    arns: set[str] = set()
    federated: set[str] = set()
    for st in policy.statements:
        p = st.principal
        if p is None:
            continue
        federated.update(v for v in p.federated if v)
        for v in p.aws:
            if v == "*":
                continue
            if v.isdigit() and len(v) == 12:
                accounts.add(v)
            elif v.startswith("arn:") and v.count(":") >= 5:
                acct = v.split(":")[4]
                if v.endswith(":root"):
                    accounts.add(acct)
                elif acct.isdigit():
                    arns.add(v)
    return {"accounts": accounts, "arns": arns, "federated": federated}


def _pinned(d: Decision) -> bool:
    return bool(d.conditions) and all(
        any(c.key.lower() in PINNING_KEYS and not c.negated for c in conj) for conj in d.conditions
    )


def _conditions(d: Decision) -> list[list[str]]:
    return [
        [f"{'not ' if c.negated else ''}{c.operator} {c.key} {list(c.values)}" for c in conj]
        for conj in d.conditions
    ]


# -- shared helpers -----------------------------------------------------------------------------------


def _identity_probe(change: PolicyChange, owner: str) -> str:
    """The caller to ask about: the principal the policy is attached to when the input names it (a user's
    policy may use ${aws:username}, which a role never has), else a stand-in role. A group's policy is
    asked for a member user."""
    for ref in change.attached_to:
        kind, _, name = ref.partition("/")
        if not name or "{{" in name or "/" in name:
            continue
        if kind == "role":
            return f"arn:aws:iam::{owner}:role/{name}"
        if kind == "user":
            return f"arn:aws:iam::{owner}:user/{name}"
        if kind == "group":
            return f"arn:aws:iam::{owner}:user/iamgraph-check-member-of-{name}"
    return f"arn:aws:iam::{owner}:role/{_PROBE_ROLE}"


_VAR = re.compile(r"\$\{([^}]*)\}")


def _fill_vars(resource: str, username: str | None) -> str:
    """A Resource entry with policy variables, as a concrete resource to ask about.

    ``${aws:username}`` is the probe user's name; other variables get a made-up value, which the
    engine (discovery mode) then only matches under a residual condition on that key.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
    """

    def repl(m: re.Match[str]) -> str:
        key = m.group(1).split(",", 1)[0].strip()
        if key.lower() == "aws:username" and username:
            return username
        if key in ("*", "?", "$"):
            return key
        return "iamgraph-variable"

    return _VAR.sub(repl, resource)


def _allow_targets(
    policy: Policy,
    cat: ActionCatalog,
    *,
    default_resources: Iterable[str] = (),
    username: str | None = None,
) -> dict[str, tuple[str, ...]]:
    """action -> the resources to ask about: those the Allow statements naming it list."""
    out: dict[str, set[str]] = {}
    defaults = set(default_resources)
    for st in policy.statements:
        if not st.is_allow:
            continue
        if st.not_resource is not None:
            resources = {"*"} | defaults
        else:
            resources = {_fill_vars(r, username) for r in st.resource or ()} | defaults
        if not resources:
            resources = {"*"}
        for action in cat.statement_actions(st):
            out.setdefault(action, set()).update(resources)
    return {a: tuple(sorted(rs)) for a, rs in sorted(out.items())}


def _first_reason(d: Decision | None) -> int | None:
    if d is None:
        return None
    for ref in d.reasons:
        if ref.effect == "Allow":
            return ref.statement_index
    return d.reasons[0].statement_index if d.reasons else None


def _stmt_location(doc: PolicyDoc, index: int | None) -> Location:
    loc = doc.location
    if index is not None and index < len(doc.statement_lines) and doc.statement_lines[index] is not None:
        return Location(file=loc.file, line=doc.statement_lines[index], path=f"{loc.path}.Statement[{index}]")
    return loc
