"""Lookups over a snapshot by ARN and id, built once. Pure reads of raw facts; no evaluation."""

from __future__ import annotations

from dataclasses import dataclass

from iamgraph.snapshot.model import (
    Account,
    Compute,
    Group,
    ManagedPolicy,
    OrgPolicy,
    PermissionSet,
    Resource,
    Role,
    Snapshot,
    User,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgLevel:
    """One level of the organization chain above an account: the root, an OU, or the account itself."""

    target_id: str
    kind: str  # "root" | "ou" | "account"
    name: str
    scps: tuple[OrgPolicy, ...]
    rcps: tuple[OrgPolicy, ...]


class SnapshotIndex:
    """Dictionaries over a snapshot. Build once per snapshot; all lookups are O(1)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.accounts: dict[str, Account] = {a.account_id: a for a in snapshot.accounts}
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.roles: dict[str, Role] = {}
        self.policies: dict[str, ManagedPolicy] = {p.arn: p for p in snapshot.aws_managed_policies}
        self.resources: dict[str, Resource] = {}
        self.compute: dict[str, Compute] = {}
        self.account_of: dict[str, str] = {}
        self.access_keys: dict[str, str] = {}
        self._group_by_name: dict[tuple[str, str], Group] = {}
        self._role_by_name: dict[tuple[str, str], Role] = {}
        self._user_by_name: dict[tuple[str, str], User] = {}
        self._policy_by_path_name: dict[tuple[str, str], ManagedPolicy] = {}
        for acct in snapshot.accounts:
            aid = acct.account_id
            for u in acct.users:
                self.users[u.arn] = u
                self.account_of[u.arn] = aid
                self._user_by_name[(aid, u.name)] = u
                for key in u.access_keys:
                    self.access_keys[key.access_key_id] = u.arn
            for g in acct.groups:
                self.groups[g.arn] = g
                self.account_of[g.arn] = aid
                self._group_by_name[(aid, g.name)] = g
            for r in acct.roles:
                self.roles[r.arn] = r
                self.account_of[r.arn] = aid
                self._role_by_name[(aid, r.name)] = r
            for p in acct.policies:
                self.policies[p.arn] = p
                self.account_of[p.arn] = aid
                self._policy_by_path_name[(aid, p.path + p.name)] = p
            for res in acct.resources:
                self.resources[res.arn] = res
                self.account_of[res.arn] = aid
            for c in acct.compute:
                self.compute[c.arn] = c
                self.account_of[c.arn] = aid
        self.permission_sets: dict[str, PermissionSet] = {}
        if snapshot.identity_center is not None:
            self.permission_sets = {ps.arn: ps for ps in snapshot.identity_center.permission_sets}
        self._org_chain: dict[str, tuple[OrgLevel, ...]] = {}

    # -- principals

    def principal(self, arn: str) -> User | Role | Group | None:
        return self.users.get(arn) or self.roles.get(arn) or self.groups.get(arn)

    def groups_of(self, user: User) -> list[Group]:
        """The groups a user is in (GetAccountAuthorizationDetails names them, not ARNs)."""
        aid = self.account_of.get(user.arn, "")
        return [g for name in user.groups if (g := self._group_by_name.get((aid, name))) is not None]

    def role_by_name(self, account_id: str, name: str) -> Role | None:
        return self._role_by_name.get((account_id, name))

    def user_by_name(self, account_id: str, name: str) -> User | None:
        return self._user_by_name.get((account_id, name))

    def customer_policy(self, account_id: str, path_and_name: str) -> ManagedPolicy | None:
        """A customer managed policy by ``/path/name`` (as Identity Center references name them)."""
        key = path_and_name if path_and_name.startswith("/") else "/" + path_and_name
        return self._policy_by_path_name.get((account_id, key))

    # -- organization

    def org_chain(self, account_id: str) -> tuple[OrgLevel, ...]:
        """Root first, then each OU down to the account itself; each level with its SCPs and RCPs.

        Empty when the snapshot has no organization or the account is not in it.
        """
        if account_id in self._org_chain:
            return self._org_chain[account_id]
        org = self.snapshot.organization
        chain: tuple[OrgLevel, ...] = ()
        if org is not None:
            acct = next((a for a in org.accounts if a.id == account_id), None)
            if acct is not None:
                ous = {ou.id: ou for ou in org.organizational_units}
                ids: list[tuple[str, str, str]] = [(acct.id, "account", acct.name or acct.id)]
                parent = acct.parent_id
                seen: set[str] = set()
                while parent in ous and parent not in seen:
                    seen.add(parent)
                    ids.append((parent, "ou", ous[parent].name))
                    parent = ous[parent].parent_id
                ids.append((org.root_id, "root", "Root"))
                ids.reverse()
                levels = []
                for tid, kind, name in ids:
                    attached = [p for p in org.policies if tid in p.targets]
                    levels.append(
                        OrgLevel(
                            target_id=tid,
                            kind=kind,
                            name=name,
                            scps=tuple(p for p in attached if p.type == "SERVICE_CONTROL_POLICY"),
                            rcps=tuple(p for p in attached if p.type == "RESOURCE_CONTROL_POLICY"),
                        )
                    )
                chain = tuple(levels)
        self._org_chain[account_id] = chain
        return chain

    def is_management_account(self, account_id: str) -> bool:
        org = self.snapshot.organization
        return org is not None and org.management_account_id == account_id

    def org_id(self) -> str | None:
        return self.snapshot.organization.id if self.snapshot.organization else None
