"""KMS grants as the key-policy statements they amount to.

A grant lets its grantee principal call the listed grant operations on one KMS key, alongside the
key policy (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html). It only allows, so
it is evaluated as one more Allow of the key's resource-based policy, naming the grantee as a key
policy would: a grant to a role serves the role's sessions, a grant to an account is delegated to
that account's IAM policies, and explicit denies elsewhere still win.

Constraints become conditions
(https://docs.aws.amazon.com/kms/latest/APIReference/API_GrantConstraints.html):
``EncryptionContextSubset`` -- every pair present (``kms:EncryptionContext:<key>`` equals the
value; keys are case-insensitive, values case-sensitive); ``EncryptionContextEquals`` -- the same,
and no other key (``kms:EncryptionContextKeys``). They apply only to the cryptographic operations
that take an encryption context, not to ``DescribeKey``, ``RetireGrant`` or the like.
``SourceArn`` (grants to a service principal) becomes ``aws:SourceArn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iamgraph.errors import InputError
from iamgraph.eval.engine import named_policy
from iamgraph.eval.types import NamedPolicy, PolicyType

WITH_ENCRYPTION_CONTEXT = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    }
)
"""Grant operations that take an encryption context, where constraints apply."""


def grant_policy(grant: Any, key_arn: str, where: str) -> NamedPolicy:
    """The grant (a ListGrants entry) as a resource-based policy of the key; named
    ``<key ARN>:grant/<GrantId>``. Raises :class:`InputError` at ``where`` for a malformed grant."""
    if not isinstance(grant, Mapping):
        raise InputError("a grant must be an object (a ListGrants entry)", location=where)
    grant_id = grant.get("GrantId")
    ops = grant.get("Operations")
    if not isinstance(ops, list) or not ops or not all(isinstance(o, str) and o for o in ops):
        raise InputError("Operations must be a non-empty list of grant operation names", location=f"{where}.Operations")
    principal: dict[str, str]
    if isinstance(grant.get("GranteeServicePrincipal"), str):
        principal = {"Service": grant["GranteeServicePrincipal"]}
    elif isinstance(grant.get("GranteePrincipal"), str) and grant["GranteePrincipal"]:
        grantee = grant["GranteePrincipal"]
        principal = {"Service": grantee} if grantee.endswith(".amazonaws.com") else {"AWS": grantee}
    else:
        raise InputError("a grant names its GranteePrincipal or GranteeServicePrincipal", location=where)
    constraints = grant.get("Constraints") or {}
    if not isinstance(constraints, Mapping):
        raise InputError("Constraints must be an object", location=f"{where}.Constraints")
    common: dict[str, Any] = {}
    source_arn = constraints.get("SourceArn")
    if source_arn is not None:
        common["ArnEquals"] = {"aws:SourceArn": source_arn}
    context: dict[str, Any] = {}
    for kind in ("EncryptionContextSubset", "EncryptionContextEquals"):
        pairs = constraints.get(kind)
        if pairs is None:
            continue
        if not isinstance(pairs, Mapping) or not all(isinstance(v, str) for v in pairs.values()):
            raise InputError(f"{kind} must map strings to strings", location=f"{where}.Constraints.{kind}")
        context.setdefault("StringEquals", {}).update({f"kms:EncryptionContext:{k}": v for k, v in pairs.items()})
        if kind == "EncryptionContextEquals":
            context["ForAllValues:StringEqualsIgnoreCase"] = {"kms:EncryptionContextKeys": sorted(pairs)}
    constrained = sorted({o for o in ops if o in WITH_ENCRYPTION_CONTEXT}) if context else []
    free = sorted(set(ops) - set(constrained))
    statements = []
    for names, condition in ((free, common), (constrained, {**common, **context})):
        if not names:
            continue
        st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": [f"kms:{o}" for o in names],
                              "Resource": "*"}
        if condition:
            st["Condition"] = condition
        statements.append(st)
    doc = {"Version": "2012-10-17", "Statement": statements}
    pid = f"{key_arn}:grant/{grant_id}" if isinstance(grant_id, str) else f"{key_arn}:{where}"
    try:
        return named_policy(doc, pid, PolicyType.RESOURCE)
    except InputError as exc:
        raise InputError(exc.message, location=where) from None
