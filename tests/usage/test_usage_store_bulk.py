"""``UsageStore.records`` per principal: after ``BULK_AFTER`` principals the window is read at once; the answers
are the same as one query each, and a write makes the store read again."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from iamgraph.usage.store import BULK_AFTER, UsageStore
from iamgraph.usage.types import Outcome


def _row(principal: str, action: str, day: int, outcome: str = "allowed") -> dict[str, Any]:
    return {"principal_arn": principal, "identity_type": "AssumedRole", "action": action, "resource": "",
            "source": "cloudtrail", "outcome": outcome, "invoked_by": "", "permission_set": None,
            "account_id": "111122223333", "certain": True, "first_seen": f"2024-03-{day:02d}T10:00:00Z",
            "last_seen": f"2024-03-{day:02d}T11:00:00Z", "count": 1}


def test_records_read_at_once_equal_one_query_each(tmp_path: Path) -> None:
    principals = [f"arn:aws:iam::111122223333:role/r{i:02d}" for i in range(BULK_AFTER + 8)]
    rows = [_row(p, a, 1 + (i + j) % 20, "denied" if j == 2 else "allowed")
            for i, p in enumerate(principals) for j, a in enumerate(("s3:GetObject", "sqs:ListQueues", "kms:Decrypt"))]
    window = {"since": datetime(2024, 3, 5), "until": datetime(2024, 3, 25), "outcome": Outcome.ALLOWED}
    with UsageStore(tmp_path / "one.duckdb") as one, UsageStore(tmp_path / "bulk.duckdb") as bulk:
        one.merge_usage(rows)
        bulk.merge_usage(rows)
        expected = {}
        for p in principals:
            expected[p] = one.records(principal_arn=p, **window)
            one._written()  # never read at once: one query per principal
        assert any(expected.values()) and not all(expected.values())  # the window cuts some out
        assert {p: bulk.records(principal_arn=p, **window) for p in principals} == expected
        assert bulk._bulk  # read at once
        # A write: the next answers come from the store again, and include it.
        late = _row(principals[0], "iam:ListRoles", 10)
        bulk.merge_usage([late])
        assert not bulk._bulk
        assert {r.action for r in bulk.records(principal_arn=principals[0], **window)} == \
            {r.action for r in expected[principals[0]]} | {"iam:ListRoles"}


def test_prefetched_principals_get_the_same_records_for_every_outcome(tmp_path: Path) -> None:
    principals = [f"arn:aws:iam::111122223333:role/p{i}" for i in range(5)]
    rows = [_row(p, a, 1 + (i + j) % 20, "denied" if j == 2 else "allowed")
            for i, p in enumerate(principals) for j, a in enumerate(("s3:GetObject", "sqs:ListQueues", "kms:Decrypt"))]
    since, until = datetime(2024, 3, 3), datetime(2024, 3, 20)
    with UsageStore(tmp_path / "one.duckdb") as one, UsageStore(tmp_path / "pre.duckdb") as pre:
        one.merge_usage(rows)
        pre.merge_usage(rows)
        pre.prefetch([*principals[:3], "arn:aws:iam::111122223333:role/nobody"], since, until)
        for p in [*principals, "arn:aws:iam::111122223333:role/nobody"]:
            for outcome in (None, Outcome.ALLOWED, Outcome.DENIED):
                assert pre.records(principal_arn=p, since=since, until=until, outcome=outcome) == \
                    one.records(principal_arn=p, since=since, until=until, outcome=outcome), (p, outcome)
        assert any(pre.records(principal_arn=p, since=since, until=until, outcome=Outcome.DENIED)
                   for p in principals[:3])  # the outcome filter was exercised on prefetched records
        # Another window is not served from the prefetched one; a write empties it.
        assert pre.records(principal_arn=principals[0], since=datetime(2024, 3, 1), until=until) == \
            one.records(principal_arn=principals[0], since=datetime(2024, 3, 1), until=until)
        pre.merge_usage([_row(principals[0], "iam:ListRoles", 10)])
        assert "iam:ListRoles" in {r.action for r in pre.records(principal_arn=principals[0], since=since, until=until)}
