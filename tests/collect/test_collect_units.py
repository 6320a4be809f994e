"""Collector parts that need no server: rate limiter, document decoding, Access Advisor polling (Stubber), plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from iamgraph.collect.aws import CollectOptions, CollectorError, _Central, _plan
from iamgraph.collect.aws_advisor import PollPolicy, access_advisor
from iamgraph.collect.aws_api import ErrorLog, RateLimiter, document
from iamgraph.snapshot.model import OrgAccount, Organization

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
JOB_A = "11111111-1111-1111-1111-111111111111"
JOB_B = "22222222-2222-2222-2222-222222222222"
ALICE = "arn:aws:iam::111122223333:user/alice"
ROLE = "arn:aws:iam::111122223333:role/app"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_limits_each_service_separately() -> None:
    fc = FakeClock()
    lim = RateLimiter({"iam": 2.0}, default=0, clock=fc.clock, sleep=fc.sleep)
    for _ in range(6):
        lim.acquire("iam")
    # A burst of 2, then one call every 1/2 s: four more calls need 2 s of waiting in all.
    assert sum(fc.sleeps) == pytest.approx(2.0)
    assert fc.now == pytest.approx(2.0)
    before = len(fc.sleeps)
    for _ in range(50):
        lim.acquire("kms")  # default 0: unlimited, and not slowed by iam's empty bucket
    assert len(fc.sleeps) == before


def test_documents_are_decoded_whatever_form_they_come_in() -> None:
    d = {"Version": "2012-10-17", "Statement": []}
    assert document(d) is d
    assert document('{"Version": "2012-10-17", "Statement": []}') == d
    # IAM's raw API form is URL-encoded JSON (boto3 decodes it for IAM; other callers may not).
    assert document("%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D") == d
    assert document(None) is None and document("") is None
    with pytest.raises(ValueError):
        document("[1, 2]")


def _iam() -> object:
    # A real client: the Stubber checks every request and response against IAM's service model.
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _svc(name: str, namespace: str, **extra: object) -> dict[str, object]:
    return {"ServiceName": name, "ServiceNamespace": namespace, **extra}


def test_access_advisor_polls_with_back_off_pages_and_records_failures() -> None:
    # moto does not implement GenerateServiceLastAccessedDetails (HTTP 500), so this uses botocore's Stubber.
    iam = _iam()
    stub = Stubber(iam)  # type: ignore[arg-type]
    gen = "generate_service_last_accessed_details"
    get = "get_service_last_accessed_details"
    stub.add_response(gen, {"JobId": JOB_A}, {"Arn": ALICE, "Granularity": "ACTION_LEVEL"})
    stub.add_response(gen, {"JobId": JOB_B}, {"Arn": ROLE, "Granularity": "ACTION_LEVEL"})
    base = {"JobType": "ACTION_LEVEL", "JobCreationDate": T, "JobCompletionDate": T}
    stub.add_response(get, {**base, "JobStatus": "IN_PROGRESS", "ServicesLastAccessed": []}, {"JobId": JOB_A})
    stub.add_response(
        get,
        {
            **base,
            "JobStatus": "FAILED",
            "ServicesLastAccessed": [],
            "Error": {"Message": "boom", "Code": "InternalError"},
        },
        {"JobId": JOB_B},
    )
    page1 = [
        _svc(
            "Amazon S3",
            "s3",
            LastAuthenticated=T,
            LastAuthenticatedRegion="eu-west-1",
            TotalAuthenticatedEntities=1,
            TrackedActionsLastAccessed=[
                {"ActionName": "GetObject", "LastAccessedTime": T, "LastAccessedRegion": "eu-west-1"}
            ],
        )
    ]
    stub.add_response(
        get,
        {
            **base,
            "JobStatus": "COMPLETED",
            "ServicesLastAccessed": page1,
            "IsTruncated": True,
            "Marker": "m2",
        },
        {"JobId": JOB_A},
    )
    stub.add_response(
        get,
        {
            **base,
            "JobStatus": "COMPLETED",
            "ServicesLastAccessed": [_svc("AWS KMS", "kms")],
            "IsTruncated": False,
        },
        {"JobId": JOB_A, "Marker": "m2"},
    )
    log = ErrorLog("111122223333")
    fc = FakeClock()
    with stub:
        out = access_advisor(
            iam, log, [ALICE, ROLE], poll=PollPolicy(initial_delay=1, max_delay=8), sleep=fc.sleep
        )  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert fc.sleeps == [1]
    assert [(e.principal_arn, e.service_namespace) for e in out] == [(ALICE, "kms"), (ALICE, "s3")]
    s3 = out[1]
    assert (s3.last_authenticated, s3.job_completion_date) == (T.isoformat(), T.isoformat())
    assert [(a.action_name, a.last_accessed_region) for a in s3.tracked_actions] == [
        ("GetObject", "eu-west-1")
    ]
    assert out[0].last_authenticated is None  # never used: no date, not "unused since"
    assert [(e.resource, e.error_code, e.message) for e in log.errors] == [(ROLE, "InternalError", "boom")]


def test_access_advisor_gives_up_after_its_timeout_and_says_so() -> None:
    iam = _iam()
    stub = Stubber(iam)  # type: ignore[arg-type]
    stub.add_response("generate_service_last_accessed_details", {"JobId": JOB_A})
    busy = {
        "JobType": "ACTION_LEVEL",
        "JobCreationDate": T,
        "JobCompletionDate": T,
        "JobStatus": "IN_PROGRESS",
        "ServicesLastAccessed": [],
    }
    for _ in range(3):
        stub.add_response("get_service_last_accessed_details", busy, {"JobId": JOB_A})
    log = ErrorLog("111122223333")
    fc = FakeClock()
    with stub:
        out = access_advisor(
            iam, log, [ALICE], poll=PollPolicy(initial_delay=1, max_delay=8, timeout=3), sleep=fc.sleep
        )  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert out == [] and fc.sleeps == [1, 2]
    assert [(e.call, e.error_code, e.resource) for e in log.errors] == [
        ("GetServiceLastAccessedDetails", "JobTimeout", ALICE)
    ]


def _central() -> _Central:
    accts = [
        OrgAccount(id="111111111111", name="mgmt", status="ACTIVE", parent_id="r-1"),
        OrgAccount(id="222222222222", name="prod", status="ACTIVE", parent_id="r-1"),
        OrgAccount(id="333333333333", name="old", status="SUSPENDED", parent_id="r-1"),
    ]
    org = Organization(id="o-1", management_account_id="111111111111", root_id="r-1", accounts=accts)
    return _Central(organization=org)


def test_plan_filters_accounts(tmp_path: Path) -> None:
    base = CollectOptions(work_dir=tmp_path, organization=True)
    assert _plan(base, "111111111111", _central()) == [("111111111111", "mgmt"), ("222222222222", "prod")]
    only = CollectOptions(work_dir=tmp_path, organization=True, accounts=("222222222222",))
    assert _plan(only, "111111111111", _central()) == [("222222222222", "prod")]
    excl = CollectOptions(work_dir=tmp_path, organization=True, exclude_accounts=("111111111111",))
    assert _plan(excl, "111111111111", _central()) == [("222222222222", "prod")]
    with pytest.raises(CollectorError, match="333333333333"):
        _plan(CollectOptions(work_dir=tmp_path, accounts=("333333333333",)), "111111111111", _central())
    assert _plan(CollectOptions(work_dir=tmp_path), "999999999999", _Central()) == [("999999999999", None)]
