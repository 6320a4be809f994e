"""The access graph of a changed snapshot, reusing the base graph's engine decisions the change cannot touch.

A change (a grant, a removal, a trust edit: ``iamgraph.change``) alters a few entities of a snapshot. The
engine's answer to (principal, action, resource, context) reads only:

* the principal's policy set: its inline and attached policies, its groups' policies, its boundary (the
  principal's own record, its groups' records, the managed policies they name) and its account's SCPs;
* the principal's context: its tags, account and the organization;
* the resource's side: its resource-based policy (a role's trust policy for ``sts:`` calls), its tags,
  whether the snapshot holds it at all, and its account's RCPs.

So a decision is the same after the change when its principal's records and its resource's records are
unchanged and the organization (SCPs, RCPs, OU tree) is unchanged. ``rebuild`` runs every edge rule
again over the changed snapshot -- so the rules' own state (definite admins and the admin shortcut,
protected targets, creatable admins, candidate indexes, group members and policy holders) is computed
afresh and every cascade of the change is followed exactly as a full build follows it -- but answers
each engine question the base build already asked from the base build's cache, unless the question's
principal or resource is among those the change touches (``Touched``). Questions the base build never
asked, questions about touched principals or resources, and the rules' what-if questions (new
principals, policies added or removed along a path) go to the engine.

What the change touches is read from the two snapshots themselves (``touched``), not from the kind of
change, so a new kind of change cannot be missed: every user, role, group, managed policy and resource
whose record differs, appears or disappears is compared, and a difference anywhere else (accounts, the
organization, AWS managed policies, collection errors, account settings such as S3 Block Public Access)
makes ``touched`` answer None: the caller builds the graph in full. Identity Center data and activity are
not compared: no engine question reads them (a permission set reaches the engine as the role it becomes,
which the comparison sees), and the rule that reads Identity Center runs again like every rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iamgraph.graph.build import AccessGraph, build_graph
from iamgraph.graph.candidates import CandidateIndex
from iamgraph.graph.context import BuildContext
from iamgraph.graph.rules.identity_center import materialise
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Account, Snapshot

_PER_ARN = ("users", "groups", "roles", "policies", "resources", "compute")
"""Account collections compared entity by entity (each entity has an ``arn``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Touched:
    """What a change alters, as far as the engine can tell."""

    principals: frozenset[str]
    """Users and roles whose policy set or context may differ (their own record, a group they are or were
    in, a managed policy they hold or held through either)."""
    resources: frozenset[str]
    """ARNs whose resource-side facts may differ: every user, role, group, managed policy, resource and
    compute item whose record changed, appeared or disappeared."""


def touched(before: Snapshot, after: Snapshot) -> Touched | None:
    """What differs between two snapshots (both materialised), or None when it is more than entities.

    None means a difference the decisions of every principal may read (the organization and its SCPs or
    RCPs, an account added or removed or its settings, AWS managed policies, the partition); the graph
    must then be built in full.
    """
    if (before.partition != after.partition or before.organization != after.organization
            or before.aws_managed_policies != after.aws_managed_policies or before.errors != after.errors):
        return None
    old_accounts = {a.account_id: a for a in before.accounts}
    new_accounts = {a.account_id: a for a in after.accounts}
    if old_accounts.keys() != new_accounts.keys():
        return None
    resources: set[str] = set()
    changed_groups: set[str] = set()
    changed_policies: set[str] = set()
    changed_principals: set[str] = set()
    for aid, old in old_accounts.items():
        new = new_accounts[aid]
        if old is new:
            continue
        if _settings(old) != _settings(new):
            return None
        for name in _PER_ARN:
            old_items: list[Any] = getattr(old, name)
            new_items: list[Any] = getattr(new, name)
            if old_items == new_items:
                continue
            old_by = {e.arn: e for e in old_items}
            new_by = {e.arn: e for e in new_items}
            for arn in old_by.keys() | new_by.keys():
                if old_by.get(arn) != new_by.get(arn):
                    resources.add(arn)
                    if name in ("users", "roles"):
                        changed_principals.add(arn)
                    elif name == "groups":
                        changed_groups.add(arn)
                    elif name == "policies":
                        changed_policies.add(arn)
    principals = set(changed_principals)
    if changed_groups or changed_policies:
        # Who is or was in a changed group, or holds or held a changed managed policy (directly or
        # through a group): their policy sets may differ. Both sides are read, so a member who left
        # counts too.
        for snap in (before, after):
            principals.update(_holders(snap, changed_groups, changed_policies))
    return Touched(principals=frozenset(principals), resources=frozenset(resources))


def _settings(account: Account) -> dict[str, Any]:
    """Everything of an account but the per-entity collections."""
    return {k: v for k, v in account.__dict__.items() if k not in _PER_ARN}


def _holders(snap: Snapshot, groups: set[str], policies: set[str]) -> Iterable[str]:
    for acct in snap.accounts:
        group_arns = {g.name: g.arn for g in acct.groups}
        group_policies = {g.arn: set(g.attached_managed_policies) for g in acct.groups}
        for u in acct.users:
            mine = {group_arns[n] for n in u.groups if n in group_arns}
            held = set(u.attached_managed_policies).union(*(group_policies[g] for g in mine))
            if mine & groups or held & policies:
                yield u.arn
        for r in acct.roles:
            if policies.intersection(r.attached_managed_policies) or (r.permissions_boundary in policies):
                yield r.arn
        for u in acct.users:
            if u.permissions_boundary in policies:
                yield u.arn


def _stale(key: tuple[object, ...], touched_: Touched) -> bool:
    """Whether a cached decision of the base build may differ after the change."""
    if key and key[0] == "outsider":
        resource = key[3]
    elif key and key[0] == "what-if":
        if key[1] in touched_.principals:
            return True
        resource = key[3]
    else:
        if key[0] in touched_.principals:
            return True
        resource = key[2]
    if not isinstance(resource, str):
        return True
    if resource in touched_.resources:
        return True
    # An S3 object is decided with its bucket's policy and the bucket's tags' absence.
    return resource.startswith("arn:") and ":s3:::" in resource and resource.split("/", 1)[0] in touched_.resources


def rebuild(base: AccessGraph, snapshot: Snapshot, *, change: Touched | None = None) -> tuple[AccessGraph, bool]:
    """The access graph of ``snapshot`` (the base graph's snapshot with a change applied), and whether the
    base graph's decisions were reused (False: built in full, because the change reaches beyond entities).

    The result has exactly the edges and nodes ``build_graph(snapshot)`` gives (tests/change/
    test_incremental.py compares them). ``base`` is read, never changed.
    """
    ctx = base.ctx
    if not ctx.admin_shortcut or not ctx.memoise:
        return build_graph(snapshot, admin_shortcut=ctx.admin_shortcut, memoise=ctx.memoise), False
    if change is None:
        after, _ = materialise(snapshot)
        change = touched(ctx.index.snapshot, after)
    if change is None:
        return build_graph(snapshot), False
    found = change

    def seed(new: BuildContext) -> None:
        new.seed_decisions(ctx, lambda key: not _stale(key, found))

    def candidates(index: SnapshotIndex) -> CandidateIndex:
        # Every policy document whose record the change did not alter is taken parsed from the base build,
        # with what the base build found about the actions it covers.
        return CandidateIndex(index, seed=ctx.candidates, stale=found.resources)

    return build_graph(snapshot, prepare=seed, candidates=candidates), True
