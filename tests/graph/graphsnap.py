"""Small snapshots for graph tests, built from ``iamgraph.snapshot.model`` objects."""

from __future__ import annotations

from typing import Any

from iamgraph.snapshot.model import (
    Account,
    Compute,
    Group,
    InlinePolicy,
    ManagedPolicy,
    OrgAccount,
    Organization,
    OrgPolicy,
    PolicyVersion,
    Resource,
    Role,
    Snapshot,
    User,
)

A = "111111111111"
B = "222222222222"
MGMT = "999999999999"
OUTSIDE = "444455556666"
ORG_ID = "o-exampleorg1"

FULL_SCP = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def allow(actions: str | list[str], resources: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    st.update(extra)
    return {"Version": "2012-10-17", "Statement": [st]}


def deny(actions: str | list[str], resources: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Deny", "Action": actions, "Resource": resources}
    st.update(extra)
    return {"Version": "2012-10-17", "Statement": [st]}


def not_action(actions: str | list[str], resources: str | list[str] = "*") -> dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "NotAction": actions, "Resource": resources}]}


def trust(principal: Any, action: str = "sts:AssumeRole", **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action}
    st.update(extra)
    return {"Version": "2012-10-17", "Statement": [st]}


def service_trust(service: str) -> dict[str, Any]:
    return trust({"Service": service})


class SnapBuilder:
    """Accounts A and B in one organization (management account MGMT) unless ``org=False``."""

    def __init__(self, *, org: bool = True) -> None:
        self.accounts: dict[str, Account] = {a: Account(account_id=a, regions=["us-east-1"]) for a in (A, B)}
        self.org = org
        self.org_policies: list[OrgPolicy] = []
        self.aws_managed: list[ManagedPolicy] = []
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:016d}"

    @staticmethod
    def _inline(docs: list[dict[str, Any]]) -> list[InlinePolicy]:
        return [InlinePolicy(name=f"p{i}", document=d) for i, d in enumerate(docs)]

    def user(self, name: str, *docs: dict[str, Any], acct: str = A, groups: list[str] | None = None,
             managed: list[str] | None = None, boundary: str | None = None, keys: int = 0,
             password: bool | None = None, mfa: bool = False, tags: dict[str, str] | None = None) -> str:
        from iamgraph.snapshot.model import AccessKey

        arn = f"arn:aws:iam::{acct}:user/{name}"
        self.accounts[acct].users.append(User(
            arn=arn, name=name, user_id=self._id("AIDA"), groups=groups or [],
            inline_policies=self._inline(list(docs)), attached_managed_policies=managed or [],
            permissions_boundary=boundary, has_console_password=password,
            mfa_devices=[f"arn:aws:iam::{acct}:mfa/{name}"] if mfa else [],
            access_keys=[AccessKey(access_key_id=f"AKIA{name.upper()[:4]}{i:012d}", status="Active")
                         for i in range(keys)],
            tags=tags or {},
        ))
        return arn

    def role(self, name: str, *docs: dict[str, Any], acct: str = A, trust_doc: dict[str, Any] | None = None,
             managed: list[str] | None = None, boundary: str | None = None,
             profiles: list[str] | None = None, tags: dict[str, str] | None = None) -> str:
        arn = f"arn:aws:iam::{acct}:role/{name}"
        self.accounts[acct].roles.append(Role(
            arn=arn, name=name, role_id=self._id("AROA"),
            trust_policy=trust_doc or trust({"AWS": f"arn:aws:iam::{acct}:root"}),
            inline_policies=self._inline(list(docs)), attached_managed_policies=managed or [],
            permissions_boundary=boundary, instance_profiles=profiles or [], tags=tags or {},
        ))
        return arn

    def group(self, name: str, *docs: dict[str, Any], acct: str = A, managed: list[str] | None = None) -> str:
        arn = f"arn:aws:iam::{acct}:group/{name}"
        self.accounts[acct].groups.append(Group(
            arn=arn, name=name, group_id=self._id("AGPA"), inline_policies=self._inline(list(docs)),
            attached_managed_policies=managed or [],
        ))
        return arn

    def managed(self, name: str, doc: dict[str, Any], *, acct: str | None = A,
                older: list[dict[str, Any]] | None = None) -> str:
        versions = [PolicyVersion(version_id=f"v{i + 2}", is_default=False, document=d)
                    for i, d in enumerate(older or [])]
        versions.insert(0, PolicyVersion(version_id="v1", is_default=True, document=doc))
        if acct is None:
            arn = f"arn:aws:iam::aws:policy/{name}"
            self.aws_managed.append(ManagedPolicy(arn=arn, name=name, default_version_id="v1", versions=versions))
            return arn
        arn = f"arn:aws:iam::{acct}:policy/{name}"
        self.accounts[acct].policies.append(
            ManagedPolicy(arn=arn, name=name, default_version_id="v1", versions=versions))
        return arn

    def resource(self, arn: str, type_: str, policy: dict[str, Any] | None = None, *, acct: str = A,
                 tags: dict[str, str] | None = None, **attributes: Any) -> str:
        self.accounts[acct].resources.append(Resource(arn=arn, type=type_, policy=policy,  # type: ignore[arg-type]
                                                      tags=tags or {}, attributes=attributes))
        return arn

    def compute(self, arn: str, kind: str, *, role: str | None = None, profile: str | None = None,
                acct: str = A, **attributes: Any) -> str:
        self.accounts[acct].compute.append(Compute(arn=arn, kind=kind, region="us-east-1",  # type: ignore[arg-type]
                                                   role_arn=role, instance_profile_arn=profile,
                                                   attributes=attributes))
        return arn

    def scp(self, doc: dict[str, Any], *targets: str) -> None:
        self.org_policies.append(OrgPolicy(id=self._id("p-"), name=f"scp{len(self.org_policies)}",
                                           type="SERVICE_CONTROL_POLICY", document=doc, targets=list(targets)))

    def build(self) -> Snapshot:
        org = None
        if self.org:
            org = Organization(
                id=ORG_ID, management_account_id=MGMT, root_id="r-root",
                enabled_policy_types=["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"],
                accounts=[OrgAccount(id=a, parent_id="r-root") for a in (A, B, MGMT)],
                policies=[OrgPolicy(id="p-FullAWSAccess", name="FullAWSAccess", type="SERVICE_CONTROL_POLICY",
                                    aws_managed=True, document=FULL_SCP, targets=["r-root", A, B, MGMT]),
                          # Enabling RCPs attaches RCPFullAWSAccess to the root, every OU and every account.
                          OrgPolicy(id="p-RCPFullAWSAccess", name="RCPFullAWSAccess",
                                    type="RESOURCE_CONTROL_POLICY", aws_managed=True,
                                    document={"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]},
                                    targets=["r-root", A, B, MGMT]),
                          *self.org_policies],
            )
        return Snapshot(collected_at="2026-11-30T00:00:00Z", organization=org,
                        accounts=list(self.accounts.values()), aws_managed_policies=self.aws_managed)
