"""The demo organization generator: a seeded, realistic AWS organization with planted findings and activity.

``generate_demo(out_dir, config)`` writes ``snapshot.json.gz``, ``cloudtrail/AWSLogs/...`` and
``planted.json``; ``build_demo_snapshot(config)`` returns the snapshot in memory. What is planted is
documented in docs/demo-org.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from iamgraph import __version__
from iamgraph.demo.activity import Usage, deviation_windows, stream_activity
from iamgraph.demo.config import DemoConfig, DemoConfigError, DemoCounts, DemoOutputError, DemoResult
from iamgraph.demo.org import World, build_world
from iamgraph.demo.planted import Expect, PlantedItem, PlantedKind
from iamgraph.demo.world import iso
from iamgraph.snapshot.io import atomic_write_bytes, write_snapshot
from iamgraph.snapshot.model import (
    Account,
    Activity,
    RoleLastUsed,
    ServiceLastAccessed,
    Snapshot,
    TrackedAction,
)

__all__ = [
    "DemoConfig",
    "DemoConfigError",
    "DemoCounts",
    "DemoOutputError",
    "DemoResult",
    "Expect",
    "PlantedItem",
    "PlantedKind",
    "build_demo_snapshot",
    "generate_demo",
]

_CRED_COLUMNS = (
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
    "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active", "cert_1_last_rotated",
    "cert_2_active", "cert_2_last_rotated",
)


def _credential_report(world: World, acct_idx: int, usage: Usage | None) -> list[dict[str, str]]:
    """Rows as the IAM credential report writes them (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html).

    ``N/A`` where a field does not apply, ``no_information`` where IAM has no record, ``not_supported`` for the
    root user's password fields.
    """
    acct = world.accounts[acct_idx]
    root_created = acct.created(900, 1500)
    rows = [{
        "user": "<root_account>", "arn": acct.root_arn, "user_creation_time": root_created,
        "password_enabled": "not_supported", "password_last_used": "no_information",
        "password_last_changed": "not_supported", "password_next_rotation": "not_supported",
        "mfa_active": "true" if acct.mfa_root else "false",
        "access_key_1_active": "false", "access_key_1_last_rotated": "N/A", "access_key_1_last_used_date": "N/A",
        "access_key_1_last_used_region": "N/A", "access_key_1_last_used_service": "N/A",
        "access_key_2_active": "false", "access_key_2_last_rotated": "N/A", "access_key_2_last_used_date": "N/A",
        "access_key_2_last_used_region": "N/A", "access_key_2_last_used_service": "N/A",
        "cert_1_active": "false", "cert_1_last_rotated": "N/A", "cert_2_active": "false", "cert_2_last_rotated": "N/A",
    }]
    if acct_idx == 0 and usage is not None:
        root_login = [t for (arn, t) in usage.console_last_used.items() if arn == acct.root_arn]
        if root_login:
            rows[0]["password_last_used"] = root_login[0]
    for u in acct.users:
        stale = world.stale_credentials.get(u.arn, {})
        row: dict[str, str] = dict.fromkeys(_CRED_COLUMNS, "N/A")
        row.update(user=u.name, arn=u.arn, user_creation_time=u.create_date or "N/A",
                   password_enabled="true" if u.has_console_password else "false",
                   mfa_active="true" if u.mfa_devices else "false",
                   access_key_1_active="false", access_key_2_active="false", cert_1_active="false",
                   cert_2_active="false")
        if u.has_console_password:
            used = (usage.console_last_used.get(u.arn) if usage else None) or stale.get("password_last_used")
            row["password_last_used"] = used or "no_information"
            row["password_last_changed"] = u.create_date or "N/A"
        for i, key in enumerate(u.access_keys[:2], start=1):
            row[f"access_key_{i}_active"] = "true" if key.status == "Active" else "false"
            row[f"access_key_{i}_last_rotated"] = key.create_date or "N/A"
            hit = usage.key_last_used.get(key.access_key_id) if usage else None
            if hit:
                row[f"access_key_{i}_last_used_date"], row[f"access_key_{i}_last_used_region"], \
                    row[f"access_key_{i}_last_used_service"] = hit
            elif i == 1 and "access_key_1_last_used_date" in stale:
                for col in ("date", "region", "service"):
                    row[f"access_key_1_last_used_{col}"] = stale[f"access_key_1_last_used_{col}"]
        rows.append(row)
    return rows


def _apply_usage(world: World, usage: Usage | None) -> None:
    for acct in world.accounts:
        for role in acct.roles:
            hit = usage.principals.get(role.arn) if usage else None
            role.last_used = RoleLastUsed(last_used_date=hit.time, region=hit.region) if hit else None
        for user in acct.users:
            stale = world.stale_credentials.get(user.arn, {})
            console = usage.console_last_used.get(user.arn) if usage else None
            user.password_last_used = console or stale.get("password_last_used")
            for i, key in enumerate(user.access_keys):
                key_hit = usage.key_last_used.get(key.access_key_id) if usage else None
                if key_hit:
                    key.last_used_date, key.last_used_region, key.last_used_service = key_hit
                elif i == 0 and stale.get("access_key_1_last_used_date"):
                    key.last_used_date = stale["access_key_1_last_used_date"]
                    key.last_used_region = stale["access_key_1_last_used_region"]
                    key.last_used_service = stale["access_key_1_last_used_service"]


def _access_advisor(world: World, usage: Usage) -> list[ServiceLastAccessed]:
    """Service- and action-level last access per principal, from exactly the emitted records."""
    done = iso(world.cfg.end_date)
    tracked: dict[tuple[str, str], list[TrackedAction]] = {}
    for (arn, action), last in sorted(usage.actions.items()):
        service = action.split(":", 1)[0]
        tracked.setdefault((arn, service), []).append(TrackedAction(
            action_name=action.split(":", 1)[1], last_accessed_time=last.time, last_accessed_region=last.region,
            last_accessed_entity=arn))
    out = []
    for (arn, service), last in sorted(usage.services.items()):
        out.append(ServiceLastAccessed(
            principal_arn=arn, service_namespace=service, last_authenticated=last.time, last_authenticated_entity=arn,
            last_authenticated_region=last.region, total_authenticated_entities=1,
            tracked_actions=tracked.get((arn, service), []), job_completion_date=done))
    return out


def _not_accessed(snap: Snapshot) -> list[ServiceLastAccessed]:
    """The rest of each principal's Access Advisor report: AWS lists every service the principal's permissions
    policies allow, with no ``LastAuthenticated`` for those not accessed in the tracking period ("The report includes
    a list of AWS services that the resource can access",
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetServiceLastAccessedDetails.html). Written for the
    principals whose report the demo has (those with activity)."""
    from iamgraph.catalog import get_catalog
    from iamgraph.model.policy import parse_policy
    from iamgraph.snapshot.index import SnapshotIndex

    cat = get_catalog()
    index = SnapshotIndex(snap)
    have: dict[str, set[str]] = {}
    done: dict[str, str | None] = {}
    for e in snap.activity.access_advisor:
        have.setdefault(e.principal_arn, set()).add(e.service_namespace)
        done[e.principal_arn] = e.job_completion_date
    out: list[ServiceLastAccessed] = []
    for arn, services in sorted(have.items()):
        entity = index.users.get(arn) or index.roles.get(arn)
        if entity is None:
            continue
        docs = [ip.document for ip in entity.inline_policies]
        attached = list(entity.attached_managed_policies)
        if arn in index.users:
            for g in index.groups_of(index.users[arn]):
                docs.extend(ip.document for ip in g.inline_policies)
                attached.extend(g.attached_managed_policies)
        for parn in dict.fromkeys(attached):
            mp = index.policies.get(parn)
            doc = mp.default_document() if mp is not None else None
            if doc is not None:
                docs.append(doc)
        granted = cat.allowed_actions(parse_policy(dict(d), source=arn, principal=False) for d in docs)
        for service in sorted({a.split(":", 1)[0] for a in granted} - services):
            out.append(ServiceLastAccessed(principal_arn=arn, service_namespace=service, total_authenticated_entities=0,
                                           job_completion_date=done[arn]))
    return out


def _snapshot(world: World, usage: Usage | None) -> Snapshot:
    _apply_usage(world, usage)
    accounts = []
    for i, a in enumerate(world.accounts):
        accounts.append(Account(
            account_id=a.account_id, name=a.name, alias=f"examplecorp-{a.name}", collected_at=iso(world.cfg.end_date),
            users=a.users, groups=a.groups, roles=a.roles, policies=a.policies, instance_profiles=a.instance_profiles,
            saml_providers=a.saml_providers, oidc_providers=a.oidc_providers, resources=a.resources,
            compute=a.compute_items, credential_report=_credential_report(world, i, usage),
            public_access_block=a.public_access_block, regions=["us-east-1", "us-west-2", "eu-west-1"]))
    activity = Activity(access_advisor=_access_advisor(world, usage) if usage else [],
                        tracking_period_days=world.cfg.days if usage else None)
    snap = Snapshot(collected_at=iso(world.cfg.end_date), source="demo", tool_version=f"iamgraph {__version__}",
                    organization=world.org, accounts=accounts,
                    aws_managed_policies=[world.aws_managed[k] for k in sorted(world.aws_managed)],
                    identity_center=world.identity_center, activity=activity)
    if usage:
        snap.activity.access_advisor = sorted([*snap.activity.access_advisor, *_not_accessed(snap)],
                                              key=lambda e: (e.principal_arn, e.service_namespace))
    return snap


def build_demo_snapshot(config: DemoConfig) -> Snapshot:
    """The demo organization as a snapshot, in memory. With activity, access advisor and last-used fields
    come from the same records ``generate_demo`` would write (they are generated and counted, not kept)."""
    config.validate()
    world = build_world(config)
    usage = stream_activity(world, None) if config.with_activity and config.events_per_day >= 0 else None
    return _snapshot(world, usage if config.with_activity else None)


def _manifest(world: World, usage: Usage | None) -> dict[str, Any]:
    windows = deviation_windows(world) if usage else {}
    items = []
    for item in world.planted:
        if item.id in windows:
            item = replace(item, window=windows[item.id])
        items.append(item.to_json())
    return {
        "generator": "iamgraph demo-org",
        "seed": world.cfg.seed,
        "organization_id": world.org.id,
        "management_account_id": world.org.management_account_id,
        "accounts": {a.name: a.account_id for a in world.accounts},
        "window": {"start": iso(world.cfg.end_date - timedelta(days=world.cfg.days)), "end": iso(world.cfg.end_date),
                   "days": world.cfg.days, "activity": usage is not None},
        "items": items,
    }


def generate_demo(out_dir: Path, config: DemoConfig) -> DemoResult:
    """Write the demo organization into ``out_dir`` (created if missing; files are replaced atomically)."""
    config.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoOutputError(f"{out_dir}: exists and is not a directory")
    try:
        return _generate(out_dir, config)
    except OSError as exc:
        raise DemoOutputError(f"{exc.filename or out_dir}: cannot write the demo: {exc.strerror or exc}") from exc


def _generate(out_dir: Path, config: DemoConfig) -> DemoResult:
    world = build_world(config)
    trail_root = out_dir / "cloudtrail" if config.with_activity else None
    usage = None
    if trail_root is not None:
        # Write into a staging directory and swap it in whole: readers see the old tree or the new one.
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".cloudtrail.", dir=out_dir))
        try:
            usage = stream_activity(world, staging)
            old = out_dir / f".cloudtrail.old.{os.getpid()}"
            if trail_root.exists():
                os.replace(trail_root, old)
            os.replace(staging, trail_root)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    snap = _snapshot(world, usage)
    snap_path = out_dir / "snapshot.json.gz"
    write_snapshot(snap, snap_path)
    planted_path = out_dir / "planted.json"
    atomic_write_bytes(planted_path, orjson.dumps(_manifest(world, usage), option=orjson.OPT_INDENT_2) + b"\n")
    counts = DemoCounts(
        accounts=len(snap.accounts), users=sum(len(a.users) for a in snap.accounts),
        roles=sum(len(a.roles) for a in snap.accounts), groups=sum(len(a.groups) for a in snap.accounts),
        customer_policies=sum(len(a.policies) for a in snap.accounts), aws_managed_policies=len(snap.aws_managed_policies),
        resources=sum(len(a.resources) for a in snap.accounts), compute=sum(len(a.compute) for a in snap.accounts),
        permission_sets=len(world.identity_center.permission_sets), planted=len(world.planted),
        cloudtrail_files=usage.files if usage else 0, cloudtrail_events=usage.events if usage else 0)
    return DemoResult(out_dir=out_dir, snapshot=snap_path, cloudtrail_root=trail_root, planted=planted_path,
                      organization_id=world.org.id, counts=counts)
