"""Exposure cross-checked with policyuniverse, an independent reading of the same policy documents.

policyuniverse (Netflix-Skunkworks) judges one trust or resource policy document alone:
``Policy(doc).is_internet_accessible()`` is True when an Allow statement admits ``*`` (or an ARN with a
``*`` account) and none of its known condition entries (source IP, org ID, account, ARN, user ID, VPC)
pins the caller. iamgraph's ``exposure`` evaluates the same document with the engine, for an anonymous
caller, and reports a public exposure definite or with the conditions it could not decide.

The two must agree in two directions on documents where policyuniverse is right:

* whatever policyuniverse calls internet-accessible, exposure reports as public (a miss would be a
  wrong "nobody can");
* whatever exposure reports as definitely public (no condition left), policyuniverse calls
  internet-accessible.

Where policyuniverse is known to be wrong the generated documents stay out of its way, and the test
says so: it reads the conditions of one statement as alternatives (any one internet-accessible entry makes
the statement so; AWS ANDs them), so each statement here has at most one condition key; it does not
read ``Federated`` principals (a GitHub OIDC trust without a ``sub`` condition admits every repository,
../shared/TESTING-AWS.md), so federated trusts are not generated; and it treats a wildcard inside a
principal ARN as everyone, where AWS does not allow such a wildcard at all, so none are generated.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
"""

from __future__ import annotations

from typing import Any

from graphsnap import ORG_ID, OUTSIDE, A, SnapBuilder, allow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policyuniverse.policy import Policy as UniversePolicy

from iamgraph.graph import build_graph
from iamgraph.query.exposure import Scope, exposure

BUCKET = "arn:aws:s3:::pu-cross-check"
ROLE = f"arn:aws:iam::{A}:role/pu-cross-check"

PRINCIPALS: list[Any] = [
    "*",
    {"AWS": "*"},
    {"AWS": [OUTSIDE, "*"]},
    {"AWS": OUTSIDE},
    {"AWS": f"arn:aws:iam::{OUTSIDE}:root"},
    {"AWS": f"arn:aws:iam::{OUTSIDE}:role/partner"},
    {"AWS": A},
    {"Service": "lambda.amazonaws.com"},
]
# One condition key per statement (see the module docstring), each with the operator AWS documents for it.
CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
    {"StringEquals": {"aws:PrincipalAccount": OUTSIDE}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
    {"StringEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}},
    {"StringLike": {"aws:userid": "AROAEXAMPLEROLEID0001:*"}},
    {"Bool": {"aws:SecureTransport": "true"}},
]


def _statement(principal: Any, condition: dict[str, Any] | None, *, trust: bool) -> dict[str, Any]:
    st_: dict[str, Any] = {"Effect": "Allow", "Principal": principal}
    if trust:
        st_["Action"] = "sts:AssumeRole"
    else:
        st_.update(Action="s3:GetObject", Resource=f"{BUCKET}/*")
    if condition is not None:
        st_["Condition"] = condition
    return st_


def _public(doc: dict[str, Any], *, trust: bool) -> tuple[bool, bool]:
    """(exposure reports the document's resource as public, and definitely so)."""
    b = SnapBuilder()
    if trust:
        b.role("pu-cross-check", allow("s3:ListAllMyBuckets"), trust_doc=doc)
        target = ROLE
    else:
        b.resource(BUCKET, "s3:bucket", doc)
        target = BUCKET
    found = [e for e in exposure(build_graph(b.build()))
             if e.resource == target and e.scope is Scope.PUBLIC and e.path is None]
    return bool(found), any(e.definite for e in found)


def _agree(statements: list[dict[str, Any]], *, trust: bool) -> None:
    doc = {"Version": "2012-10-17", "Statement": statements}
    universe = UniversePolicy(doc).is_internet_accessible()
    public, definite = _public(doc, trust=trust)
    if universe:
        assert public, f"policyuniverse: internet-accessible; exposure: not public\n{doc}"
    if definite:
        assert universe, f"exposure: definitely public; policyuniverse: not internet-accessible\n{doc}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PRINCIPALS), st.sampled_from(CONDITIONS)), min_size=1, max_size=3),
       st.booleans())
def test_exposure_agrees_with_policyuniverse(spec: list[tuple[Any, dict[str, Any] | None]], trust: bool) -> None:
    _agree([_statement(p, c, trust=trust) for p, c in spec], trust=trust)


def test_both_directions_are_exercised() -> None:
    """Guards against the property passing vacuously: each side of it holds on some document here."""
    open_ = {"Version": "2012-10-17", "Statement": [_statement("*", None, trust=False)]}
    org = {"Version": "2012-10-17", "Statement": [
        _statement("*", {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}, trust=False)]}
    private_ip = {"Version": "2012-10-17", "Statement": [
        _statement({"AWS": "*"}, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, trust=True)]}
    assert UniversePolicy(open_).is_internet_accessible() and _public(open_, trust=False) == (True, True)
    assert not UniversePolicy(org).is_internet_accessible() and _public(org, trust=False) == (False, False)
    # Neither claim applies: policyuniverse calls a private source range safe; exposure keeps it, conditional.
    assert not UniversePolicy(private_ip).is_internet_accessible()
    assert _public(private_ip, trust=True) == (True, False)
