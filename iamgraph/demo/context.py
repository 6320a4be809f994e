"""What every part of the demo build shares: the build context (ids, random source, actors, planted items)
and the helpers that turn an IAM user or role into someone who makes calls (an ``Actor``).

The context is the one mutable thing handed from step to step; every id comes from ``Ids`` (a pure function
of the seed and a name), every random choice from one of the seeded ``random.Random``. The order in which the
steps call these helpers is part of the output: the same calls in the same order give the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from iamgraph.demo import managed as aws
from iamgraph.demo.config import DemoConfig
from iamgraph.demo.ids import Ids
from iamgraph.demo.planted import Expect, PlantedItem, PlantedKind
from iamgraph.demo.world import AcctBuilder, Actor, Call, Doc, call, doc
from iamgraph.snapshot.model import ManagedPolicy

HOME = "us-east-1"
ALLOWED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
SLUG = "examplecorp"
GITHUB_OIDC = "token.actions.githubusercontent.com"
GITHUB_REPO = "example-corp/payments-service"
# An account outside the organization: a monitoring vendor that assumes a role with an ExternalId.
VENDOR_ACCOUNT = "210987654321"


@dataclass(slots=True)
class Planned:
    """Records emitted only on the last day of the window (the planted deviations)."""

    item_id: str
    actor: Actor
    call: Call
    count: int
    minute: int
    """Minutes after the start of the last day."""
    spread_seconds: int = 60
    region: str | None = None


class Ctx:
    """The state one build threads through its steps: ids, the seeded random source, the AWS managed policies
    attached so far, and what the world hands to the activity side (actors, planted items, deviations)."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.ids = Ids(cfg.seed)
        self.rng = random.Random(f"iamgraph-demo-{cfg.seed}")
        self.end = cfg.end_date
        self.start = cfg.end_date - timedelta(days=cfg.days)
        self.org_id = "o-" + self.ids.alnum(10, "org")
        self.root_id = "r-" + self.ids.alnum(4, "root")
        self.aws_managed: dict[str, ManagedPolicy] = {}
        self.actors: list[Actor] = []
        self.planted: list[PlantedItem] = []
        self.deviations: list[Planned] = []
        self.stale: dict[str, dict[str, str]] = {}
        self.never_used: set[str] = set()

    def aws(self, name: str) -> str:
        if name not in self.aws_managed:
            self.aws_managed[name] = aws.aws_managed_policy(name)
        return self.aws_managed[name].arn

    def actor(self, actor: Actor) -> Actor:
        self.actors.append(actor)
        return actor

    def actor_of(self, principal_arn: str) -> Actor:
        """The first actor whose calls count for ``principal_arn`` (a role's sessions, a user's key)."""
        return next(a for a in self.actors if a.principal_arn == principal_arn)

    def ip(self, *parts: str) -> str:
        d = self.ids.digest("ip", *parts)
        # Documentation ranges (RFC 5737): realistic-looking, never anyone's real address.
        net = ("192.0.2", "198.51.100", "203.0.113")[d[0] % 3]
        return f"{net}.{1 + d[1] % 254}"

    def plant(
        self,
        item_id: str,
        kind: PlantedKind,
        technique: str,
        account: AcctBuilder,
        *,
        principals: list[str],
        resources: list[str],
        actions: list[str],
        why: str,
        expect: Expect = Expect.FINDING,
        **kw: object,
    ) -> None:
        self.planted.append(
            PlantedItem(
                id=item_id,
                kind=kind,
                technique=technique,
                expect=expect,
                account_id=account.account_id,
                principals=tuple(principals),
                resources=tuple(resources),
                actions=tuple(actions),
                why=why,
                **kw,  # type: ignore[arg-type]
            )
        )


def role_actor(
    ctx: Ctx,
    acct: AcctBuilder,
    role_name: str,
    session: str,
    calls: list[Call],
    *,
    weight: float = 1.0,
    planted: bool = False,
    regions: tuple[str, ...] = (HOME,),
    kind: str = "AssumedRole",
    user_agent: str | None = None,
    extra: dict[str, str] | None = None,
) -> Actor:
    role = acct.role_by_name[role_name]
    a = Actor(
        key=f"{acct.account_id}:{role_name}:{session}",
        kind=kind,
        account_id=acct.account_id,
        principal_arn=role.arn,
        name=role.name,
        unique_id=role.role_id,
        session=session,
        access_key=None,
        regions=regions,
        ip=ctx.ip(acct.account_id, role_name, session),
        calls=calls,
        weight=weight,
        planted=planted,
        extra=extra or {},
    )
    if user_agent:
        a.user_agent = user_agent
    return ctx.actor(a)


def service_role_actor(
    ctx: Ctx,
    acct: AcctBuilder,
    role_name: str,
    service: str,
    calls: list[Call],
    *,
    weight: float = 1.0,
    planted: bool = False,
) -> Actor:
    """A role assumed by an AWS service: the service's AssumeRole (type AWSService) plus the session's calls."""
    role = acct.role_by_name[role_name]
    session = {"lambda.amazonaws.com": role_name, "ec2.amazonaws.com": "i-" + ctx.ids.hex(17, role.arn)}.get(
        service, f"{service.split('.')[0]}-{ctx.ids.hex(8, role.arn)}"
    )
    ctx.actor(
        Actor(
            key=f"svc:{acct.account_id}:{role_name}",
            kind="AWSService",
            account_id=acct.account_id,
            principal_arn=None,
            name=service,
            unique_id=service,
            regions=(HOME,),
            ip=service,
            user_agent=service,
            calls=[call("sts.AssumeRole", role.arn)],
            weight=weight * 0.2,
            planted=planted,
        )
    )
    return role_actor(
        ctx,
        acct,
        role_name,
        session,
        calls,
        weight=weight,
        planted=planted,
        user_agent=f"aws-sdk-go-v2/1.30.3 os/linux exec-env/{service.split('.')[0]}",
    )


def user_actor(
    ctx: Ctx,
    acct: AcctBuilder,
    user_name: str,
    calls: list[Call],
    *,
    weight: float = 1.0,
    planted: bool = False,
    console: bool = False,
    regions: tuple[str, ...] = (HOME,),
) -> Actor:
    user = acct.user_by_name[user_name]
    key = user.access_keys[0].access_key_id if user.access_keys else None
    if console:
        key = ctx.ids.access_key_id(user.arn, "console", temporary=True)
    a = Actor(
        key=f"{acct.account_id}:user/{user_name}",
        kind="IAMUser",
        account_id=acct.account_id,
        principal_arn=user.arn,
        name=user.name,
        unique_id=user.user_id,
        access_key=key,
        regions=regions,
        ip=ctx.ip(acct.account_id, user_name),
        calls=calls,
        weight=weight,
        planted=planted,
    )
    if console:
        a.user_agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
        a.extra["console"] = "true"
    return ctx.actor(a)


def tagged(classification: str, **more: str) -> dict[str, str]:
    return {"DataClassification": classification, **more}


def key_policy(acct: AcctBuilder, *, extra: list[Doc] | None = None) -> Doc:
    # The default key policy: the account root statement lets IAM policies grant use of the key.
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
    return doc(
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": acct.root_arn},
            "Action": "kms:*",
            "Resource": "*",
        },
        *(extra or []),
    )


def saml_role_actor(
    ctx: Ctx,
    acct: AcctBuilder,
    role_name: str,
    session: str,
    calls: list[Call],
    provider: str,
    *,
    weight: float = 1.0,
    planted: bool = False,
) -> Actor:
    role = acct.role_by_name[role_name]
    ctx.actor(
        Actor(
            key=f"saml:{acct.account_id}:{role_name}:{session}",
            kind="SAMLUser",
            account_id=acct.account_id,
            principal_arn=None,
            name=session,
            unique_id=ctx.ids.hex(28, "samlsub", session),
            session=session,
            regions=(HOME,),
            ip=ctx.ip("corp", session),
            calls=[call("sts.AssumeRoleWithSAML", role.arn)],
            weight=weight * 0.2,
            planted=planted,
            extra={"provider": provider},
        )
    )
    return role_actor(ctx, acct, role_name, session, calls, weight=weight, planted=planted)
