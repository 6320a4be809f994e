"""The live collector: every account of an AWS Organization (or one account) into one Snapshot, through boto3.

Flow: resolve the caller; in organization mode read the organization and Identity Center once;
then collect accounts in parallel (each through an assumed role, except the caller's own account),
each account's regions in parallel. Each finished account is written atomically to the work
directory as it completes, so an interrupted run resumes where it stopped (``resume=True``) and the
final snapshot is assembled from those files: nothing read twice, nothing lost, nothing duplicated.

Failures of single calls (denied, throttled past the retries, region disabled, an answer that cannot be
parsed), of single items of an answer, and accounts whose role cannot be assumed or whose collection fails
part-way are recorded as ``CollectionError``s, whatever the exception type; the rest of the collection
carries on. Only failures of the whole run stop it (``CollectorError``): no usable credentials or
credentials that stop working (``CredentialsError``), an organization that cannot be read, a bad work
directory. What was written by then stays in the work directory for ``--resume``.
Only the CLI prints: progress is reported through a callback.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import orjson
from botocore.client import BaseClient
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import NoCredentialsError, ProfileNotFound
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iamgraph import __version__
from iamgraph.collect.aws_account import AccountParts, collect_account, enabled_regions
from iamgraph.collect.aws_advisor import TRACKING_PERIOD_DAYS, PollPolicy, access_advisor
from iamgraph.collect.aws_api import (
    API_CALLS,
    DEFAULT_RATE,
    DEFAULT_RATES,
    GLOBAL_REGION,
    ApiCall,
    CallStats,
    Cancelled,
    ClientHook,
    Clients,
    ClientSpec,
    CollectorError,
    CredentialsError,
    ErrorLog,
    RateLimiter,
    UnlistedCallError,
    error_code_of,
    make_config,
)
from iamgraph.collect.aws_org import collect_identity_center, collect_organization, find_identity_center
from iamgraph.snapshot.io import atomic_write_bytes
from iamgraph.snapshot.model import (
    Account,
    Activity,
    CollectionError,
    IdentityCenter,
    ManagedPolicy,
    Organization,
    ServiceLastAccessed,
    Snapshot,
)

__all__ = [
    "API_CALLS",
    "ApiCall",
    "ClientHook",
    "ClientSpec",
    "CollectOptions",
    "CollectResult",
    "CollectorError",
    "CredentialsError",
    "EventKind",
    "ProgressEvent",
    "UnlistedCallError",
    "collect",
    "remove_work_dir",
]

DEFAULT_ROLE = "OrganizationAccountAccessRole"
DEFAULT_CONCURRENCY = 8
WORK_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectOptions:
    work_dir: Path
    """Per-account results, written as each account finishes; kept until the snapshot is written."""
    organization: bool = False
    role_name: str = DEFAULT_ROLE
    external_id: str | None = None
    session_name: str = "iamgraph-collector"
    profile: str | None = None
    regions: tuple[str, ...] | None = None
    """None: every region enabled in each account (EC2 DescribeRegions)."""
    accounts: tuple[str, ...] | None = None
    exclude_accounts: tuple[str, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    max_attempts: int = 10
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    default_rate: float = DEFAULT_RATE
    access_advisor: bool = True
    identity_center: bool = True
    identity_center_region: str | None = None
    resume: bool = False
    advisor_poll: PollPolicy = field(default_factory=PollPolicy)
    client_hook: ClientHook | None = None
    """Called with every new boto3 client (tests attach Stubbers and fault injectors here)."""
    sleep: Callable[[float], None] = time.sleep


class EventKind(StrEnum):
    PLANNED = "planned"
    STARTED = "started"
    STEP = "step"
    DONE = "done"
    FAILED = "failed"
    RESUMED = "resumed"
    """Already in the work directory from an earlier run: not read again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressEvent:
    kind: EventKind
    account_id: str
    name: str | None = None
    step: str | None = None
    calls: int = 0
    errors: int = 0
    principals: int = 0
    resources: int = 0
    total_accounts: int = 0


Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectResult:
    snapshot: Snapshot
    calls: int
    """API calls made by this run (not counting accounts resumed from the work directory)."""
    calls_by_operation: dict[str, int]
    accounts_collected: tuple[str, ...]
    accounts_resumed: tuple[str, ...]
    accounts_failed: tuple[str, ...]


# ---------------------------------------------------------------- work directory files


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Manifest(_File):
    format: int = WORK_FORMAT
    organization: bool
    caller_account: str
    regions: list[str] | None
    access_advisor: bool


class _Central(_File):
    organization: Organization | None = None
    identity_center: IdentityCenter | None = None
    errors: list[CollectionError] = Field(default_factory=list)


class _AccountFile(_File):
    account: Account
    aws_managed_policies: list[ManagedPolicy] = Field(default_factory=list)
    access_advisor: list[ServiceLastAccessed] = Field(default_factory=list)
    errors: list[CollectionError] = Field(default_factory=list)
    calls: int = 0


def _write(path: Path, model: BaseModel) -> None:
    atomic_write_bytes(path, orjson.dumps(model.model_dump(mode="json")))


def _read(path: Path, cls: type[_File]) -> Any:
    try:
        return cls.model_validate(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, ValidationError) as exc:
        raise CollectorError(
            f"{path}: unreadable work file ({type(exc).__name__}); delete it to collect that part again"
        ) from None


def remove_work_dir(work_dir: Path) -> None:
    """Remove the work directory's own files (after the snapshot is safely written)."""
    for sub in ("accounts",):
        d = work_dir / sub
        if d.is_dir():
            for f in d.glob("*.json"):
                f.unlink()
            d.rmdir()
    for name in ("manifest.json", "central.json"):
        (work_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: someone else's files are there; leave them
        work_dir.rmdir()


# ---------------------------------------------------------------- the run


@dataclass(slots=True, kw_only=True)
class _Run:
    options: CollectOptions
    base: boto3.Session
    caller: str
    partition: str
    limiter: RateLimiter
    stats: CallStats
    progress: Progress
    stop: threading.Event = field(default_factory=threading.Event)

    def clients(self, account_id: str, session: boto3.Session) -> Clients:
        return Clients(
            account_id=account_id,
            session=session,
            config=make_config(max_attempts=self.options.max_attempts, max_pool=self.options.concurrency * 2),
            limiter=self.limiter,
            stats=self.stats,
            hook=self.options.client_hook,
            partition=self.partition,
        )


def collect(options: CollectOptions, *, progress: Progress | None = None) -> CollectResult:
    """Run a collection (or resume one) and return the assembled snapshot; the caller writes it."""
    if options.concurrency < 1:
        raise CollectorError("--concurrency must be at least 1")
    emit: Progress = progress or (lambda _e: None)
    try:
        base = boto3.Session(profile_name=options.profile) if options.profile else boto3.Session()
    except ProfileNotFound as exc:
        raise CollectorError(f"AWS profile not found: {exc}") from None
    stats = CallStats()
    limiter = RateLimiter(options.rates, default=options.default_rate, sleep=options.sleep)
    probe = Clients(
        account_id="caller",
        session=base,
        config=make_config(max_attempts=options.max_attempts, max_pool=2),
        limiter=limiter,
        stats=stats,
        hook=options.client_hook,
    )
    try:
        ident = probe.get("sts").get_caller_identity()
    except NoCredentialsError:
        raise CollectorError(
            "no AWS credentials found: configure a profile (--profile), SSO login, environment variables "
            "or an instance role"
        ) from None
    except Exception as exc:  # any type: nothing can be collected without knowing the caller
        code, message = error_code_of(exc)
        raise CollectorError(
            f"cannot identify the caller (sts:GetCallerIdentity): {code}: {message}"
        ) from None
    caller = str(ident["Account"])
    partition = str(ident["Arn"]).split(":")[1]
    run = _Run(
        options=options,
        base=base,
        caller=caller,
        partition=partition,
        limiter=limiter,
        stats=stats,
        progress=emit,
    )
    work = options.work_dir
    _check_manifest(options, caller)

    central_path = work / "central.json"
    central_clients = run.clients(caller, base)
    if options.resume and central_path.exists():
        central: _Central = _read(central_path, _Central)
    else:
        central = _collect_central(run, central_clients)
        _write(central_path, central)

    plan = _plan(options, caller, central)
    acct_dir = work / "accounts"
    done_before = {p.stem for p in acct_dir.glob("*.json")} if options.resume and acct_dir.is_dir() else set()
    todo = [(a, n) for a, n in plan if a not in done_before]
    for a, n in plan:
        emit(ProgressEvent(kind=EventKind.PLANNED, account_id=a, name=n, total_accounts=len(plan)))
    for a, n in plan:
        if a in done_before:
            emit(ProgressEvent(kind=EventKind.RESUMED, account_id=a, name=n))

    failed_errors: dict[str, list[CollectionError]] = {}
    collected: list[str] = []
    with (
        ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="iamgraph-acct") as acct_pool,
        ThreadPoolExecutor(
            max_workers=options.concurrency, thread_name_prefix="iamgraph-region"
        ) as region_pool,
    ):
        futures: dict[Future[list[CollectionError] | None], str] = {
            acct_pool.submit(_account_job, run, central_clients, a, n, region_pool): a for a, n in todo
        }
        try:
            for fut in as_completed(futures):
                acct = futures[fut]
                errs = fut.result()
                if errs is None:
                    collected.append(acct)
                else:
                    failed_errors[acct] = errs
        except BaseException:
            # Ctrl-C, or a bug in one account: stop the others at their next step; what is written stays.
            run.stop.set()
            for f in futures:
                f.cancel()
            raise

    snapshot = _assemble(run, central, plan, failed_errors)
    by_op = {f"{s}:{o}": n for (s, o), n in sorted(stats.by_operation.items())}
    return CollectResult(
        snapshot=snapshot,
        calls=stats.total,
        calls_by_operation=by_op,
        accounts_collected=tuple(sorted(collected)),
        accounts_resumed=tuple(sorted(a for a, _ in plan if a in done_before)),
        accounts_failed=tuple(sorted(failed_errors)),
    )


def _check_manifest(options: CollectOptions, caller: str) -> None:
    work = options.work_dir
    path = work / "manifest.json"
    want = _Manifest(
        organization=options.organization,
        caller_account=caller,
        regions=sorted(options.regions) if options.regions is not None else None,
        access_advisor=options.access_advisor,
    )
    if path.exists():
        if not options.resume:
            raise CollectorError(
                f"{work}: holds an earlier, unfinished collection; pass --resume to continue it, "
                "or choose another --work-dir"
            )
        have: _Manifest = _read(path, _Manifest)
        if have != want:
            raise CollectorError(
                f"{path}: the earlier collection used other settings ({have.model_dump()}); resume it with the "
                "same --organization/--regions/--access-advisor options and credentials, or use another --work-dir"
            )
        return
    if work.exists() and any(work.iterdir()) and not options.resume:
        raise CollectorError(f"{work}: work directory is not empty; choose an empty or new --work-dir")
    _write(path, want)


def _collect_central(run: _Run, clients: Clients) -> _Central:
    log = ErrorLog(run.caller)
    org = collect_organization(clients, log) if run.options.organization else None
    ic = None
    if run.options.identity_center:
        if run.options.identity_center_region:
            regions = [run.options.identity_center_region]
        elif run.options.regions is not None:
            regions = list(run.options.regions)
        else:
            regions = enabled_regions(clients, log)
        # Identity Center is one part of the organization's facts: if reading it fails part-way (beyond the
        # single calls, which are recorded where they fail), the failure is recorded and the accounts go on.
        with log.guard(service="iamgraph", call="CollectIdentityCenter", region=None):
            found = find_identity_center(clients, log, regions)
            if found is not None:
                region, instance = found
                ids = [a.id for a in org.accounts] if org else [run.caller]
                ic = collect_identity_center(clients, log, region=region, instance=instance, account_ids=ids)
    return _Central(organization=org, identity_center=ic, errors=log.errors)


def _plan(options: CollectOptions, caller: str, central: _Central) -> list[tuple[str, str | None]]:
    org = central.organization
    if org is None:
        found: list[tuple[str, str | None]] = [(caller, None)]
    else:
        # Only ACTIVE accounts can be reached; suspended ones are listed in the organization part.
        found = [(a.id, a.name) for a in org.accounts if a.status in (None, "ACTIVE")]
    if options.accounts is not None:
        wanted = set(options.accounts)
        unknown = wanted - {a for a, _ in found}
        if unknown:
            raise CollectorError(
                f"--accounts: not in the organization (or not active): {', '.join(sorted(unknown))}"
            )
        found = [(a, n) for a, n in found if a in wanted]
    excluded = set(options.exclude_accounts)
    return sorted((a, n) for a, n in found if a not in excluded)


def _account_job(
    run: _Run, central_clients: Clients, account_id: str, name: str | None, region_pool: Executor
) -> list[CollectionError] | None:
    """Collect one account and write its file; return None, or the errors when it could not be reached."""
    opts = run.options
    if run.stop.is_set():
        raise Cancelled(account_id)
    run.progress(ProgressEvent(kind=EventKind.STARTED, account_id=account_id, name=name))
    log = ErrorLog(account_id)
    if account_id == run.caller:
        session = run.base
    else:
        session_or_none = _assume(run, central_clients, account_id, log)
        if session_or_none is None:
            run.progress(
                ProgressEvent(kind=EventKind.FAILED, account_id=account_id, name=name, errors=len(log.errors))
            )
            return log.errors
        session = session_or_none
    # The caller's own account shares the central Clients: one lock per boto3 Session, which is not
    # thread-safe when clients are created from it concurrently.
    clients = central_clients if account_id == run.caller else run.clients(account_id, session)

    def sleep(seconds: float) -> None:
        if run.stop.is_set():  # Ctrl-C while Access Advisor jobs are polled: stop waiting
            raise Cancelled(account_id)
        opts.sleep(seconds)

    def step(label: str) -> None:
        if run.stop.is_set():
            raise Cancelled(account_id)
        run.progress(
            ProgressEvent(
                kind=EventKind.STEP,
                account_id=account_id,
                name=name,
                step=label,
                calls=run.stats.by_account[account_id],
                errors=len(log.errors),
            )
        )

    try:
        parts, advisor = _account_parts(run, clients, account_id, name, log, region_pool, step, sleep)
    except (CollectorError, Cancelled):
        raise
    except Exception as exc:
        # Not one call's or one item's failure (those are recorded where they happen) but the account's work
        # as a whole: recorded, the account is left out (and collected again by --resume), the others go on.
        log.add(
            service="iamgraph",
            call="CollectAccount",
            error_code=type(exc).__name__,
            message=f"the account's collection failed part-way and is left out: {exc}",
        )
        run.progress(
            ProgressEvent(kind=EventKind.FAILED, account_id=account_id, name=name, errors=len(log.errors))
        )
        return log.errors
    step("write")
    acct = parts.account.model_copy(update={"collected_at": _now()})
    calls = run.stats.by_account[account_id]
    _write(
        opts.work_dir / "accounts" / f"{account_id}.json",
        _AccountFile(
            account=acct,
            aws_managed_policies=parts.aws_managed_policies,
            access_advisor=advisor,
            errors=sorted(log.errors, key=_error_key),
            calls=calls,
        ),
    )
    run.progress(
        ProgressEvent(
            kind=EventKind.DONE,
            account_id=account_id,
            name=name,
            calls=calls,
            errors=len(log.errors),
            principals=len(acct.users) + len(acct.roles),
            resources=len(acct.resources) + len(acct.compute),
        )
    )
    return None


def _account_parts(
    run: _Run,
    clients: Clients,
    account_id: str,
    name: str | None,
    log: ErrorLog,
    region_pool: Executor,
    step: Callable[[str], None],
    sleep: Callable[[float], None],
) -> tuple[AccountParts, list[ServiceLastAccessed]]:
    opts = run.options
    parts = collect_account(
        account_id=account_id,
        name=name,
        clients=clients,
        log=log,
        regions=list(opts.regions) if opts.regions is not None else None,
        pool=region_pool,
        step=step,
        sleep=sleep,
    )
    advisor: list[ServiceLastAccessed] = []
    if opts.access_advisor:
        step("access advisor")
        principals = [u.arn for u in parts.account.users] + [r.arn for r in parts.account.roles]
        advisor = access_advisor(
            clients.get("iam", purpose="access-advisor"),
            log,
            principals,
            poll=opts.advisor_poll,
            sleep=sleep,
        )
    return parts, advisor


def _assume(run: _Run, central_clients: Clients, account_id: str, log: ErrorLog) -> boto3.Session | None:
    opts = run.options
    role_arn = f"arn:{run.partition}:iam::{account_id}:role/{opts.role_name}"
    sts: BaseClient = central_clients.get("sts")
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": opts.session_name}
    if opts.external_id:
        params["ExternalId"] = opts.external_id

    def fetch() -> dict[str, Any]:
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    try:
        first = fetch()
    except Exception as exc:  # any type; expired caller credentials stop the run (add_exception raises)
        log.add_exception(exc, service="sts", call="AssumeRole", region=None, resource=role_arn)
        return None
    # Refreshable, so an account that takes longer than the session (1 h by default) keeps going.
    creds = RefreshableCredentials.create_from_metadata(
        metadata=first, refresh_using=fetch, method="sts-assume-role"
    )
    bs = botocore.session.get_session()
    bs._credentials = (
        creds  # the documented way to hand a botocore session ready credentials has no public setter
    )
    return boto3.Session(botocore_session=bs, region_name=GLOBAL_REGION)


def _assemble(
    run: _Run, central: _Central, plan: list[tuple[str, str | None]], failed: dict[str, list[CollectionError]]
) -> Snapshot:
    accounts: list[Account] = []
    aws_policies: dict[str, ManagedPolicy] = {}
    advisor: list[ServiceLastAccessed] = []
    errors: list[CollectionError] = list(central.errors)
    for acct_id, _name in plan:
        if acct_id in failed:
            errors.extend(failed[acct_id])
            continue
        path = run.options.work_dir / "accounts" / f"{acct_id}.json"
        if not path.exists():
            continue
        data: _AccountFile = _read(path, _AccountFile)
        accounts.append(data.account)
        for p in data.aws_managed_policies:
            aws_policies.setdefault(p.arn, p)
        advisor.extend(data.access_advisor)
        errors.extend(data.errors)
    return Snapshot(
        collected_at=_now(),
        source="collector",
        tool_version=__version__,
        partition=run.partition,
        organization=central.organization,
        accounts=accounts,
        aws_managed_policies=sorted(aws_policies.values(), key=lambda p: p.arn),
        identity_center=central.identity_center,
        activity=Activity(
            access_advisor=advisor,
            tracking_period_days=TRACKING_PERIOD_DAYS if run.options.access_advisor else None,
        ),
        errors=sorted(errors, key=_error_key),
    )


def _error_key(e: CollectionError) -> tuple[str, str, str, str, str]:
    return (e.account_id or "", e.region or "", e.service, e.call, e.resource or "")


def _now() -> str:
    return datetime.now(UTC).isoformat()
