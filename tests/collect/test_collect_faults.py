"""The collector under faults at the HTTP layer: a fault proxy on 127.0.0.1 in front of the moto server.

- A call answered with HTTP 500 and an HTML body (what moto itself answers for the Access Advisor jobs it does
  not implement, and what a proxy or an emulator can answer for anything) makes botocore raise
  ``ResponseParserError``, which is not a ``BotoCoreError``: it is recorded as that call's failure and the
  collection goes on.
- Credentials that stop working part-way stop the run with a clear error; the accounts already written stay,
  and ``--resume`` finishes the collection.
- With an endpoint URL configured, no host name is resolved: S3 Control's account-ID host prefix
  (``<account>.127.0.0.1``) is not sent to a resolver.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.parsers import ResponseParserError
from fault_proxy import FaultProxy, Seen, html_500, query_error

from iamgraph.collect.aws import CollectOptions, CredentialsError, EventKind, ProgressEvent, collect
from iamgraph.collect.aws_advisor import PollPolicy

pytestmark = [pytest.mark.moto, pytest.mark.xdist_group("moto_server")]

REGION = "us-east-1"
DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture()
def proxy(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy in front of a clean moto server; boto3 in this process goes through the proxy."""
    fp = FaultProxy(aws_env.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fp.endpoint)
    yield fp
    fp.stop()


def _populate(session: boto3.Session) -> None:
    iam = session.client("iam")
    for name in ("alice", "bob"):
        iam.create_user(UserName=name)
        iam.create_access_key(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(DOC))
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(TRUST))
    account = session.client("sts").get_caller_identity()["Account"]
    session.client("s3", region_name=REGION).create_bucket(Bucket=f"data-{account}")


def _options(tmp: Path, **kw: Any) -> CollectOptions:
    base: dict[str, Any] = {
        "work_dir": tmp / "work",
        "regions": (REGION,),
        "concurrency": 1,
        "max_attempts": 2,
        "rates": {},
        "default_rate": 0,
        "identity_center": False,
        "advisor_poll": PollPolicy(initial_delay=0.01, max_delay=0.02, timeout=5),
    }
    base.update(kw)
    return CollectOptions(**base)


def _alice_keys(seen: Seen) -> Any:
    form = seen.form()
    if form.get("Action") == "ListAccessKeys" and form.get("UserName") == "alice":
        return html_500(seen)
    return None


def test_html_500_is_recorded_for_its_call_and_the_collection_goes_on(proxy: FaultProxy, tmp_path: Path) -> None:
    _populate(boto3.Session(region_name=REGION))
    proxy.rules.append(_alice_keys)
    # The fault is the one the issue names: botocore raises ResponseParserError, which is no BotoCoreError.
    iam = boto3.client("iam", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ResponseParserError):
        iam.list_access_keys(UserName="alice")
    proxy.answered.clear()

    # Access Advisor stays on: moto itself answers GenerateServiceLastAccessedDetails with HTTP 500 and HTML.
    res = collect(_options(tmp_path, access_advisor=True))
    snap = res.snapshot
    (acct,) = snap.accounts
    users = {u.name: u for u in acct.users}
    assert set(users) == {"alice", "bob"}
    assert users["alice"].access_keys == [] and len(users["bob"].access_keys) == 1
    assert [r.name for r in acct.roles] == ["app"]
    assert [r.name for r in acct.resources if r.type == "s3:bucket"] == [f"data-{acct.account_id}"]
    errs = {(e.service, e.call, e.error_code, e.resource) for e in snap.errors}
    assert ("iam", "ListAccessKeys", "ResponseParserError", "alice") in errs
    principals = {u.arn for u in acct.users} | {r.arn for r in acct.roles}
    advisor = {e.resource for e in snap.errors if e.call == "GenerateServiceLastAccessedDetails"}
    assert advisor == principals
    assert {e.error_code for e in snap.errors if e.call == "GenerateServiceLastAccessedDetails"} == {
        "ResponseParserError"
    }
    assert res.accounts_failed == () and res.accounts_collected == (acct.account_id,)
    assert len(proxy.answered) == 1  # the fault was met once (it is not retried), and only there


def test_cli_collect_with_html_500_exits_0_and_lists_the_error(proxy: FaultProxy, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from iamgraph.cli import app

    _populate(boto3.Session(region_name=REGION))
    proxy.rules.append(_alice_keys)
    out = tmp_path / "snap.json.gz"
    r = CliRunner().invoke(
        app, ["collect", "-o", str(out), "--regions", REGION, "--no-identity-center", "--max-attempts", "1",
              "--rate", "iam=0", "--json"],
    )
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    summary = json.loads(r.stdout)
    assert {"service": "iam", "call": "ListAccessKeys", "error_code": "ResponseParserError"}.items() <= next(
        e for e in summary["errors"] if e["call"] == "ListAccessKeys"
    ).items()


def _organization() -> tuple[str, str]:
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    mgmt = boto3.client("sts").get_caller_identity()["Account"]
    member = org.create_account(AccountName="member", Email="member@example.com")["CreateAccountStatus"]["AccountId"]
    return mgmt, member


def test_expired_credentials_stop_the_run_and_resume_finishes_it(proxy: FaultProxy, tmp_path: Path) -> None:
    mgmt, member = _organization()
    _populate(boto3.Session(region_name=REGION))
    expired = {"on": False}

    def expire(seen: Seen) -> Any:
        return query_error("ExpiredToken", 403, "The security token included in the request is expired") if (
            expired["on"]
        ) else None

    proxy.rules.append(expire)
    done: list[str] = []

    def after_first(ev: ProgressEvent) -> None:
        if ev.kind is EventKind.DONE:
            done.append(ev.account_id)
            expired["on"] = True  # the session ends right after the first account is written

    opts = _options(tmp_path, organization=True, access_advisor=False)
    with pytest.raises(CredentialsError, match="--resume"):
        collect(opts, progress=after_first)
    first = sorted([mgmt, member])[0]
    assert done == [first]
    assert sorted(p.stem for p in (tmp_path / "work" / "accounts").glob("*.json")) == [first]

    expired["on"] = False  # renewed credentials
    res = collect(_options(tmp_path, organization=True, access_advisor=False, resume=True))
    assert res.accounts_resumed == (first,)
    assert res.accounts_collected == tuple(a for a in sorted([mgmt, member]) if a != first)
    assert sorted(a.account_id for a in res.snapshot.accounts) == sorted([mgmt, member])
    assert not [e for e in res.snapshot.errors if e.error_code == "ExpiredToken"]
    clean = collect(_options(tmp_path / "clean", organization=True, access_advisor=False))
    for a in clean.snapshot.accounts:
        b = res.snapshot.account(a.account_id)
        assert b is not None
        assert [u.arn for u in b.users] == [u.arn for u in a.users]
        assert [r.arn for r in b.roles] == [r.arn for r in a.roles]


def test_collection_with_an_endpoint_url_resolves_no_name(
    aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populate(boto3.Session(region_name=REGION))
    resolved: list[str] = []
    real = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(host.decode() if isinstance(host, bytes) else str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    res = collect(_options(tmp_path, access_advisor=False))
    assert resolved, "the spy saw no lookup at all: the test would pass vacuously"
    assert set(resolved) <= {"127.0.0.1", "localhost", "::1"}, sorted(set(resolved))
    # S3 Control answered at the endpoint's own host (moto: no account-level block configured, a fact).
    assert not [e for e in res.snapshot.errors if e.service == "s3control"]


def test_an_account_that_fails_part_way_is_recorded_and_resume_collects_it(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    mgmt, member = _organization()
    broken = {"on": True}

    def hook(spec: Any, client: Any) -> None:
        # Not a call's failure: the account's own work breaks outside every call (as a bug or an exhausted
        # resource would), with an exception type the collector has never seen.
        if broken["on"] and spec.account_id == member and spec.service == "iam":
            raise LookupError("injected: the account's work breaks here")

    res = collect(_options(tmp_path, organization=True, access_advisor=False, client_hook=hook))
    assert res.accounts_failed == (member,) and res.accounts_collected == (mgmt,)
    assert [a.account_id for a in res.snapshot.accounts] == [mgmt]
    # Besides moto's unimplemented calls met before the break (recorded as usual), the break itself is recorded.
    (err,) = [e for e in res.snapshot.errors if e.account_id == member and e.service == "iamgraph"]
    assert (err.call, err.error_code) == ("CollectAccount", "LookupError") and "injected" in err.message
    broken["on"] = False
    again = collect(_options(tmp_path, organization=True, access_advisor=False, client_hook=hook, resume=True))
    assert again.accounts_resumed == (mgmt,) and again.accounts_collected == (member,)
    assert sorted(a.account_id for a in again.snapshot.accounts) == sorted([mgmt, member])
