"""Access Advisor: service and action last-accessed data for every user and role of an account.

GenerateServiceLastAccessedDetails starts an asynchronous job per principal; all jobs of an account
are started first so AWS runs them side by side, then polled with a growing delay, and each finished
job's results are read page by page.
https://docs.aws.amazon.com/IAM/latest/APIReference/API_GenerateServiceLastAccessedDetails.html
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient

from iamgraph.collect.aws_api import ErrorLog, call, iso
from iamgraph.snapshot.model import ServiceLastAccessed, TrackedAction

TRACKING_PERIOD_DAYS = 400
"""Access Advisor reports activity within the last 400 days:
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_last-accessed.html"""


@dataclass(frozen=True, slots=True, kw_only=True)
class PollPolicy:
    initial_delay: float = 1.0
    max_delay: float = 20.0
    timeout: float = 900.0
    """Total time spent waiting for an account's jobs before the rest are recorded as timed out."""


def access_advisor(
    iam: BaseClient,
    log: ErrorLog,
    principal_arns: Iterable[str],
    *,
    poll: PollPolicy = PollPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> list[ServiceLastAccessed]:
    jobs: dict[str, str] = {}
    for arn in principal_arns:
        res = call(
            iam,
            "GenerateServiceLastAccessedDetails",
            log,
            region=None,
            resource=arn,
            Arn=arn,
            Granularity="ACTION_LEVEL",
        )
        if isinstance(res, dict):
            with log.guard(service="iam", call="GenerateServiceLastAccessedDetails", region=None, resource=arn):
                jobs[arn] = str(res["JobId"])
    out: list[ServiceLastAccessed] = []
    delay = poll.initial_delay
    waited = 0.0
    pending = dict(jobs)
    while pending:
        for arn, job in list(pending.items()):
            first = call(iam, "GetServiceLastAccessedDetails", log, region=None, resource=arn, JobId=job)
            if not isinstance(first, dict):
                del pending[arn]  # the failure is recorded
                continue
            status = first.get("JobStatus")
            if status == "IN_PROGRESS":
                continue
            del pending[arn]
            if status == "FAILED":
                err = first.get("Error") or {}
                log.add(
                    service="iam",
                    call="GetServiceLastAccessedDetails",
                    error_code=str(err.get("Code") or "JobFailed"),
                    message=str(err.get("Message") or "Access Advisor job failed"),
                    resource=arn,
                )
                continue
            # A principal whose answer cannot be read is recorded and costs only its own data.
            with log.guard(service="iam", call="GetServiceLastAccessedDetails", region=None, resource=arn):
                out.extend(_read_all(iam, log, arn, job, first))
        if not pending:
            break
        if waited >= poll.timeout:
            for arn in pending:
                log.add(
                    service="iam",
                    call="GetServiceLastAccessedDetails",
                    error_code="JobTimeout",
                    message=f"job still in progress after {poll.timeout:.0f}s",
                    resource=arn,
                )
            break
        sleep(delay)
        waited += delay
        delay = min(delay * 2, poll.max_delay)
    return sorted(out, key=lambda s: (s.principal_arn, s.service_namespace))


def _read_all(
    iam: BaseClient, log: ErrorLog, arn: str, job: str, first: dict[str, Any]
) -> list[ServiceLastAccessed]:
    completed = iso(first.get("JobCompletionDate"))
    out = []
    page: dict[str, Any] | None = first
    while page is not None:
        for s in page.get("ServicesLastAccessed", []):
            out.append(
                ServiceLastAccessed(
                    principal_arn=arn,
                    service_namespace=s["ServiceNamespace"],
                    service_name=s.get("ServiceName"),
                    last_authenticated=iso(s.get("LastAuthenticated")),
                    last_authenticated_entity=s.get("LastAuthenticatedEntity"),
                    last_authenticated_region=s.get("LastAuthenticatedRegion"),
                    total_authenticated_entities=s.get("TotalAuthenticatedEntities"),
                    tracked_actions=[
                        TrackedAction(
                            action_name=a["ActionName"],
                            last_accessed_time=iso(a.get("LastAccessedTime")),
                            last_accessed_region=a.get("LastAccessedRegion"),
                            last_accessed_entity=a.get("LastAccessedEntity"),
                        )
                        for a in s.get("TrackedActionsLastAccessed", [])
                    ],
                    job_completion_date=completed,
                )
            )
        if not page.get("IsTruncated"):
            break
        nxt = call(
            iam,
            "GetServiceLastAccessedDetails",
            log,
            region=None,
            resource=arn,
            JobId=job,
            Marker=page["Marker"],
        )
        page = nxt if isinstance(nxt, dict) else None
    return out
