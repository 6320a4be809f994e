"""who-can finds KMS grantees: on random small snapshots with a key policy, grants (with and without encryption
context constraints) and identity policies in two accounts, the direct holders of ``kms:Decrypt`` are exactly the
principals the engine allows one by one, and who-can lists them all.

A grant lets its grantee use the key alongside the key policy, whether or not any policy names the grantee
(https://docs.aws.amazon.com/kms/latest/developerguide/grants.html); a grantee in another account still needs
its own account's IAM permission for the operation
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
"""

from __future__ import annotations

from typing import Any

from graphsnap import A, B, SnapBuilder, allow
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgraph.eval import Mode
from iamgraph.graph import build_graph
from iamgraph.query import who_can
from iamgraph.query.who_can import direct_holders

KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLES = [f"arn:aws:iam::{A}:role/a{i}" for i in range(3)] + [f"arn:aws:iam::{B}:role/b{i}" for i in range(2)]
_KEY_STATEMENTS = {
    "root": {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"},
    "a0": {"Effect": "Allow", "Principal": {"AWS": ROLES[0]}, "Action": "kms:Decrypt", "Resource": "*"},
    "b-root": {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "kms:Decrypt",
               "Resource": "*"},
}
_GRANTEES = [*ROLES, f"arn:aws:iam::{B}:root"]
_OPERATIONS = [["Decrypt"], ["Encrypt"], ["Decrypt", "GenerateDataKey"]]


@st.composite
def snapshots(draw: Any) -> Any:
    b = SnapBuilder()
    stmts = draw(st.lists(st.sampled_from(sorted(_KEY_STATEMENTS)), unique=True, max_size=2))
    policy = {"Version": "2012-10-17", "Statement": [_KEY_STATEMENTS[s] for s in stmts]} if stmts else None
    grants = []
    for i, grantee in enumerate(draw(st.lists(st.sampled_from(_GRANTEES), unique=True, max_size=3))):
        grant: dict[str, Any] = {"GrantId": f"g-{i}", "KeyId": KEY, "GranteePrincipal": grantee,
                                 "Operations": draw(st.sampled_from(_OPERATIONS))}
        if draw(st.booleans()):
            grant["Constraints"] = {"EncryptionContextSubset": {"Department": "IT"}}
        grants.append(grant)
    b.resource(KEY, "kms:key", policy, grants=grants)
    for arn in ROLES:
        acct, name = arn.split(":")[4], arn.rsplit("/", 1)[1]
        docs = [allow("kms:Decrypt", draw(st.sampled_from([KEY, "*"])))] if draw(st.booleans()) else []
        b.role(name, *docs, acct=acct)
    return b.build()


@settings(max_examples=60, deadline=None)
@given(snap=snapshots())
def test_kms_grantees_are_holders_exactly_when_the_engine_allows_them(snap: Any) -> None:
    graph = build_graph(snap)
    ev = graph.ctx.ev
    brute = {p for p in ROLES if ev.ask(p, "kms:Decrypt", KEY, mode=Mode.DISCOVERY).possible}
    assert brute == set(direct_holders(graph, KEY, "kms:Decrypt")) & set(ROLES)
    assert brute <= who_can(graph, KEY, action="kms:Decrypt").principals()


def test_a_same_account_grantee_no_policy_names_is_found() -> None:
    b = SnapBuilder()
    b.resource(KEY, "kms:key", {"Version": "2012-10-17", "Statement": [_KEY_STATEMENTS["root"]]},
               grants=[{"GrantId": "g-1", "KeyId": KEY, "GranteePrincipal": ROLES[1], "Operations": ["Decrypt"]}])
    b.role("a1")
    b.role("b0", allow("kms:Decrypt", KEY), acct=B)
    graph = build_graph(b.build())
    found = who_can(graph, KEY, action="kms:Decrypt")
    assert found.principals() == {ROLES[1]}
    assert all(f"{KEY}:grant/g-1" in {r.policy_id for r in a.holder.decision.reasons} for a in found.accesses)


def test_a_grant_to_another_organizations_principal_is_exposure() -> None:
    """A grant names its grantee as a key policy statement would: a grantee outside the organization makes the
    key exposed (only the operations the grant lists); without the grant the key is not."""
    from graphsnap import OUTSIDE

    from iamgraph.graph.rules.assume import external_node
    from iamgraph.query import exposure

    outsider = f"arn:aws:iam::{OUTSIDE}:role/partner"

    def key_exposures(grants: list[dict[str, Any]]) -> list[Any]:
        b = SnapBuilder()
        b.resource(KEY, "kms:key", {"Version": "2012-10-17", "Statement": [_KEY_STATEMENTS["root"]]}, grants=grants)
        return [e for e in exposure(build_graph(b.build())) if e.resource == KEY]

    assert key_exposures([]) == []
    found = key_exposures([{"GrantId": "g-9", "KeyId": KEY, "GranteePrincipal": outsider, "Operations": ["Decrypt"]}])
    assert [(e.principal, e.actions) for e in found] == [(external_node(OUTSIDE), ("kms:Decrypt",))]
    assert f"{KEY}:grant/g-9" in {r.policy_id for r in found[0].statements}
