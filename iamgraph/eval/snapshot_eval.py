"""Evaluate a principal of a snapshot: resolve its policies, its organization chain, the resource's
policy, and the context AWS would fill in, then call ``authorize``.

Which policies apply to whom:
- users: inline, attached managed (default version), their groups' inline and managed, boundary;
- roles (and their sessions ``arn:aws:sts::A:assumed-role/R/S``): inline, managed, boundary;
- SCPs of the principal's account chain (root, OUs, account), except for the management account and
  service-linked roles (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html);
- RCPs of the resource's account chain, except in the management account and for AWS managed KMS
  keys (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html);
- the resource policy of the resource (an S3 object uses its bucket's), or the trust policy of a
  role for ``sts:`` actions on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from iamgraph.errors import InputError, NotFoundError
from iamgraph.eval.compiled import compiled
from iamgraph.eval.engine import authorize, named_policy
from iamgraph.eval.kms_grants import grant_policy
from iamgraph.eval.principals import PrincipalKind, RequestPrincipal, classify
from iamgraph.eval.types import (
    ContextValue,
    Decision,
    DecisionKind,
    EvaluationError,
    Mode,
    NamedPolicy,
    OrgLevelRef,
    PolicySet,
    PolicyType,
    Request,
)
from iamgraph.model.arn import account_of, try_parse
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Group, InlinePolicy, OrgPolicy, Resource, Role, User

_Identity = tuple[tuple[NamedPolicy, ...], NamedPolicy | None, tuple[EvaluationError, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StandIn:
    """A principal the snapshot does not hold, asked about as if it did (a role someone could create,
    the probe principal of a policy-change check). The shared snapshot index is never touched, so
    concurrent questions cannot see each other's stand-ins."""

    entity: User | Role


@dataclass(frozen=True, slots=True, kw_only=True)
class Outsider:
    """A caller the snapshot does not hold and whose identity policies nobody can see (another
    account, ``*``, a service, an identity provider). Its identity side is taken to allow everything,
    so the resource's policy, the resource account's RCPs and any Deny decide; nothing of the caller
    is put in the context (``arn`` may stand for any principal of an account). With no resource policy
    the answer is ImplicitlyDenied: nothing in the snapshot grants it."""

    arn: str


Asker = str | StandIn | Outsider
"""Who asks: a principal ARN of the snapshot (users, roles, role sessions, root), a stand-in, an outsider."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """Changes to the policies that apply, for one question only (the snapshot is never changed).

    ``drop_identity``: identity policies (engine ids: a managed policy's ARN, ``OWNER:inline/NAME``)
    taken away once each -- a managed policy detached from a user still applies through a group
    that attaches it too. ``replace_identity``: every occurrence taken away (its content changed;
    give the new content in ``add_identity``). ``allow_all`` adds an identity policy allowing
    everything (what an attacker who writes the principal's policies has).
    """

    add_identity: tuple[NamedPolicy, ...] = ()
    drop_identity: tuple[str, ...] = ()
    replace_identity: tuple[str, ...] = ()
    allow_all: bool = False
    drop_boundary: bool = False
    boundary: NamedPolicy | None = None
    resource_policy: NamedPolicy | None = None
    session_policy: NamedPolicy | None = None

    def apply(self, ps: PolicySet) -> PolicySet:
        kept = list(ps.identity)
        for pid in self.drop_identity:
            at = next((i for i, np in enumerate(kept) if np.policy_id == pid), None)
            if at is not None:
                del kept[at]
        if self.replace_identity:
            kept = [np for np in kept if np.policy_id not in self.replace_identity]
        identity = (*kept, *self.add_identity, *((ALLOW_ALL,) if self.allow_all else ()))
        boundary = None if self.drop_boundary else (self.boundary or ps.permission_boundary)
        return replace(
            ps,
            identity=identity,
            permission_boundary=boundary,
            resource=self.resource_policy if self.resource_policy is not None else ps.resource,
            session=self.session_policy if self.session_policy is not None else ps.session,
        )


ALLOW_ALL_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ALLOW_ALL_ID = "iamgraph:assumed-allow-all"
"""Stands for identity policies nobody can see (an outsider's) or that an attacker writes."""
ALLOW_ALL = named_policy(ALLOW_ALL_DOC, ALLOW_ALL_ID, PolicyType.IDENTITY)


_MAX_ABSENT = 16_384
"""Entries of ``SnapshotEvaluator._absent`` kept before they are dropped all at once (each pins a policy set)."""


class SnapshotEvaluator:
    """Evaluates requests of a snapshot's principals. Build once per snapshot; results are cached."""

    def __init__(self, index: SnapshotIndex) -> None:
        self.index = index
        self._identity: dict[str, _Identity] = {}
        self._pctx: dict[str, dict[str, Any]] = {}
        self._rctx: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._scps: dict[str, tuple[tuple[tuple[NamedPolicy, ...], ...], tuple[EvaluationError, ...]]] = {}
        self._rcps: dict[str, tuple[tuple[tuple[NamedPolicy, ...], ...], tuple[EvaluationError, ...]]] = {}
        self._level_refs: dict[tuple[str, str], list[OrgLevelRef]] = {}
        """(account, "scp" | "rcp") -> what each level of its chain is (filled by ``_chain``)."""
        self._absent: dict[tuple[str, str, str | None, int], tuple[PolicySet, tuple[str, ...]]] = {}
        """(principal ARN, resource, resource account, id of the policy set) -> the set (which keeps its id
        unique while the entry lives) and the tag keys ``_absent_tags`` found absent (filled by ``decide``)."""

    # ------------------------------------------------------------------ principals

    def _principal(self, principal: str | StandIn) -> tuple[RequestPrincipal, User | Role | None]:
        if isinstance(principal, StandIn):
            return classify(principal.entity.arn), principal.entity
        principal_arn = principal
        p = classify(principal_arn)
        if p.kind == PrincipalKind.USER:
            user = self.index.users.get(principal_arn)
            if user is None:
                raise NotFoundError(f"the snapshot has no IAM user {principal_arn}")
            return p, user
        if p.kind == PrincipalKind.ROLE:
            role = self.index.roles.get(principal_arn)
            if role is None:
                raise NotFoundError(f"the snapshot has no IAM role {principal_arn}")
            return p, role
        if p.kind == PrincipalKind.ASSUMED_ROLE:
            assert p.account is not None and p.role_name is not None
            role = self.index.role_by_name(p.account, p.role_name)
            if role is None:
                raise NotFoundError(
                    f"the snapshot has no role {p.role_name} in account {p.account} (for session {principal_arn})"
                )
            return classify(principal_arn, role_arn=role.arn), role
        return p, None

    def _identity_policies(
        self, p: RequestPrincipal, entity: User | Role | None, *, cache: bool = True
    ) -> _Identity:
        key = entity.arn if entity is not None else p.raw
        hit = self._identity.get(key) if cache else None
        if hit is not None:
            return hit
        policies: list[NamedPolicy] = []
        errors: list[EvaluationError] = []
        boundary: NamedPolicy | None = None
        if entity is not None:
            self._collect(entity.arn, entity.inline_policies, entity.attached_managed_policies, policies, errors)
            if isinstance(entity, User):
                for group in self.index.groups_of(entity):
                    self._collect_group(group, policies, errors)
                missing = set(entity.groups) - {g.name for g in self.index.groups_of(entity)}
                for name in sorted(missing):
                    errors.append(_err(PolicyType.IDENTITY, f"group {name}", f"{entity.arn} is in group {name}, "
                                       "which the snapshot does not hold; its policies are not evaluated"))
            if entity.permissions_boundary:
                boundary = self._managed(entity.permissions_boundary, PolicyType.PERMISSION_BOUNDARY, errors)
                if boundary is None:
                    # An unknown boundary still limits: with nothing to allow, nothing passes it.
                    boundary = named_policy(_DENY_ALL, entity.permissions_boundary, PolicyType.PERMISSION_BOUNDARY)
        elif p.kind == PrincipalKind.FEDERATED_USER:
            errors.append(_err(PolicyType.IDENTITY, p.raw, "the IAM user behind a federated user session is not "
                               "named by its ARN; its identity-based policies are not evaluated"))
        out: _Identity = (tuple(policies), boundary, tuple(errors))
        if cache:
            self._identity[key] = out
        return out

    def _collect(
        self,
        owner: str,
        inline: list[InlinePolicy],
        attached: list[str],
        policies: list[NamedPolicy],
        errors: list[EvaluationError],
    ) -> None:
        for ip in inline:
            pid = f"{owner}:inline/{ip.name}"
            try:
                policies.append(named_policy(ip.document, pid, PolicyType.IDENTITY))
            except InputError as exc:
                errors.append(_err(PolicyType.IDENTITY, pid, str(exc)))
        for arn in attached:
            np = self._managed(arn, PolicyType.IDENTITY, errors)
            if np is not None:
                policies.append(np)

    def _collect_group(self, group: Group, policies: list[NamedPolicy], errors: list[EvaluationError]) -> None:
        self._collect(group.arn, group.inline_policies, group.attached_managed_policies, policies, errors)

    def _managed(self, arn: str, ptype: PolicyType, errors: list[EvaluationError]) -> NamedPolicy | None:
        mp = self.index.policies.get(arn)
        doc = mp.default_document() if mp is not None else None
        if doc is None:
            errors.append(_err(ptype, arn, "the snapshot does not hold this managed policy's default version; "
                               "it is not evaluated"))
            return None
        try:
            return named_policy(doc, arn, ptype)
        except InputError as exc:
            errors.append(_err(ptype, arn, str(exc)))
            return None

    # ------------------------------------------------------------------ organization

    def _org_enabled(self, policy_type: str) -> bool:
        org = self.index.snapshot.organization
        if org is None:
            return False
        if org.enabled_policy_types:
            return policy_type in org.enabled_policy_types
        # Not recorded: the type is in use when the snapshot holds policies of it.
        return any(p.type == policy_type for p in org.policies)

    def _chain(self, account: str | None, kind: str) -> tuple[tuple[tuple[NamedPolicy, ...], ...], tuple[EvaluationError, ...]]:
        if account is None or self.index.is_management_account(account):
            return (), ()
        cache = self._scps if kind == "scp" else self._rcps
        hit = cache.get(account)
        if hit is not None:
            return hit
        otype = "SERVICE_CONTROL_POLICY" if kind == "scp" else "RESOURCE_CONTROL_POLICY"
        ptype = PolicyType.SCP if kind == "scp" else PolicyType.RCP
        levels: list[tuple[NamedPolicy, ...]] = []
        errors: list[EvaluationError] = []
        if self._org_enabled(otype):
            for level in self.index.org_chain(account):
                self._level_refs.setdefault((account, kind), []).append(
                    OrgLevelRef(kind=level.kind, target_id=level.target_id, name=level.name))
                docs: tuple[OrgPolicy, ...] = level.scps if kind == "scp" else level.rcps
                nps: list[NamedPolicy] = []
                for op in docs:
                    pid = op.arn or op.id
                    try:
                        nps.append(named_policy(op.document, pid, ptype))
                    except InputError as exc:
                        errors.append(_err(ptype, pid, str(exc)))
                levels.append(tuple(nps))
        out = (tuple(levels), tuple(errors))
        cache[account] = out
        return out

    def _levels_of(self, account: str | None, kind: str) -> tuple[OrgLevelRef, ...]:
        # Explanations name the root, OU or account of an SCP/RCP level (OrgLevelRef).
        return tuple(self._level_refs.get((account, kind), ())) if account is not None else ()

    def _org_paths(self, account: str) -> list[str] | None:
        org = self.index.snapshot.organization
        chain = self.index.org_chain(account)
        if org is None or not chain:
            return None
        ids = [lvl.target_id for lvl in chain if lvl.kind != "account"]
        return [org.id + "/" + "/".join(ids) + "/"]

    # ------------------------------------------------------------------ resources

    def _resource(self, resource_arn: str, action: str | None) -> tuple[str, Resource | Role | None]:
        """(the ARN whose policy applies, the thing holding it)."""
        arn = try_parse(resource_arn)
        if arn is not None and arn.service == "s3" and not arn.account and arn.resource:
            bucket = f"arn:{arn.partition}:s3:::{arn.resource.split('/', 1)[0]}"
            return bucket, self.index.resources.get(bucket)
        if arn is not None and arn.service == "iam" and arn.resource.startswith("role/"):
            role = self.index.roles.get(resource_arn)
            if action is None or action.lower().startswith("sts:"):
                return resource_arn, role
            return resource_arn, None
        return resource_arn, self.index.resources.get(resource_arn)

    def policy_set(
        self,
        principal: Asker,
        resource_arn: str,
        *,
        resource_account: str | None = None,
        action: str | None = None,
        overrides: Overrides | None = None,
    ) -> PolicySet:
        """Every policy that applies to ``principal`` acting on ``resource_arn``, overrides applied.

        ``action`` (optional) decides whether a role's trust policy is the resource policy (only
        for ``sts:`` actions).
        """
        if isinstance(principal, Outsider):
            ps = self._outsider_policy_set(resource_arn, action, resource_account)
            return overrides.apply(ps) if overrides is not None else ps
        p, entity = self._principal(principal)
        identity, boundary, errors = self._identity_policies(p, entity, cache=not isinstance(principal, StandIn))
        errs = list(errors)
        resource_np, restrict, holder, lookup, grants = self._resource_policy(resource_arn, action, errs)
        racct = resource_account or self.index.account_of.get(lookup) or account_of(resource_arn) or p.account
        scps: tuple[tuple[NamedPolicy, ...], ...] = ()
        scp_levels: tuple[OrgLevelRef, ...] = ()
        if p.is_iam and not p.is_service_linked_role:
            scps, e = self._chain(p.account, "scp")
            errs.extend(e)
            scp_levels = self._levels_of(p.account, "scp")
        rcps, rcp_levels = self._rcps_for(holder, racct, errs)
        ps = PolicySet(
            identity=identity,
            resource=resource_np,
            permission_boundary=boundary if p.is_iam else None,
            scps=scps,
            rcps=rcps,
            kms_grants=grants,
            aws_managed_resource=_aws_managed_key(holder),
            scp_levels=scp_levels,
            rcp_levels=rcp_levels,
            restrict_public_buckets=restrict,
            unresolved=tuple(errs),
        )
        return overrides.apply(ps) if overrides is not None else ps

    def _resource_policy(
        self, resource_arn: str, action: str | None, errs: list[EvaluationError]
    ) -> tuple[NamedPolicy | None, bool, Resource | Role | None, str, tuple[NamedPolicy, ...]]:
        """(the resource-based policy, RestrictPublicBuckets, its holder, the ARN it is held under, and for a
        KMS key its grants)."""
        lookup, holder = self._resource(resource_arn, action)
        resource_np: NamedPolicy | None = None
        grants: tuple[NamedPolicy, ...] = ()
        restrict = False
        if isinstance(holder, Role):
            resource_np = named_policy(holder.trust_policy, f"{holder.arn}:trust", PolicyType.RESOURCE)
        elif isinstance(holder, Resource):
            if holder.policy is not None:
                try:
                    resource_np = named_policy(holder.policy, holder.arn, PolicyType.RESOURCE)
                except InputError as exc:
                    errs.append(_err(PolicyType.RESOURCE, holder.arn, str(exc)))
            restrict = self._restrict_public(holder)
            if holder.type == "kms:key":
                grants = self._grants(holder, errs)
        return resource_np, restrict, holder, lookup, grants

    def _rcps_for(
        self, holder: Resource | Role | None, racct: str | None, errs: list[EvaluationError]
    ) -> tuple[tuple[tuple[NamedPolicy, ...], ...], tuple[OrgLevelRef, ...]]:
        """The RCPs of the resource account's chain, with the levels they sit at."""
        # RCPs do not apply to AWS managed KMS keys.
        if _aws_managed_key(holder):
            return (), ()
        rcps, e = self._chain(racct, "rcp")
        errs.extend(e)
        return rcps, self._levels_of(racct, "rcp")

    def _outsider_policy_set(
        self, resource_arn: str, action: str | None, resource_account: str | None
    ) -> PolicySet:
        errs: list[EvaluationError] = []
        resource_np, restrict, holder, lookup, grants = self._resource_policy(resource_arn, action, errs)
        racct = resource_account or self.index.account_of.get(lookup) or account_of(resource_arn)
        rcps, rcp_levels = self._rcps_for(holder, racct, errs)
        return PolicySet(
            identity=(ALLOW_ALL,),
            resource=resource_np,
            rcps=rcps,
            kms_grants=grants,
            aws_managed_resource=_aws_managed_key(holder),
            rcp_levels=rcp_levels,
            restrict_public_buckets=restrict,
            unresolved=tuple(errs),
        )

    def _grants(self, key: Resource, errs: list[EvaluationError]) -> tuple[NamedPolicy, ...]:
        # The key's grants (ListGrants entries, collected or imported) count with its key policy.
        out: list[NamedPolicy] = []
        raw = key.attributes.get("grants") or []
        for i, grant in enumerate(raw if isinstance(raw, list) else []):
            try:
                out.append(grant_policy(grant, key.arn, f"grants[{i}]"))
            except InputError as exc:
                errs.append(_err(PolicyType.RESOURCE, f"{key.arn}:grants[{i}]", str(exc)))
        return tuple(out)

    def _restrict_public(self, res: Resource) -> bool:
        return res.type == "s3:bucket" and "RestrictPublicBuckets" in self.block_public_access(res.arn)

    def block_public_access(self, bucket: str) -> frozenset[str]:
        """The S3 Block Public Access settings on for ``bucket``: either the bucket's or its account's turns a
        setting on (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html).
        The one reading of them: the engine applies RestrictPublicBuckets, the graph the others."""
        res = self.index.resources.get(bucket)
        if res is None or res.type != "s3:bucket":
            return frozenset()
        on: set[str] = set()
        acct = self.index.accounts.get(self.index.account_of.get(bucket, ""))
        for level in (res.attributes.get("public_access_block"), acct.public_access_block if acct else None):
            if isinstance(level, Mapping):
                on.update(k for k, v in level.items() if v is True)
        return frozenset(on)

    # ------------------------------------------------------------------ context

    def principal_context(self, principal: Asker) -> dict[str, Any]:
        """The keys AWS sets for this principal (keys lower-cased; condition keys are case-insensitive).

        Nothing for an outsider: its ARN may stand for any principal of an account."""
        if isinstance(principal, Outsider):
            return {}
        principal_arn = principal.entity.arn if isinstance(principal, StandIn) else principal
        hit = self._pctx.get(principal_arn) if isinstance(principal, str) else None
        if hit is not None:
            return dict(hit)
        p, entity = self._principal(principal)
        ctx: dict[str, Any] = {}
        if p.is_iam:
            ctx["aws:principalaccount"] = p.account
            ctx["aws:principalisawsservice"] = False
            if isinstance(entity, User):
                ctx["aws:principalarn"] = entity.arn
                ctx["aws:principaltype"] = "User"
                ctx["aws:username"] = entity.name
                ctx["aws:userid"] = entity.user_id
            elif isinstance(entity, Role):
                ctx["aws:principalarn"] = entity.arn
                ctx["aws:principaltype"] = "AssumedRole"
                if p.session_name is not None:
                    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable
                    ctx["aws:userid"] = f"{entity.role_id}:{p.session_name}"
            elif p.kind == PrincipalKind.ROOT:
                ctx["aws:principalarn"] = p.arn
                ctx["aws:principaltype"] = "Account"
                ctx["aws:userid"] = p.account
            elif p.kind == PrincipalKind.FEDERATED_USER:
                ctx["aws:principalarn"] = p.arn
                ctx["aws:principaltype"] = "FederatedUser"
                ctx["aws:userid"] = f"{p.account}:{p.user_name}"
            if entity is not None:
                for k, v in entity.tags.items():
                    ctx[f"aws:principaltag/{k.lower()}"] = v
            org = self.index.snapshot.organization
            if org is not None and p.account is not None and self.index.org_chain(p.account):
                ctx["aws:principalorgid"] = org.id
                paths = self._org_paths(p.account)
                if paths:
                    ctx["aws:principalorgpaths"] = paths
        elif p.kind == PrincipalKind.SERVICE and p.raw.endswith(".amazonaws.com"):
            ctx["aws:principalisawsservice"] = True
            ctx["aws:principalservicename"] = p.raw
        if isinstance(principal, str):
            self._pctx[principal_arn] = ctx
        return dict(ctx)

    def resource_context(self, resource_arn: str, resource_account: str | None = None) -> dict[str, Any]:
        """aws:ResourceAccount, aws:ResourceOrgID/OrgPaths and aws:ResourceTag/* when the snapshot knows them."""
        key = (resource_arn, resource_account)
        hit = self._rctx.get(key)
        if hit is None:
            hit = self._resource_context(resource_arn, resource_account)
            if len(self._rctx) > 100_000:
                self._rctx.clear()
            self._rctx[key] = hit
        return dict(hit)

    def _resource_context(self, resource_arn: str, resource_account: str | None) -> dict[str, Any]:
        lookup, holder = self._resource(resource_arn, "sts:AssumeRole")
        ctx: dict[str, Any] = {}
        racct = resource_account or self.index.account_of.get(lookup) or account_of(resource_arn)
        if racct:
            ctx["aws:resourceaccount"] = racct
            org = self.index.snapshot.organization
            if org is not None and self.index.org_chain(racct):
                ctx["aws:resourceorgid"] = org.id
                paths = self._org_paths(racct)
                if paths:
                    ctx["aws:resourceorgpaths"] = paths
        tags: dict[str, str] = {}
        iam_entity = False
        if isinstance(holder, Resource) and lookup == resource_arn:
            # An S3 object's tags are not its bucket's (objects have s3:ExistingObjectTag/*), so
            # bucket tags describe the bucket ARN only.
            tags = holder.tags
        elif isinstance(holder, Role):
            tags, iam_entity = holder.tags, True
        elif resource_arn in self.index.users:
            tags, iam_entity = self.index.users[resource_arn].tags, True
        for k, v in tags.items():
            ctx[f"aws:resourcetag/{k.lower()}"] = v
            if iam_entity:
                # IAM also names the tags of users and roles iam:ResourceTag/*
                # (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_iam-tags.html).
                ctx[f"iam:resourcetag/{k.lower()}"] = v
        return ctx

    def _known_absent(self, ctx: dict[str, Any], ps: PolicySet, principal: Asker, resource_arn: str,
                      resource_account: str | None, action: str) -> None:
        """``_absent_tags``, kept per principal, resource and policy set: callers ask many actions under one set
        (the recommender's replay, the unused analysis, the graph's memo), and the keys found absent depend on
        those alone (the context before them is the principal's and the resource's). The report on the demo
        organization decides 16,544 times for a principal ARN, for 6,101 distinct answers."""
        if not isinstance(principal, str):
            self._absent_tags(ctx, ps, principal, resource_arn, action)
            return
        key = (principal, resource_arn, resource_account, id(ps))
        hit = self._absent.get(key)
        if hit is None or hit[0] is not ps:
            before = set(ctx)
            self._absent_tags(ctx, ps, principal, resource_arn, action)
            if len(self._absent) >= _MAX_ABSENT:
                self._absent.clear()
            self._absent[key] = (ps, tuple(k for k in ctx if k not in before))
            return
        for k in hit[1]:
            ctx[k] = None

    def _absent_tags(
        self, ctx: dict[str, Any], ps: PolicySet, principal: Asker, resource_arn: str, action: str
    ) -> None:
        """Tags the policies ask about that the snapshot's principal or resource does not have.

        A snapshot holds every tag of the principals and resources it holds, so such a tag is known
        to be absent (None), not unknown: discovery mode then need not leave it as a residual. For
        an S3 object, the resource tags asked about are known absent when its bucket lacks them.
        """
        entity = None if isinstance(principal, Outsider) else self._principal(principal)[1]
        # Tags belong to the thing named, whatever the action (a role's tags, not its trust policy's).
        lookup, holder = self._resource(resource_arn, "sts:AssumeRole")
        tags: set[str] | None = None
        if isinstance(holder, Resource | Role):
            tags = {k.lower() for k in holder.tags}
        elif resource_arn in self.index.users:
            tags = {k.lower() for k in self.index.users[resource_arn].tags}
        elif lookup != resource_arn and lookup in self.index.resources:
            tags = {k.lower() for k in self.index.resources[lookup].tags}
        if entity is None and tags is None:
            return
        ptags = {k.lower() for k in entity.tags} if entity is not None else set()
        for np in _policies(ps):
            for key in compiled(np.policy).referenced_keys:
                if key in ctx:
                    continue
                if entity is not None and key.startswith(_PRINCIPAL_TAG):
                    if key[len(_PRINCIPAL_TAG):] not in ptags:
                        ctx[key] = None
                elif tags is not None and key.startswith(_RESOURCE_TAGS) and key.split("/", 1)[1] not in tags:
                    ctx[key] = None

    # ------------------------------------------------------------------ the question

    def ask(
        self,
        principal: Asker,
        action: str,
        resource_arn: str,
        *,
        context: Mapping[str, ContextValue] | None = None,
        mode: Mode = Mode.STRICT,
        resource_account: str | None = None,
        overrides: Overrides | None = None,
    ) -> Decision:
        """May ``principal`` perform ``action`` on ``resource_arn``? The one question every layer
        above the engine asks about a snapshot.

        The policies come from the snapshot (``policy_set``) with ``overrides`` applied; the context
        AWS would fill in (principal ARN, account, tags, organization, resource account and tags,
        tags known to be absent) is derived from the snapshot, and keys in ``context`` take
        precedence. Nothing shared is changed, so questions may run concurrently.
        """
        policies = self.policy_set(
            principal, resource_arn, resource_account=resource_account, action=action, overrides=overrides
        )
        return self.decide(principal, action, resource_arn, policies, context=context, mode=mode,
                           resource_account=resource_account)

    def decide(
        self,
        principal: Asker,
        action: str,
        resource_arn: str,
        policies: PolicySet,
        *,
        context: Mapping[str, ContextValue] | None = None,
        mode: Mode = Mode.STRICT,
        resource_account: str | None = None,
    ) -> Decision:
        """``ask`` with a policy set already fetched by ``policy_set`` (the graph's memo fetches it
        once for many requests). The one place that fills the request context."""
        if isinstance(principal, Outsider) and policies.resource is None:
            return Decision(decision=DecisionKind.IMPLICITLY_DENIED)
        ctx = self.principal_context(principal)
        ctx.update(self.resource_context(resource_arn, resource_account))
        self._known_absent(ctx, policies, principal, resource_arn, resource_account, action)
        if context:
            for k, v in context.items():
                ctx[k.lower()] = v
        racct = resource_account or ctx.get("aws:resourceaccount")
        request = Request(
            principal=_arn_of(principal),
            action=action,
            resource=resource_arn,
            resource_account=str(racct) if racct else None,
            context=ctx,
        )
        return authorize(request, policies, mode=mode)


def ask_policies(
    principal: str,
    action: str,
    resource: str,
    *,
    identity: tuple[NamedPolicy, ...] = (),
    resource_policy: NamedPolicy | None = None,
    resource_account: str | None = None,
    context: Mapping[str, ContextValue] | None = None,
    mode: Mode = Mode.STRICT,
) -> Decision:
    """The question about explicit policies alone, with nothing taken from a snapshot: what a policy
    document under review allows (``check`` without a snapshot, the recommender's statement matcher).
    Only the supplied context is known; everything else is left to the mode (discovery: residual)."""
    request = Request(principal=principal, action=action, resource=resource, resource_account=resource_account,
                      context={k.lower(): v for k, v in (context or {}).items()})
    return authorize(request, PolicySet(identity=identity, resource=resource_policy), mode=mode)


def _aws_managed_key(holder: Resource | Role | None) -> bool:
    return isinstance(holder, Resource) and holder.attributes.get("key_manager") == "AWS"


def _arn_of(principal: Asker) -> str:
    if isinstance(principal, StandIn):
        return principal.entity.arn
    if isinstance(principal, Outsider):
        return principal.arn
    return principal


_PRINCIPAL_TAG = "aws:principaltag/"
_RESOURCE_TAGS = ("aws:resourcetag/", "iam:resourcetag/")


def _policies(ps: PolicySet) -> list[NamedPolicy]:
    out = list(ps.identity)
    out.extend(p for p in (ps.resource, ps.permission_boundary, ps.session) if p is not None)
    for levels in (ps.scps, ps.rcps):
        for level in levels:
            out.extend(level)
    return out


_DENY_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotAction": "*:*", "NotResource": "*"}]}


def _err(ptype: PolicyType, pid: str, message: str) -> EvaluationError:
    return EvaluationError(policy_type=ptype, policy_id=pid, statement_index=None, message=message)
