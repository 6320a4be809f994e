"""CloudTrail eventSource/eventName → IAM action. Expected actions: the Service Authorization Reference action
names and, for the exceptions, the AWS pages cited next to each entry of iamgraph/usage/mapping.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from iamgraph.usage.mapping import EventMapper, MappingStatus, strip_version_suffix

PAIRS_FILE = Path(__file__).parent / "data" / "event_action_pairs.txt"


def _pairs() -> list[tuple[str, str, tuple[str, ...]]]:
    out = []
    for line in PAIRS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        source, name, expected = line.split()
        out.append((source, name, tuple(expected.split(","))))
    return out


PAIRS = _pairs()


@pytest.fixture(scope="module")
def mapper() -> EventMapper:
    return EventMapper()


def test_table_is_broad_enough() -> None:
    assert len({(s, n) for s, n, _ in PAIRS}) >= 300
    assert len({s for s, _, _ in PAIRS}) >= 40


def test_every_pair_maps_to_the_documented_actions(mapper: EventMapper) -> None:
    wrong = []
    for source, name, expected in PAIRS:
        got = mapper.map(source, name)
        if got.actions != expected or got.status is not MappingStatus.MAPPED:
            wrong.append((source, name, expected, got.actions, got.reason))
    assert wrong == []


@pytest.mark.parametrize(
    ("name", "stripped"),
    [
        ("ListFunctions20150331", "ListFunctions"),
        ("GetFunction20150331v2", "GetFunction"),
        ("UpdateDistribution2017_03_25", "UpdateDistribution"),
        ("PutObject", "PutObject"),
        ("GetObject2", "GetObject2"),
    ],
)
def test_version_suffixes(name: str, stripped: str) -> None:
    assert strip_version_suffix(name) == stripped


def test_unmappable_events_say_why(mapper: EventMapper) -> None:
    unknown = mapper.map("nosuchservice.amazonaws.com", "DoThing")
    assert unknown.status is MappingStatus.UNKNOWN_SOURCE and unknown.actions == ()
    no_op = mapper.map("iam.amazonaws.com", "NotAnIamOperation")
    assert no_op.status is MappingStatus.UNKNOWN_EVENT and not no_op.mapped
    login = mapper.map("signin.amazonaws.com", "ConsoleLogin")
    assert login.status is MappingStatus.NO_ACTION and not login.mapped


def test_transact_write_is_ambiguous_not_guessed(mapper: EventMapper) -> None:
    m = mapper.map("dynamodb.amazonaws.com", "TransactWriteItems")
    assert m.status is MappingStatus.AMBIGUOUS
    assert set(m.actions) == {
        "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"
    }


def test_reverse_index_covers_mapped_and_excludes_permission_only(mapper: EventMapper) -> None:
    s3 = mapper.actions_with_events("s3")
    assert {"s3:ListAllMyBuckets", "s3:GetObject", "s3:ListBucket"} <= s3
    iam = mapper.actions_with_events("iam")
    assert "iam:CreateRole" in iam
    assert "iam:PassRole" not in iam  # no API operation is called PassRole
