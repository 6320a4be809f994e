"""Building blocks of the demo organization: one ``AcctBuilder`` per account, actors and their calls.

The builder keeps snapshot model objects as it goes and an index of resource ARNs by kind, so the
activity side can pick real targets. Nothing here is random except through the ``random.Random``
it is handed, so one seed gives one organization.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from iamgraph.demo.events import TEMPLATES, EventTemplate
from iamgraph.demo.ids import Ids
from iamgraph.snapshot.model import (
    AccessKey,
    Compute,
    ComputeKind,
    Group,
    InlinePolicy,
    InstanceProfile,
    ManagedPolicy,
    OidcProvider,
    PolicyVersion,
    Resource,
    ResourceType,
    Role,
    SamlProvider,
    User,
)

Doc = dict[str, Any]


def iso(ts: datetime) -> str:
    """``2026-11-14T13:02:00Z``, the form CloudTrail and IAM write (isoformat is several times faster than strftime)."""
    return ts.isoformat(timespec="seconds")[:19] + "Z"


def doc(*statements: Doc) -> Doc:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resources: str | list[str] = "*", **extra: Any) -> Doc:
    st: Doc = {"Effect": "Allow", "Action": actions, "Resource": resources}
    st.update(extra)
    return st


def deny(actions: str | list[str], resources: str | list[str] = "*", **extra: Any) -> Doc:
    st: Doc = {"Effect": "Deny", "Action": actions, "Resource": resources}
    st.update(extra)
    return st


def trust_service(*services: str) -> Doc:
    return doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": list(services) if len(services) > 1 else services[0]},
            "Action": "sts:AssumeRole",
        }
    )


def trust_aws(*arns: str, condition: Doc | None = None) -> Doc:
    st: Doc = {
        "Effect": "Allow",
        "Principal": {"AWS": list(arns) if len(arns) > 1 else arns[0]},
        "Action": "sts:AssumeRole",
    }
    if condition:
        st["Condition"] = condition
    return doc(st)


def trust_saml(provider_arn: str) -> Doc:
    # The console's SAML sign-in endpoint is the audience AWS documents for role trust policies:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_saml.html
    return doc(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
        }
    )


@dataclass(slots=True)
class Call:
    """One kind of call an actor makes: a template and, when it targets something, the target's ARN."""

    template: EventTemplate
    resource: str | None = None
    recipient: str | None = None
    """Account whose trail logs it (default: the actor's account)."""
    region: str | None = None
    error: str | None = None
    weight: float = 1.0
    params: dict[str, Any] | None = None
    """Extra requestParameters (e.g. the policyArn of an AttachRolePolicy)."""


@dataclass(slots=True)
class Actor:
    """Someone who makes calls, with the identity CloudTrail shows for them.

    ``kind`` is the CloudTrail ``userIdentity.type`` (plus ``SSO`` for Identity Center sessions, which
    CloudTrail records as ``AssumedRole`` of an ``AWSReservedSSO_*`` role). ``principal_arn`` is the IAM
    user or role the usage counts for in access advisor, or None (root, AWS services, other accounts).
    """

    key: str
    kind: str
    account_id: str
    principal_arn: str | None
    name: str
    unique_id: str
    session: str = ""
    access_key: str | None = None
    regions: tuple[str, ...] = ("us-east-1",)
    ip: str = "198.51.100.10"
    user_agent: str = "aws-cli/2.17.0 Python/3.11.9 Linux/6.1 exe/x86_64.amzn.2"
    calls: list[Call] = field(default_factory=list)
    weight: float = 1.0
    planted: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    issuer: Actor | None = None
    """For federated users: the IAM user who called GetFederationToken."""


TARGET_KINDS = (
    "bucket",
    "object",
    "key",
    "secret",
    "queue",
    "topic",
    "function",
    "table",
    "instance",
    "role",
    "user",
    "policy",
    "trail",
    "loggroup",
    "param",
    "cluster",
    "repository",
    "stack",
    "project",
    "job",
    "notebook",
    "stream",
)


class AcctBuilder:
    """Accumulates one account's IAM entities, resources and compute."""

    def __init__(
        self,
        *,
        account_id: str,
        name: str,
        ou: str,
        ids: Ids,
        rng: random.Random,
        window_start: datetime,
        end: datetime,
    ) -> None:
        self.account_id = account_id
        self.end = end
        self.name = name
        self.ou = ou
        self.ids = ids
        self.rng = rng
        self.window_start = window_start
        self.users: list[User] = []
        self.groups: list[Group] = []
        self.roles: list[Role] = []
        self.policies: list[ManagedPolicy] = []
        self.instance_profiles: list[InstanceProfile] = []
        self.resources: list[Resource] = []
        self.compute_items: list[Compute] = []
        self.targets: dict[str, list[str]] = {k: [] for k in TARGET_KINDS}
        self.role_by_name: dict[str, Role] = {}
        self.user_by_name: dict[str, User] = {}
        self.group_by_name: dict[str, Group] = {}
        self.saml_providers: list[SamlProvider] = []
        self.oidc_providers: list[OidcProvider] = []
        self.mfa_root = True
        self.public_access_block: dict[str, bool] | None = None

    # -- helpers

    def arn(self, service: str, resource: str, region: str = "") -> str:
        return f"arn:aws:{service}:{region}:{self.account_id}:{resource}"

    def iam_arn(self, kind: str, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account_id}:{kind}{path}{name}"

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    def created(self, min_days: int = 30, max_days: int = 900) -> str:
        return iso(
            self.window_start
            - timedelta(days=self.rng.randint(min_days, max_days), seconds=self.rng.randint(0, 86_399))
        )

    # -- IAM

    def policy(
        self,
        name: str,
        versions: list[Doc],
        *,
        default: int = -1,
        path: str = "/",
        description: str | None = None,
    ) -> str:
        arn = self.iam_arn("policy", name, path)
        default_idx = default % len(versions)
        first = self.window_start - timedelta(days=self.rng.randint(200, 900))
        vs = []
        for i, d in enumerate(versions):
            vs.append(
                PolicyVersion(
                    version_id=f"v{i + 1}",
                    is_default=i == default_idx,
                    document=d,
                    create_date=iso(first + timedelta(days=30 * i)),
                )
            )
        self.policies.append(
            ManagedPolicy(
                arn=arn,
                name=name,
                policy_id=self.ids.unique_id("ANPA", arn),
                path=path,
                default_version_id=f"v{default_idx + 1}",
                versions=vs,
                attachment_count=0,
                permissions_boundary_usage_count=0,
                is_attachable=True,
                description=description,
                create_date=vs[0].create_date,
                update_date=vs[-1].create_date,
            )
        )
        self.targets["policy"].append(arn)
        return arn

    def _count_attachments(self, arns: list[str], *, boundary: str | None = None) -> None:
        for p in self.policies:
            if p.arn in arns:
                p.attachment_count = (p.attachment_count or 0) + 1
            if boundary and p.arn == boundary:
                p.permissions_boundary_usage_count = (p.permissions_boundary_usage_count or 0) + 1

    def role(
        self,
        name: str,
        trust: Doc,
        *,
        managed: list[str] | None = None,
        inline: dict[str, Doc] | None = None,
        path: str = "/",
        boundary: str | None = None,
        profile: bool = False,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        max_session: int = 3600,
    ) -> Role:
        arn = self.iam_arn("role", name, path)
        profiles: list[str] = []
        if profile:
            ip_arn = self.iam_arn("instance-profile", name, path)
            self.instance_profiles.append(
                InstanceProfile(
                    arn=ip_arn,
                    name=name,
                    instance_profile_id=self.ids.unique_id("AIPA", ip_arn),
                    path=path,
                    roles=[arn],
                )
            )
            profiles.append(ip_arn)
        managed = managed or []
        self._count_attachments(managed, boundary=boundary)
        role = Role(
            arn=arn,
            name=name,
            role_id=self.ids.unique_id("AROA", arn),
            path=path,
            create_date=self.created(),
            description=description,
            max_session_duration=max_session,
            trust_policy=trust,
            attached_managed_policies=managed,
            inline_policies=[InlinePolicy(name=k, document=v) for k, v in (inline or {}).items()],
            permissions_boundary=boundary,
            instance_profiles=profiles,
            tags=tags or {},
        )
        self.roles.append(role)
        self.role_by_name[name] = role
        self.targets["role"].append(arn)
        return role

    def group(
        self,
        name: str,
        *,
        managed: list[str] | None = None,
        inline: dict[str, Doc] | None = None,
        path: str = "/",
    ) -> Group:
        arn = self.iam_arn("group", name, path)
        managed = managed or []
        self._count_attachments(managed)
        g = Group(
            arn=arn,
            name=name,
            group_id=self.ids.unique_id("AGPA", arn),
            path=path,
            create_date=self.created(),
            attached_managed_policies=managed,
            inline_policies=[InlinePolicy(name=k, document=v) for k, v in (inline or {}).items()],
        )
        self.groups.append(g)
        self.group_by_name[name] = g
        return g

    def user(
        self,
        name: str,
        *,
        groups: list[str] | None = None,
        managed: list[str] | None = None,
        inline: dict[str, Doc] | None = None,
        password: bool = False,
        mfa: bool = False,
        keys: int = 0,
        key_age_days: int = 60,
        boundary: str | None = None,
        path: str = "/",
        tags: dict[str, str] | None = None,
    ) -> User:
        arn = self.iam_arn("user", name, path)
        managed = managed or []
        self._count_attachments(managed, boundary=boundary)
        access_keys = [
            AccessKey(
                access_key_id=self.ids.access_key_id(arn, str(i)),
                status="Active",
                create_date=iso(
                    self.end - timedelta(days=key_age_days + 30 * i, hours=self.rng.randint(0, 23))
                ),
            )
            for i in range(keys)
        ]
        u = User(
            arn=arn,
            name=name,
            user_id=self.ids.unique_id("AIDA", arn),
            path=path,
            create_date=self.created(400),
            has_console_password=password,
            mfa_devices=[f"arn:aws:iam::{self.account_id}:mfa/{name}"] if mfa else [],
            groups=groups or [],
            attached_managed_policies=managed,
            inline_policies=[InlinePolicy(name=k, document=v) for k, v in (inline or {}).items()],
            permissions_boundary=boundary,
            access_keys=access_keys,
            tags=tags or {},
        )
        self.users.append(u)
        self.user_by_name[name] = u
        self.targets["user"].append(arn)
        return u

    # -- resources and compute

    def resource(
        self,
        arn: str,
        rtype: ResourceType,
        *,
        target: str,
        name: str,
        region: str | None = "us-east-1",
        policy: Doc | None = None,
        tags: dict[str, str] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Resource:
        r = Resource(
            arn=arn,
            type=rtype,
            region=region,
            name=name,
            policy=policy,
            tags=tags or {},
            attributes=attributes or {},
        )
        self.resources.append(r)
        self.targets[target].append(arn)
        return r

    def bucket(
        self,
        name: str,
        *,
        policy: Doc | None = None,
        tags: dict[str, str] | None = None,
        public_block: bool = True,
        kms_key: str | None = None,
        is_public: bool = False,
    ) -> str:
        arn = f"arn:aws:s3:::{name}"
        flags = {
            k: public_block
            for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        }
        attrs: dict[str, Any] = {
            "public_access_block": flags,
            "policy_status": {"IsPublic": is_public},
            "encryption": {
                "SSEAlgorithm": "aws:kms" if kms_key else "AES256",
                **({"KMSMasterKeyID": kms_key} if kms_key else {}),
            },
        }
        self.resource(
            arn, "s3:bucket", target="bucket", name=name, policy=policy, tags=tags, attributes=attrs
        )
        self.targets["object"].append(f"{arn}/")
        return arn

    def compute(
        self,
        kind: ComputeKind,
        arn: str,
        name: str,
        *,
        role_arn: str | None = None,
        profile_arn: str | None = None,
        region: str = "us-east-1",
        attributes: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        target: str | None = None,
    ) -> str:
        self.compute_items.append(
            Compute(
                arn=arn,
                kind=kind,
                region=region,
                name=name,
                role_arn=role_arn,
                instance_profile_arn=profile_arn,
                attributes=attributes or {},
                tags=tags or {},
            )
        )
        if target:
            self.targets[target].append(arn)
        return arn

    def pick(self, kind: str) -> str | None:
        options = self.targets.get(kind) or []
        return self.rng.choice(options) if options else None


def call(key: str, resource: str | None = None, **kw: Any) -> Call:
    return Call(template=TEMPLATES[key], resource=resource, **kw)


def policy_for_calls(calls: list[Call], extra: list[Doc] | None = None) -> Doc:
    """A least-privilege-looking identity policy that allows exactly ``calls`` (plus ``extra`` statements).

    Actions that target a resource are granted on that resource; account-level calls on ``*``. S3 object
    calls are granted on ``bucket/*`` because that is the resource the object ARN matches.
    """
    by_resource: dict[str, set[str]] = {}
    for c in calls:
        action = c.template.action
        if action is None or c.error:
            continue
        res = c.resource or "*"
        if c.template.target == "object" and c.resource:
            res = c.resource.split("/", 1)[0] + "/*"
        by_resource.setdefault(res, set()).add(action)
    statements: list[Doc] = []
    grouped: dict[tuple[str, ...], list[str]] = {}
    for res, actions in by_resource.items():
        grouped.setdefault(tuple(sorted(actions)), []).append(res)
    for actions_t, resources in sorted(grouped.items()):
        statements.append(allow(list(actions_t), sorted(resources) if len(resources) > 1 else resources[0]))
    statements.extend(extra or [])
    return doc(*statements)
