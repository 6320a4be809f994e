"""A change set and how it is applied to a copy of a snapshot.

A grant is (who, what): an existing IAM user or role, a role to be created, or an Identity Center user or group
(who); an inline policy, an attached managed policy, a group membership or a permission set assignment (what).
``apply_grant`` returns the changed copy and what the subject gains; the base snapshot is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from iamgraph.errors import InputError, NotFoundError
from iamgraph.model.policy import parse_policy
from iamgraph.snapshot import Snapshot, SnapshotIndex
from iamgraph.snapshot.model import AccountAssignment, InlinePolicy, Role

DEFAULT_INLINE_NAME = "iamgraph-access-request"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExistingPrincipal:
    principal_arn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRole:
    account_id: str
    name: str
    trust_policy: dict[str, Any]
    path: str = "/"
    permissions_boundary: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityCenterPrincipal:
    id: str
    type: Literal["USER", "GROUP"]


Who = ExistingPrincipal | NewRole | IdentityCenterPrincipal


@dataclass(frozen=True, slots=True, kw_only=True)
class InlinePolicyGrant:
    policy_document: dict[str, Any]
    policy_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagedPolicyGrant:
    managed_policy_arn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupGrant:
    group_arn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionSetGrant:
    permission_set_arn: str
    account_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustPolicyEdit:
    """A role's trust policy replaced: who may assume it changes, its own permissions do not."""

    trust_policy: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRemoval:
    """A managed policy detached (its ARN) or an inline policy deleted (its name) from the principal."""

    policy: str


What = InlinePolicyGrant | ManagedPolicyGrant | GroupGrant | PermissionSetGrant | TrustPolicyEdit | PolicyRemoval


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    """What the requester says the access is for: the least-privilege alternative is scoped to it."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(slots=True)
class Applied:
    """The snapshot with the grant applied, and what the grant consists of."""

    snapshot: Snapshot
    subject: str
    """The IAM principal whose policies change (the role a permission set becomes, for Identity Center)."""
    graph_subject: str
    """The graph node whose escalations and SoD conflicts to compare (an Identity Center user or group node)."""
    exists_before: bool
    documents: list[tuple[str, dict[str, Any]]]
    """(policy id, document) the subject gains."""
    notes: list[str] = field(default_factory=list)


def _entity(snap: Snapshot, arn: str) -> Any:
    for acct in snap.accounts:
        for coll in (acct.users, acct.roles):
            for e in coll:
                if e.arn == arn:
                    return e
    return None


def _copy_for(base: Snapshot, account_id: str, subject: str | None) -> Snapshot:
    """A copy of ``base`` the grant can change without changing ``base``: copy-on-write of only what a grant
    to ``subject`` (or a new role) in ``account_id`` writes -- that account's user and role lists and the
    subject's own record. Everything else is shared with ``base`` (and read-only here), so the copy costs
    one record, not the organization, and ``iamgraph.graph.incremental.touched`` skips the other accounts
    by identity."""
    accounts = list(base.accounts)
    for i, acct in enumerate(accounts):
        if acct.account_id != account_id:
            continue
        users = [u.model_copy(deep=True) if u.arn == subject else u for u in acct.users]
        roles = [r.model_copy(deep=True) if r.arn == subject else r for r in acct.roles]
        accounts[i] = acct.model_copy(update={"users": users, "roles": roles})
    return base.model_copy(update={"accounts": accounts})


def apply_grant(base: Snapshot, index: SnapshotIndex, who: Who, what: What) -> Applied:
    """``base`` with the grant applied (a copy sharing all it does not change, ``_copy_for``); raises InputError / NotFoundError for a grant that cannot be."""
    if isinstance(who, IdentityCenterPrincipal):
        if not isinstance(what, PermissionSetGrant):
            raise InputError("an Identity Center user or group gets a permission set (what.permission_set_arn "
                             "and what.account_id)", location="what")
        return _apply_permission_set(base, index, who, what)
    if isinstance(what, PermissionSetGrant):
        raise InputError("a permission set is assigned to an Identity Center user or group (who.identity_center)",
                         location="what.permission_set_arn")
    if isinstance(who, NewRole):
        account_id = who.account_id
    else:
        account_id = index.account_of.get(who.principal_arn) or ""
    snap = _copy_for(base, account_id, who.principal_arn if isinstance(who, ExistingPrincipal) else None)
    if isinstance(who, NewRole):
        acct = snap.account(who.account_id)
        if acct is None:
            raise NotFoundError(f"the snapshot has no account {who.account_id}")
        if index.role_by_name(who.account_id, who.name) is not None:
            raise InputError(f"account {who.account_id} already has a role named {who.name}",
                             location="who.new_role.name")
        check_document(who.trust_policy, "who.new_role.trust_policy", trust=True)
        subject = f"arn:{snap.partition}:iam::{who.account_id}:role{who.path}{who.name}"
        acct.roles.append(Role(arn=subject, name=who.name, role_id="AROAIAMGRAPHREQUEST0", path=who.path,
                               trust_policy=who.trust_policy, permissions_boundary=who.permissions_boundary))
        exists_before = False
    else:
        subject = who.principal_arn
        if subject not in index.users and subject not in index.roles:
            raise NotFoundError(f"the snapshot has no IAM user or role {subject}")
        exists_before = True
    docs, notes = _grant_to(_entity(snap, subject), subject, index, what)
    return Applied(snapshot=snap, subject=subject, graph_subject=subject, exists_before=exists_before,
                   documents=docs, notes=notes)


def _grant_to(
    entity: Any, subject: str, index: SnapshotIndex, what: What
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    docs: list[tuple[str, dict[str, Any]]] = []
    notes: list[str] = []
    if isinstance(what, TrustPolicyEdit):
        if subject not in index.roles:
            raise InputError("only a role has a trust policy", location="what.trust_policy")
        check_document(what.trust_policy, "what.trust_policy", trust=True)
        entity.trust_policy = what.trust_policy
    elif isinstance(what, PolicyRemoval):
        removed: dict[str, Any] | None
        if what.policy in entity.attached_managed_policies:
            entity.attached_managed_policies.remove(what.policy)
            managed = index.policies.get(what.policy)
            removed = managed.default_document() if managed is not None else None
            pid = what.policy
        elif any(p.name == what.policy for p in entity.inline_policies):
            removed = next(p.document for p in entity.inline_policies if p.name == what.policy)
            entity.inline_policies[:] = [p for p in entity.inline_policies if p.name != what.policy]
            pid = f"{subject}:inline/{what.policy}"
        else:
            raise NotFoundError(f"{subject} has no attached managed policy or inline policy {what.policy}")
        denies = _deny_statements(removed)
        if denies:
            # Removing a policy gives access only through the Deny statements it held: their actions and
            # resources are the pairs to ask the engine about, before and after.
            docs.append((pid, {"Version": "2012-10-17", "Statement": denies}))
    elif isinstance(what, InlinePolicyGrant):
        check_document(what.policy_document, "what.policy_document")
        name = what.policy_name or DEFAULT_INLINE_NAME
        if any(p.name == name for p in entity.inline_policies):
            raise InputError(f"{subject} already has an inline policy named {name}; choose another policy_name",
                             location="what.policy_name")
        entity.inline_policies.append(InlinePolicy(name=name, document=what.policy_document))
        docs.append((f"{subject}:inline/{name}", what.policy_document))
    elif isinstance(what, ManagedPolicyGrant):
        arn = what.managed_policy_arn
        pol = index.policies.get(arn)
        if pol is None:
            raise NotFoundError(f"the snapshot has no managed policy {arn}")
        doc = pol.default_document()
        if doc is None:
            raise InputError(f"managed policy {arn} has no default version in the snapshot",
                             location="what.managed_policy_arn")
        if arn in entity.attached_managed_policies:
            notes.append(f"{arn} is already attached to {subject}")
        else:
            entity.attached_managed_policies.append(arn)
        docs.append((arn, doc))
    else:
        assert isinstance(what, GroupGrant)
        docs.extend(_join_group(entity, subject, index, what.group_arn, notes))
    return docs, notes


def _join_group(
    entity: Any, subject: str, index: SnapshotIndex, arn: str, notes: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    group = index.groups.get(arn)
    if group is None:
        raise NotFoundError(f"the snapshot has no group {arn}")
    if subject not in index.users:
        raise InputError("only IAM users join groups", location="what.group_arn")
    if index.account_of.get(arn) != index.account_of.get(subject):
        raise InputError("a user can only join a group of its own account", location="what.group_arn")
    if group.name in entity.groups:
        notes.append(f"{subject} is already in {group.name}")
    else:
        entity.groups.append(group.name)
    docs = [(f"{arn}:inline/{p.name}", p.document) for p in group.inline_policies]
    for parn in group.attached_managed_policies:
        mp = index.policies.get(parn)
        doc = mp.default_document() if mp is not None else None
        if doc is not None:
            docs.append((parn, doc))
        else:
            notes.append(f"group policy {parn} is not in the snapshot; its access is not analysed")
    return docs


def _apply_permission_set(
    base: Snapshot, index: SnapshotIndex, who: IdentityCenterPrincipal, what: PermissionSetGrant
) -> Applied:
    from iamgraph.graph.rules.identity_center import materialise, role_prefix, sso_group_node, sso_user_node

    if base.identity_center is None:
        raise NotFoundError("the snapshot has no Identity Center data")
    # Copy-on-write: only the assignment list is written below; the rest is shared with ``base``.
    ic = base.identity_center.model_copy(update={"assignments": list(base.identity_center.assignments)})
    snap = base.model_copy(update={"identity_center": ic})
    pid, ptype = who.id, who.type
    known = {u.user_id for u in ic.users} if ptype == "USER" else {g.group_id for g in ic.groups}
    if pid not in known:
        raise NotFoundError(f"the snapshot has no Identity Center {ptype.lower()} {pid}")
    ps = next((p for p in ic.permission_sets if p.arn == what.permission_set_arn), None)
    if ps is None:
        raise NotFoundError(f"the snapshot has no permission set {what.permission_set_arn}")
    if snap.account(what.account_id) is None:
        raise NotFoundError(f"the snapshot has no account {what.account_id}")
    notes: list[str] = []
    asg = AccountAssignment(account_id=what.account_id, permission_set_arn=ps.arn, principal_type=ptype,
                            principal_id=pid)
    if asg in ic.assignments:
        notes.append("this permission set is already assigned to this principal in this account")
    else:
        ic.assignments.append(asg)
    materialised, more = materialise(snap)
    notes.extend(more)
    acct = materialised.account(what.account_id)
    role = next((r for r in (acct.roles if acct else []) if r.name.startswith(role_prefix(ps))), None)
    if role is None:
        raise InputError(f"permission set {ps.name} cannot be provisioned in {what.account_id}: "
                         + "; ".join(more), location="what.permission_set_arn")
    node = (sso_user_node if ptype == "USER" else sso_group_node)(ic.identity_store_id, pid)
    idx = SnapshotIndex(materialised)
    docs = [(f"{role.arn}:inline/{p.name}", p.document) for p in role.inline_policies]
    for parn in role.attached_managed_policies:
        mp = idx.policies.get(parn)
        d = mp.default_document() if mp is not None else None
        if d is not None:
            docs.append((parn, d))
    base_acct = base.account(what.account_id) or acct
    base_has_role = role.arn in index.roles or any(
        r.name.startswith(role_prefix(ps)) for r in (base_acct.roles if base_acct is not None else []))
    notes.append("new access is what the permission set's role can do in the account; access the principal "
                 "already has there through other permission sets is not subtracted")
    # The materialised copy: the engine must see the role the set becomes (materialise is idempotent, so the
    # graph build that materialises again adds nothing).
    assigned_before = asg in (base.identity_center.assignments if base.identity_center else [])
    return Applied(snapshot=materialised, subject=role.arn, graph_subject=node,
                   exists_before=base_has_role and assigned_before, documents=docs, notes=notes)


def _deny_statements(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Deny statements of a document, as Allow statements (what removing them could open)."""
    if doc is None:
        return []
    return [{**st.to_json(), "Effect": "Allow"} for st in parse_policy(doc, source="removed policy").statements
            if not st.is_allow]


def check_document(doc: dict[str, Any], where: str, *, trust: bool = False) -> None:
    """A policy document the grant carries must parse (strict: unknown keys and values are errors)."""
    try:
        parse_policy(doc, source=where, principal=True if trust else None)
    except InputError as exc:
        raise InputError(exc.message, location=": ".join(x for x in (where, exc.location) if x)) from None
