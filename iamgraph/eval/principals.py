"""Who is asking: the request principal, and how a Principal/NotPrincipal element names it.

Principal forms: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
How the named form changes the same-account outcome (user ARN vs role ARN vs role session ARN vs
federated user session ARN vs account):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from iamgraph.errors import InputError
from iamgraph.model.arn import arn_parts, is_account_id
from iamgraph.model.policy import PrincipalSpec
from iamgraph.model.slots import maker


class PrincipalKind(StrEnum):
    USER = "User"
    ROLE = "Role"
    """A role ARN given as the principal: evaluated as a session of that role whose name is unknown."""
    ASSUMED_ROLE = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    ROOT = "Account"
    ANONYMOUS = "Anonymous"
    SERVICE = "Service"
    """An AWS service principal (``lambda.amazonaws.com``) or a web identity / SAML provider."""


class Strength(IntEnum):
    """How directly a matching Principal entry names the caller (higher is more direct)."""

    NONE = 0
    ACCOUNT = 1
    """The account (``123456789012`` or ``arn:aws:iam::123456789012:root``): access is delegated to
    the account, whose identity-based policies must then allow it."""
    ROLE = 2
    """The role of a role session (or the IAM user of a federated user session): limited by an
    implicit deny in a permissions boundary or session policy."""
    DIRECT = 3
    """The caller itself (IAM user ARN, session ARN, ``*``): not limited by implicit denies of the
    identity side within the same account."""


_SERVICE_LINKED_PATH = "aws-service-role/"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestPrincipal:
    raw: str
    kind: PrincipalKind
    partition: str = "aws"
    account: str | None = None
    arn: str | None = None
    """The caller's own ARN (session ARN for sessions)."""
    role_name: str | None = None
    role_arn: str | None = None
    """For roles and role sessions: ``arn:aws:iam::A:role/NAME`` (path unknown unless given)."""
    user_name: str | None = None
    session_name: str | None = None
    is_iam: bool = False
    """An IAM identity of an account (subject to SCPs and identity-side policies)."""
    is_service_linked_role: bool = False

    def __post_init__(self) -> None:
        iam, slr = _derived(self.kind, self.role_arn)
        object.__setattr__(self, "is_iam", iam)
        object.__setattr__(self, "is_service_linked_role", slr)

    @property
    def principal_arn(self) -> str | None:
        """The value of ``aws:PrincipalArn``: the role ARN for role sessions, else the caller ARN."""
        if self.kind in (PrincipalKind.ROLE, PrincipalKind.ASSUMED_ROLE):
            return self.role_arn
        return self.arn


_IAM_KINDS = frozenset({PrincipalKind.USER, PrincipalKind.ROLE, PrincipalKind.ASSUMED_ROLE,
                        PrincipalKind.FEDERATED_USER, PrincipalKind.ROOT})


def _derived(kind: PrincipalKind, role_arn: str | None) -> tuple[bool, bool]:
    """``is_iam`` and ``is_service_linked_role`` of a principal of ``kind`` with ``role_arn``."""
    # Service-linked roles live under the path /aws-service-role/
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html).
    return kind in _IAM_KINDS, role_arn is not None and f":role/{_SERVICE_LINKED_PATH}" in role_arn


_make_principal = maker(RequestPrincipal, caller_derives=True)


def _principal(raw: str, kind: PrincipalKind, *, partition: str = "aws", account: str | None = None,
               arn: str | None = None, role_name: str | None = None, role_arn: str | None = None,
               user_name: str | None = None, session_name: str | None = None) -> RequestPrincipal:
    """``RequestPrincipal(...)`` for ``_classify``, made once per distinct principal of a batch (slots.py)."""
    iam, slr = _derived(kind, role_arn)
    return _make_principal(raw=raw, kind=kind, partition=partition, account=account, arn=arn, role_name=role_name,
                           role_arn=role_arn, user_name=user_name, session_name=session_name, is_iam=iam,
                           is_service_linked_role=slr)


_CACHE: dict[str, RequestPrincipal] = {}
_SESSIONS: dict[str, RequestPrincipal] = {}
"""A session of each role seen, by its ARN up to the session name (``arn:aws:sts::A:assumed-role/NAME/``)."""


def classify(principal: str, *, role_arn: str | None = None) -> RequestPrincipal:
    """Parse a request principal. ``role_arn`` (with its path) refines an assumed-role session."""
    key = principal if role_arn is None else f"{principal}\0{role_arn}"
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    if role_arn is None and type(principal) is str:
        # Requests of one role come from many sessions (a session name per caller or per run): a new session
        # of a role seen before is the principal of that session but for its own ARN and name, which follow the
        # last "/" (``_classify`` reads the role, account and partition before it; a session name holds no "/").
        head, _, session = principal.rpartition("/")
        seen = _SESSIONS.get(head) if session else None
        if seen is not None:
            return _make_principal(raw=principal, kind=seen.kind, partition=seen.partition, account=seen.account,
                                   arn=principal, role_name=seen.role_name, role_arn=seen.role_arn,
                                   user_name=seen.user_name, session_name=session, is_iam=seen.is_iam,
                                   is_service_linked_role=seen.is_service_linked_role)
    out = _classify(principal, role_arn)
    if role_arn is None and out.kind is PrincipalKind.ASSUMED_ROLE:
        # Kept by role rather than by session: sessions are many and mostly asked about once.
        if len(_SESSIONS) > 4096:
            _SESSIONS.clear()
        _SESSIONS[principal.rpartition("/")[0]] = out
        return out
    if len(_CACHE) > 50_000:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def _classify(principal: str, role_arn: str | None) -> RequestPrincipal:
    if not isinstance(principal, str) or not principal.strip():
        raise InputError("the request principal must be a non-empty string", location="request.principal")
    if principal == "anonymous" or principal == "*":
        return _principal(principal, PrincipalKind.ANONYMOUS)
    if not principal.startswith("arn:"):
        if " " in principal or ("/" in principal and "." not in principal):
            raise InputError(
                f"{principal!r} is not a principal: expected an ARN, 'anonymous' or a service principal",
                location="request.principal",
            )
        return _principal(principal, PrincipalKind.SERVICE, arn=principal)
    arn = arn_parts(principal)
    if arn is None:
        raise InputError(f"{principal!r} is not a valid ARN", location="request.principal")
    _, partition, service, _, account, res = arn
    acct = account if is_account_id(account) else None
    if service == "iam" and acct is not None:
        if res == "root":
            return _principal(principal, PrincipalKind.ROOT, partition=partition,
                                    account=acct, arn=principal)
        if res.startswith("user/"):
            return _principal(principal, PrincipalKind.USER, partition=partition,
                                    account=acct, arn=principal, user_name=res.rsplit("/", 1)[-1])
        if res.startswith("role/"):
            return _principal(principal, PrincipalKind.ROLE, partition=partition,
                                    account=acct, arn=principal, role_arn=principal,
                                    role_name=res.rsplit("/", 1)[-1])
        if res.startswith(("saml-provider/", "oidc-provider/")):
            return _principal(principal, PrincipalKind.SERVICE, partition=partition,
                                    account=acct, arn=principal)
    if service == "sts" and acct is not None:
        parts = res.split("/")
        if parts[0] == "assumed-role" and len(parts) >= 3 and parts[1] and parts[-1]:
            name = parts[1]
            rarn = role_arn or f"arn:{partition}:iam::{acct}:role/{name}"
            return _principal(principal, PrincipalKind.ASSUMED_ROLE, partition=partition,
                                    account=acct, arn=principal, role_arn=rarn, role_name=name,
                                    session_name=parts[-1])
        if parts[0] == "federated-user" and len(parts) == 2 and parts[1]:
            return _principal(principal, PrincipalKind.FEDERATED_USER,
                                    partition=partition, account=acct, arn=principal,
                                    user_name=parts[1])
    raise InputError(
        f"{principal!r} cannot make requests: expected an IAM user, role, assumed-role session, "
        "federated user, account root, 'anonymous' or a service principal",
        location="request.principal",
    )


_ROLE_RE = re.compile(r"^arn:([^:]+):iam::(\d{12}):role/(?:.*/)?([^/]+)$")


def _aws_entry_strength(entry: str, p: RequestPrincipal) -> Strength:
    if entry == "*":
        return Strength.DIRECT
    if p.kind in (PrincipalKind.ANONYMOUS, PrincipalKind.SERVICE):
        return Strength.NONE
    if is_account_id(entry):
        return Strength.ACCOUNT if entry == p.account else Strength.NONE
    if not entry.startswith("arn:"):
        return Strength.NONE
    if p.arn is not None and entry == p.arn and p.kind not in (PrincipalKind.ROLE, PrincipalKind.ROOT):
        return Strength.DIRECT
    parts = entry.split(":", 5)
    if len(parts) != 6 or parts[4] != p.account:
        return Strength.NONE
    if parts[2] == "iam" and parts[5] == "root":
        return Strength.ACCOUNT
    if p.role_name is not None and parts[2] == "iam" and parts[5].startswith("role/"):
        # A role is named by its ARN with path; a session ARN carries no path, so when we only know
        # the session, the role name (unique in its account) decides.
        if p.role_arn is not None and entry == p.role_arn:
            return Strength.ROLE
        m = _ROLE_RE.match(entry)
        if m and m.group(3) == p.role_name and "/" not in (p.role_arn or "").split(":role/", 1)[-1]:
            return Strength.ROLE
    return Strength.NONE


def principal_strength(spec: PrincipalSpec, p: RequestPrincipal) -> Strength:
    """The strongest way ``spec`` (a Principal element) names the caller; NONE if it does not."""
    if spec.wildcard:
        return Strength.DIRECT
    best = Strength.NONE
    for entry in spec.aws:
        s = _aws_entry_strength(entry, p)
        if s > best:
            best = s
            if best == Strength.DIRECT:
                return best
    if p.kind == PrincipalKind.SERVICE:
        low = p.raw.lower()
        for entry in (*spec.service, *spec.federated):
            if entry == "*" or entry.lower() == low:
                return Strength.DIRECT
    if spec.canonical_user and p.raw in spec.canonical_user:
        return Strength.DIRECT
    return best


def not_principal_applies(spec: PrincipalSpec, p: RequestPrincipal) -> bool:
    """Whether a statement with this NotPrincipal applies to the caller.

    AWS checks the account, then the role, then the session, so the caller escapes the statement
    only when every one of those identities is listed
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
    """
    if spec.wildcard or "*" in spec.aws:
        return False
    identities: list[Strength] = []
    if p.kind in (PrincipalKind.ANONYMOUS, PrincipalKind.SERVICE):
        return principal_strength(spec, p) == Strength.NONE
    listed = {_aws_entry_strength(e, p) for e in spec.aws}
    identities.append(Strength.ACCOUNT)
    if p.kind in (PrincipalKind.ROLE, PrincipalKind.ASSUMED_ROLE):
        # The docs' advice is to list the role and its account; naming the role covers its sessions.
        identities.append(Strength.ROLE)
    else:
        identities.append(Strength.DIRECT)
    if p.kind == PrincipalKind.ROOT:
        identities = [Strength.ACCOUNT]
    return not all(s in listed for s in identities)
