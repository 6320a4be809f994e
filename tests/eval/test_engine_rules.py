"""The combining rules: one test per documented rule, with the page it comes from."""

from __future__ import annotations

from typing import Any

import pytest

from iamgraph.eval import (
    DecisionKind,
    Mode,
    NamedPolicy,
    PolicySet,
    PolicyType,
    Request,
    named_policy,
)
from iamgraph.eval.engine import authorize

A = "111122223333"
B = "444455556666"
USER = f"arn:aws:iam::{A}:user/alice"
ROLE = f"arn:aws:iam::{A}:role/app"
SESSION = f"arn:aws:sts::{A}:assumed-role/app/s1"
QUEUE = f"arn:aws:sqs:us-east-1:{A}:orders"
ACTION = "sqs:SendMessage"

ALLOWED, EXPLICIT, IMPLICIT = DecisionKind.ALLOWED, DecisionKind.EXPLICITLY_DENIED, DecisionKind.IMPLICITLY_DENIED


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str = ACTION, resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = ACTION, resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def p(d: dict[str, Any], ptype: PolicyType, pid: str = "") -> NamedPolicy:
    return named_policy(d, pid or ptype.value, ptype)


def decide(
    *,
    principal: str = USER,
    action: str = ACTION,
    resource: str = QUEUE,
    resource_account: str | None = None,
    context: dict[str, Any] | None = None,
    identity: list[dict[str, Any]] | None = None,
    resource_policy: dict[str, Any] | None = None,
    boundary: dict[str, Any] | None = None,
    session: dict[str, Any] | None = None,
    scps: list[list[dict[str, Any]]] | None = None,
    rcps: list[list[dict[str, Any]]] | None = None,
    restrict_public_buckets: bool = False,
    mode: Mode = Mode.STRICT,
):
    ps = PolicySet(
        identity=tuple(p(d, PolicyType.IDENTITY, f"id{i}") for i, d in enumerate(identity or [])),
        resource=p(resource_policy, PolicyType.RESOURCE) if resource_policy else None,
        permission_boundary=p(boundary, PolicyType.PERMISSION_BOUNDARY) if boundary else None,
        session=p(session, PolicyType.SESSION) if session else None,
        scps=tuple(tuple(p(d, PolicyType.SCP, f"scp{i}.{j}") for j, d in enumerate(lv)) for i, lv in enumerate(scps or [])),
        rcps=tuple(tuple(p(d, PolicyType.RCP, f"rcp{i}.{j}") for j, d in enumerate(lv)) for i, lv in enumerate(rcps or [])),
        restrict_public_buckets=restrict_public_buckets,
    )
    req = Request(principal=principal, action=action, resource=resource, resource_account=resource_account,
                  context=context or {})
    return authorize(req, ps, mode=mode)


def rp(principal: Any, action: str = ACTION, resource: str = QUEUE, effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return doc({"Effect": effect, "Principal": principal, "Action": action, "Resource": resource, **extra})


FULL = doc(allow("*"))

# ----------------------------------------------------------------------------- basics
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html


def test_default_is_implicit_deny() -> None:
    d = decide()
    assert d.decision is IMPLICIT and not d.reasons and not d.blocked_by


def test_identity_allow_grants_and_names_the_statement() -> None:
    d = decide(identity=[doc({"Sid": "S", **allow()})])
    assert d.allowed
    (ref,) = d.reasons
    assert (ref.policy_type, ref.policy_id, ref.statement_index, ref.sid) == (PolicyType.IDENTITY, "id0", 0, "S")


@pytest.mark.parametrize("where", ["identity", "resource_policy", "boundary", "session", "scps", "rcps"])
def test_explicit_deny_anywhere_wins(where: str) -> None:
    kwargs: dict[str, Any] = {
        "principal": SESSION,
        "identity": [FULL],
        "resource_policy": rp({"AWS": SESSION}),
        "boundary": FULL,
        "session": FULL,
        "scps": [[FULL]],
        "rcps": [[rp("*", action="*", resource="*")]],
    }
    d0 = decide(**kwargs)
    assert d0.allowed
    deny_doc = doc(deny())
    if where == "resource_policy" or where == "rcps":
        deny_doc = rp("*", effect="Deny", resource="*")
    if where in ("scps", "rcps"):
        kwargs[where] = [[kwargs[where][0][0], deny_doc]]
    elif where == "identity":
        kwargs[where] = [FULL, deny_doc]
    else:
        kwargs[where] = doc(*kwargs[where]["Statement"], *deny_doc["Statement"])
    d = decide(**kwargs)
    assert d.decision is EXPLICIT
    assert d.reasons and all(r.effect == "Deny" for r in d.reasons)


def test_action_wildcards_and_case() -> None:
    assert decide(identity=[doc(allow("SQS:send*"))]).allowed
    assert decide(identity=[doc(allow("sqs:Send?essage"))]).allowed
    assert not decide(identity=[doc(allow("sqs:Receive*"))]).possible
    assert decide(identity=[doc({"Effect": "Allow", "NotAction": "sqs:Delete*", "Resource": "*"})]).allowed
    assert not decide(identity=[doc({"Effect": "Allow", "NotAction": "sqs:*", "Resource": "*"})]).possible


def test_resource_and_notresource() -> None:
    assert decide(identity=[doc(allow(resource=f"arn:aws:sqs:*:{A}:ord*"))]).allowed
    assert not decide(identity=[doc(allow(resource=f"arn:aws:sqs:*:{B}:*"))]).possible
    assert not decide(identity=[doc({"Effect": "Allow", "Action": ACTION, "NotResource": QUEUE})]).possible
    assert decide(identity=[doc({"Effect": "Allow", "Action": ACTION, "NotResource": f"{QUEUE}-x"})]).allowed
    # A wildcard in the account segment does not cross into the resource segment.
    assert decide(identity=[doc(allow(resource="arn:aws:sqs:us-east-1:*:orders"))]).allowed
    assert not decide(identity=[doc(allow(resource="arn:aws:sqs:*:orders"))]).possible


def test_resource_variable_from_principal() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
    pol = doc(allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*"))
    assert decide(identity=[pol], action="s3:GetObject", resource="arn:aws:s3:::home/alice/x").allowed
    assert not decide(identity=[pol], action="s3:GetObject", resource="arn:aws:s3:::home/bob/x").possible
    # A role session has no aws:username: the statement cannot match.
    assert not decide(identity=[pol], principal=SESSION, action="s3:GetObject",
                      resource="arn:aws:s3:::home/alice/x").possible


# ----------------------------------------------------------------------------- same account


def test_same_account_resource_policy_alone_grants_to_named_user() -> None:
    d = decide(resource_policy=rp({"AWS": USER}))
    assert d.allowed and d.reasons[0].policy_type is PolicyType.RESOURCE


def test_same_account_resource_policy_naming_account_needs_identity_allow() -> None:
    assert not decide(resource_policy=rp({"AWS": A})).possible
    assert not decide(resource_policy=rp({"AWS": f"arn:aws:iam::{A}:root"})).possible
    assert decide(resource_policy=rp({"AWS": A}), identity=[doc(allow())]).allowed


def test_user_named_in_resource_policy_is_not_limited_by_boundary() -> None:
    # "resource-based policies that grant permissions to an IAM user ARN ... are not limited by an
    # implicit deny in an identity-based policy or permissions boundary"
    d = decide(resource_policy=rp({"AWS": USER}), boundary=doc(allow("s3:*")))
    assert d.allowed


def test_identity_grant_is_limited_by_boundary() -> None:
    d = decide(identity=[FULL], boundary=doc(allow("s3:*")))
    assert d.decision is IMPLICIT and PolicyType.PERMISSION_BOUNDARY in d.blocked_by


def test_role_arn_in_resource_policy_is_limited_by_boundary_and_session_policy() -> None:
    # "Resource-based policies that grant permissions to an IAM role ARN are limited by an implicit
    # deny in a permissions boundary or session policy."
    assert decide(principal=SESSION, resource_policy=rp({"AWS": ROLE})).allowed
    d = decide(principal=SESSION, resource_policy=rp({"AWS": ROLE}), boundary=doc(allow("s3:*")))
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.PERMISSION_BOUNDARY,)
    d = decide(principal=SESSION, resource_policy=rp({"AWS": ROLE}), session=doc(allow("s3:*")))
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.SESSION,)


def test_session_arn_in_resource_policy_is_not_limited_by_boundary_or_session_policy() -> None:
    # "Permissions granted directly to a session are not limited by an implicit deny in an
    # identity-based policy, a permissions boundary, or session policy."
    d = decide(principal=SESSION, resource_policy=rp({"AWS": SESSION}), boundary=doc(allow("s3:*")),
               session=doc(allow("s3:*")))
    assert d.allowed


def test_role_principal_is_a_session_of_itself() -> None:
    assert decide(principal=ROLE, resource_policy=rp({"AWS": ROLE})).allowed
    assert not decide(principal=ROLE, resource_policy=rp({"AWS": ROLE}), boundary=doc(allow("s3:*"))).possible


def test_role_arn_with_path_matches_session() -> None:
    pol = rp({"AWS": f"arn:aws:iam::{A}:role/team/app"})
    assert decide(principal=SESSION, resource_policy=pol).allowed


def test_federated_user_session_named_directly() -> None:
    fed = f"arn:aws:sts::{A}:federated-user/bob"
    assert decide(principal=fed, resource_policy=rp({"AWS": fed}), session=doc(allow("s3:*"))).allowed
    assert not decide(principal=fed, identity=[FULL], session=doc(allow("s3:*"))).possible


def test_session_policy_limits_identity_grant() -> None:
    assert not decide(principal=SESSION, identity=[FULL], session=doc(allow("s3:*"))).possible
    assert decide(principal=SESSION, identity=[FULL], session=doc(allow())).allowed


def test_root_user_has_full_access_in_own_account_but_scps_apply() -> None:
    root = f"arn:aws:iam::{A}:root"
    assert decide(principal=root).allowed
    d = decide(principal=root, scps=[[doc(allow("s3:*"))]])
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.SCP,)
    assert decide(principal=root, resource_policy=rp("*", effect="Deny")).decision is EXPLICIT


# ----------------------------------------------------------------------------- cross account
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html

OTHER_QUEUE = f"arn:aws:sqs:us-east-1:{B}:orders"


def test_cross_account_needs_both_sides() -> None:
    rpol = rp({"AWS": USER}, resource=OTHER_QUEUE)
    d = decide(resource=OTHER_QUEUE, resource_policy=rpol)
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.IDENTITY,)
    d = decide(resource=OTHER_QUEUE, identity=[FULL])
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.RESOURCE,)
    assert decide(resource=OTHER_QUEUE, identity=[FULL], resource_policy=rpol).allowed
    assert decide(resource=OTHER_QUEUE, identity=[FULL], resource_policy=rp({"AWS": A}, resource=OTHER_QUEUE)).allowed


def test_cross_account_session_named_directly_still_needs_identity_and_boundary() -> None:
    rpol = rp({"AWS": SESSION}, resource=OTHER_QUEUE)
    assert not decide(principal=SESSION, resource=OTHER_QUEUE, resource_policy=rpol).possible
    d = decide(principal=SESSION, resource=OTHER_QUEUE, resource_policy=rpol, identity=[FULL],
               boundary=doc(allow("s3:*")))
    assert d.decision is IMPLICIT and PolicyType.PERMISSION_BOUNDARY in d.blocked_by


def test_resource_account_from_request_for_s3() -> None:
    obj = "arn:aws:s3:::shared/key"
    rpol = rp({"AWS": USER}, action="s3:GetObject", resource="arn:aws:s3:::shared/*")
    assert decide(action="s3:GetObject", resource=obj, resource_policy=rpol).allowed  # same account assumed
    assert not decide(action="s3:GetObject", resource=obj, resource_policy=rpol, resource_account=B).possible


# ----------------------------------------------------------------------------- SCPs and RCPs
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html


def test_every_scp_level_needs_an_allow() -> None:
    levels = [[FULL], [doc(allow("sqs:*"))], [FULL]]
    assert decide(identity=[FULL], scps=levels).allowed
    levels[1] = [doc(allow("s3:*"))]
    d = decide(identity=[FULL], scps=levels)
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.SCP,)


def test_scps_do_not_apply_to_service_linked_roles_or_services() -> None:
    slr = f"arn:aws:iam::{A}:role/aws-service-role/sqs.amazonaws.com/AWSServiceRoleForX"
    assert decide(principal=slr, identity=[FULL], scps=[[doc(allow("s3:*"))]]).allowed
    svc_rp = rp({"Service": "sns.amazonaws.com"})
    assert decide(principal="sns.amazonaws.com", resource_policy=svc_rp, scps=[[doc(allow("s3:*"))]]).allowed


def test_scps_do_not_grant() -> None:
    assert not decide(scps=[[FULL]]).possible


def test_rcp_levels_apply_to_supported_services_only() -> None:
    rcp_s3_only = doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})
    d = decide(identity=[FULL], rcps=[[rcp_s3_only]])
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.RCP,)  # SQS supports RCPs
    # EC2 does not support RCPs: they are not evaluated at all.
    assert decide(identity=[FULL], action="ec2:DescribeInstances", resource="*", rcps=[[rcp_s3_only]]).allowed


def test_rcp_deny_blocks_outside_principals() -> None:
    perimeter = doc(
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*",
         "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}},
    )
    outsider = f"arn:aws:iam::{B}:user/eve"
    rpol = rp({"AWS": outsider})
    assert decide(principal=outsider, identity=[FULL], resource_policy=rpol, resource_account=A).allowed
    d = decide(principal=outsider, identity=[FULL], resource_policy=rpol, rcps=[[perimeter]])
    assert d.decision is EXPLICIT and d.blocked_by == (PolicyType.RCP,)
    ok = decide(principal=outsider, identity=[FULL], resource_policy=rpol, rcps=[[perimeter]],
                context={"aws:PrincipalOrgID": "o-1"})
    assert ok.allowed


# ----------------------------------------------------------------------------- KMS and trust policies

KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_kms_needs_key_policy() -> None:
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
    assert not decide(action="kms:Decrypt", resource=KEY, identity=[FULL]).possible
    root_delegation = rp({"AWS": f"arn:aws:iam::{A}:root"}, action="kms:*", resource="*")
    assert decide(action="kms:Decrypt", resource=KEY, identity=[FULL], resource_policy=root_delegation).allowed
    # Delegation to the account alone grants nothing without an identity policy.
    assert not decide(action="kms:Decrypt", resource=KEY, resource_policy=root_delegation).possible
    direct = rp({"AWS": USER}, action="kms:Decrypt", resource="*")
    assert decide(action="kms:Decrypt", resource=KEY, resource_policy=direct).allowed
    # Without a key policy even the root user has no access.
    assert not decide(principal=f"arn:aws:iam::{A}:root", action="kms:Decrypt", resource=KEY).possible


TARGET = f"arn:aws:iam::{A}:role/target"


def test_trust_policy_naming_user_needs_no_identity_policy_same_account() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_compare-resource-policies.html
    trust = doc({"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "sts:AssumeRole"})
    assert decide(action="sts:AssumeRole", resource=TARGET, resource_policy=trust).allowed
    trust_acct = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "sts:AssumeRole"})
    assert not decide(action="sts:AssumeRole", resource=TARGET, resource_policy=trust_acct).possible
    assert decide(action="sts:AssumeRole", resource=TARGET, resource_policy=trust_acct,
                  identity=[doc(allow("sts:AssumeRole"))]).allowed
    # An identity policy alone cannot assume a role whose trust policy does not allow it.
    assert not decide(action="sts:AssumeRole", resource=TARGET, identity=[FULL]).possible


def test_service_assumes_role_through_trust_policy() -> None:
    trust = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
    assert decide(principal="lambda.amazonaws.com", action="sts:AssumeRole", resource=TARGET,
                  resource_policy=trust).allowed
    assert not decide(principal="ec2.amazonaws.com", action="sts:AssumeRole", resource=TARGET,
                      resource_policy=trust).possible


# ----------------------------------------------------------------------------- principals


def test_anonymous_only_through_wildcard_principal() -> None:
    assert decide(principal="anonymous", resource_policy=rp("*")).allowed
    assert decide(principal="anonymous", resource_policy=rp({"AWS": "*"})).allowed
    assert not decide(principal="anonymous", resource_policy=rp({"AWS": A})).possible
    assert not decide(principal="anonymous", identity=[FULL]).possible


def test_not_principal_deny_spares_only_fully_listed_callers() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
    def pol(listed: list[str]) -> dict[str, Any]:
        return doc(
            {"Effect": "Deny", "NotPrincipal": {"AWS": listed}, "Action": "sqs:*", "Resource": QUEUE},
            {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": QUEUE},
        )

    assert decide(resource_policy=pol([USER, f"arn:aws:iam::{A}:root"])).allowed
    assert decide(resource_policy=pol([USER])).decision is EXPLICIT  # account not listed
    assert decide(principal=SESSION, resource_policy=pol([ROLE, f"arn:aws:iam::{A}:root"])).allowed
    assert decide(principal=SESSION, resource_policy=pol([SESSION, f"arn:aws:iam::{A}:root"])).decision is EXPLICIT


def test_not_principal_deny_always_applies_with_a_boundary() -> None:
    pol = doc(
        {"Effect": "Deny", "NotPrincipal": {"AWS": [USER, f"arn:aws:iam::{A}:root"]}, "Action": "sqs:*",
         "Resource": QUEUE},
    )
    assert decide(identity=[FULL], resource_policy=pol).allowed
    assert decide(identity=[FULL], resource_policy=pol, boundary=FULL).decision is EXPLICIT


# ----------------------------------------------------------------------------- S3 Block Public Access

BUCKET_OBJ = "arn:aws:s3:::public-bucket/index.html"


def test_restrict_public_buckets_blocks_anonymous_and_other_accounts() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html
    public = rp("*", action="s3:GetObject", resource="arn:aws:s3:::public-bucket/*")
    kw: dict[str, Any] = {"action": "s3:GetObject", "resource": BUCKET_OBJ, "resource_account": A,
                          "resource_policy": public}
    assert decide(principal="anonymous", **kw).allowed
    assert not decide(principal="anonymous", restrict_public_buckets=True, **kw).possible
    outsider = f"arn:aws:iam::{B}:user/eve"
    assert not decide(principal=outsider, identity=[FULL], restrict_public_buckets=True, **kw).possible
    assert decide(principal=USER, restrict_public_buckets=True, **kw).allowed  # same account
    pinned = rp("*", action="s3:GetObject", resource="arn:aws:s3:::public-bucket/*",
                Condition={"StringEquals": {"aws:PrincipalAccount": B}})
    kw["resource_policy"] = pinned
    assert decide(principal=outsider, identity=[FULL], restrict_public_buckets=True,
                  context={"aws:PrincipalAccount": B}, **kw).allowed


# ----------------------------------------------------------------------------- discovery mode


def test_deny_on_unknown_key_gives_negated_residual() -> None:
    d = decide(
        identity=[FULL, doc(deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))],
        mode=Mode.DISCOVERY,
    )
    assert d.conditional
    ((c,),) = d.conditions
    assert c.key == "aws:SecureTransport" and c.negated
    assert decide(identity=[FULL, doc(deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))]).allowed


def test_residual_alternatives_are_a_disjunction() -> None:
    d = decide(
        identity=[doc(
            allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            allow(Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        )],
        mode=Mode.DISCOVERY,
    )
    assert d.conditional and len(d.conditions) == 2
    assert {t[0].key for t in d.conditions} == {"aws:SourceIp", "aws:MultiFactorAuthPresent"}


def test_unevaluable_deny_is_fail_closed() -> None:
    broken = doc(deny(Condition={"StringEqualz": {"aws:SourceIp": "x"}}))
    d = decide(identity=[FULL, broken])
    assert d.decision is EXPLICIT and d.errors and d.errors[0].policy_id == "id1"
    dd = decide(identity=[FULL, broken], mode=Mode.DISCOVERY)
    assert dd.conditional and dd.conditions[0][0].negated and dd.errors


def test_unconditional_deny_beats_residual_allow() -> None:
    d = decide(identity=[doc(allow(Condition={"Bool": {"aws:SecureTransport": "true"}}), deny())],
               mode=Mode.DISCOVERY)
    assert d.decision is EXPLICIT and not d.conditions


def test_malformed_request_raises_input_error() -> None:
    from iamgraph.errors import InputError

    with pytest.raises(InputError, match=r"request\.action"):
        decide(action="SendMessage")
    with pytest.raises(InputError, match=r"request\.principal"):
        decide(principal="arn:aws:iam::111122223333:group/devs")
    with pytest.raises(InputError, match=r"request\.context"):
        decide(context={"aws:SourceIp": {"nested": 1}})


def test_trust_policy_naming_user_is_still_limited_by_its_boundary() -> None:
    # "If a permissions boundary is set for the user, then it must allow the sts:AssumeRole action"
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_update-role-trust-policy.html)
    trust = doc({"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "sts:AssumeRole"})
    d = decide(action="sts:AssumeRole", resource=TARGET, resource_policy=trust, boundary=doc(allow("s3:*")))
    assert d.decision is IMPLICIT and d.blocked_by == (PolicyType.PERMISSION_BOUNDARY,)
    assert decide(action="sts:AssumeRole", resource=TARGET, resource_policy=trust,
                  boundary=doc(allow("sts:AssumeRole"))).allowed


def test_rcps_do_not_govern_kms_retire_grant() -> None:
    # https://docs.aws.amazon.com/kms/latest/developerguide/resource-control-policies.html
    deny_all = doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})
    key_policy = rp({"AWS": USER}, action="kms:*", resource="*")
    assert decide(action="kms:RetireGrant", resource=KEY, resource_policy=key_policy, rcps=[[deny_all]]).allowed
    assert not decide(action="kms:Decrypt", resource=KEY, resource_policy=key_policy, rcps=[[deny_all]]).possible


def test_notresource_entry_with_unset_variable_matches_no_resource() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    guard = doc({"Effect": "Deny", "Action": "sqs:*",
                 "NotResource": f"arn:aws:sqs:us-east-1:{A}:${{aws:PrincipalTag/team}}*"})
    assert decide(identity=[FULL, guard]).decision is EXPLICIT
    assert decide(identity=[FULL, guard], context={"aws:PrincipalTag/team": "ord"}).allowed


def test_anonymous_principal_keys_are_known_absent_in_discovery() -> None:
    pol = doc(
        {"Effect": "Allow", "Principal": "*", "Action": ACTION, "Resource": QUEUE},
        {"Effect": "Deny", "Principal": "*", "Action": ACTION, "Resource": QUEUE,
         "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}},
    )
    assert decide(principal="anonymous", resource_policy=pol, mode=Mode.DISCOVERY).decision is EXPLICIT
