"""Benchmark: the live collector against a moto-served organization (20 accounts / 2,000 roles by default).

    .venv/bin/python benchmarks/bench_collect.py [--quick] [--accounts N] [--roles-per-account M]

Starts its own moto server on 127.0.0.1 (no AWS managed policies loaded), populates it once, then
collects it three times: with ``--concurrency 1`` and with the default concurrency and rate limits,
Access Advisor off (moto does not implement it); then with the default concurrency and Access Advisor
answered by a before-call stand-in (every job complete at the first poll, one page), which measures
the collector's own calls for it, not AWS's job latency. Two calls moto lacks are answered by a before-call hook
on the client, as in the tests: s3control GetPublicAccessBlock (its endpoint puts the account in the
host name) and ssm DescribeInstanceInformation (HTTP 500); they are still counted as API calls.
Prints a table: wall time, API calls, calls per principal.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from iamgraph.collect.aws import DEFAULT_CONCURRENCY, CollectOptions, collect
from iamgraph.collect.aws_api import ClientSpec

REGION = "us-east-1"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_ACCOUNT_ID"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto server did not start")


def _session(account: str, mgmt: str) -> boto3.Session:
    if account == mgmt:
        return boto3.Session(region_name=REGION)
    c = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="populate"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=REGION,
    )


def populate(n_accounts: int, roles_per_account: int) -> list[str]:
    org = boto3.client("organizations")
    org.create_organization(FeatureSet="ALL")
    mgmt = boto3.client("sts").get_caller_identity()["Account"]
    accounts = [mgmt] + [
        org.create_account(AccountName=f"acct{i:02d}", Email=f"a{i}@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        for i in range(1, n_accounts)
    ]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    inline = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )

    def fill(account: str) -> None:
        iam = _session(account, mgmt).client("iam")
        for r in range(roles_per_account):
            iam.create_role(RoleName=f"role-{r:04d}", AssumeRolePolicyDocument=trust)
            iam.put_role_policy(RoleName=f"role-{r:04d}", PolicyName="read", PolicyDocument=inline)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fill, accounts))
    return accounts


def _advisor_answer(model: Any) -> dict[str, Any] | None:
    """Access Advisor stand-in: every job is complete at the first poll, with one service in one page."""
    if model.name == "GenerateServiceLastAccessedDetails":
        return {"JobId": str(uuid.uuid4())}
    if model.name == "GetServiceLastAccessedDetails":
        now = datetime.now(UTC)
        return {
            "JobStatus": "COMPLETED",
            "JobType": "ACTION_LEVEL",
            "JobCreationDate": now,
            "JobCompletionDate": now,
            "ServicesLastAccessed": [{"ServiceName": "Amazon S3", "ServiceNamespace": "s3"}],
            "IsTruncated": False,
        }
    return None


def gap_filler(spec: ClientSpec, client: Any) -> None:
    if spec.purpose == "access-advisor":

        def advisor(model: Any, **_: Any) -> Any:
            body = _advisor_answer(model)
            if body is None:
                return None
            ok = {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}
            return AWSResponse("http://127.0.0.1/", 200, {}, None), ok

        client.meta.events.register("before-call.*.*", advisor)
        return
    answers = {
        ("s3control", "GetPublicAccessBlock"): (
            404,
            {"Error": {"Code": "NoSuchPublicAccessBlockConfiguration"}},
        ),
        ("ssm", "DescribeInstanceInformation"): (200, {"InstanceInformationList": []}),
    }

    def handler(model: Any, **_: Any) -> Any:
        got = answers.get((spec.service, model.name))
        if got is None:
            return None
        status, body = got
        return AWSResponse("http://127.0.0.1/", status, {}, None), {
            **body,
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client.meta.events.register("before-call.*.*", handler)


def run(concurrency: int, work: Path, *, advisor: bool = False) -> tuple[float, Any]:
    opts = CollectOptions(
        work_dir=work,
        organization=True,
        regions=(REGION,),
        concurrency=concurrency,
        access_advisor=advisor,
        identity_center_region=REGION,
        client_hook=gap_filler,
    )
    t0 = time.perf_counter()
    result = collect(opts)
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 accounts / 200 roles")
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--roles-per-account", type=int, default=100)
    args = ap.parse_args()
    n_acc, n_roles = (5, 40) if args.quick else (args.accounts, args.roles_per_account)
    proc, endpoint = start_moto()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_SESSION_TOKEN="testing",
            AWS_DEFAULT_REGION=REGION,
        )
        for k in ("AWS_PROFILE", "MOTO_ACCOUNT_ID"):
            os.environ.pop(k, None)
        t0 = time.perf_counter()
        populate(n_acc, n_roles)
        print(
            f"populated {n_acc} accounts x {n_roles} roles in {time.perf_counter() - t0:.1f} s (moto server)"
        )
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for conc, advisor in ((1, False), (DEFAULT_CONCURRENCY, False), (DEFAULT_CONCURRENCY, True)):
                wall, res = run(conc, Path(tmp) / f"work-{conc}-{advisor}", advisor=advisor)
                snap = res.snapshot
                principals = sum(len(a.roles) + len(a.users) for a in snap.accounts)
                rows.append(
                    (
                        conc,
                        "faked" if advisor else "off",
                        len(snap.accounts),
                        principals,
                        wall,
                        res.calls,
                        res.calls / principals,
                        len(snap.errors),
                    )
                )
        print(
            f"{'concurrency':>11} {'advisor':>7} {'accounts':>8} {'principals':>10} {'wall s':>8} {'API calls':>9} "
            f"{'calls/principal':>15} {'errors':>6}"
        )
        for conc, adv, acc, pr, wall, calls, per, errs in rows:
            print(f"{conc:>11} {adv:>7} {acc:>8} {pr:>10} {wall:>8.1f} {calls:>9} {per:>15.3f} {errs:>6}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
