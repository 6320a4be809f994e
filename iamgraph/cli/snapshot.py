"""CLI commands: ``iamgraph snapshot import`` (files users already have -> snapshot) and ``snapshot info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.collect.files import load_paths
from iamgraph.snapshot import Snapshot, read_snapshot_checked, write_snapshot

snapshot_app = typer.Typer(
    name="snapshot",
    help="Create snapshots from saved AWS CLI output, and describe snapshots.",
    no_args_is_help=True,
)
app.add_typer(snapshot_app, name="snapshot")


@snapshot_app.command("import")
@handle_errors
def import_cmd(
    paths: list[Path] = typer.Argument(
        ...,
        help="Files or folders: get-account-authorization-details JSON (one file or several pages), "
        "an organizations export folder, a resource-policies/ folder, credential report CSV or JSON, "
        "an IAM Identity Center export folder, public-access-block/ and kms-grants/ folders. "
        "Layouts: docs/snapshot-format.md.",
        show_default=False,
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Snapshot file to write (.json.gz or .json)."),
    account_id: str | None = typer.Option(
        None,
        "--account-id",
        help="Account of inputs whose ARNs do not name one; must agree with ARNs that do.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import saved AWS CLI output into a snapshot file (written atomically)."""
    snap = load_paths(paths, account_id=account_id)
    written = write_snapshot(snap, output)
    summary = _summary(written, verified=True)
    if as_json:
        console.print_json(json.dumps({"output": str(output), **summary}))
        return
    console.print(
        f"wrote {output}: {len(written.accounts)} account(s), {written.content_hash}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    _print_summary(summary)


@snapshot_app.command("info")
@handle_errors
def info_cmd(
    path: Path = typer.Argument(..., help="Snapshot file (.json.gz or .json).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Describe a snapshot: counts per account and kind, organization, errors, collected_at, hash."""
    snap, verified = read_snapshot_checked(path)
    if as_json:
        console.print_json(json.dumps(_summary(snap, verified=verified)))
        return
    show_info(snap, verified)


def show_info(snap: Snapshot, verified: bool | None) -> None:
    """What ``snapshot info`` prints (``iamgraph demo`` shows its second step with it)."""
    _print_summary(_summary(snap, verified=verified))


def _summary(snap: Snapshot, *, verified: bool | None) -> dict[str, Any]:
    accounts = []
    for a in snap.accounts:
        accounts.append(
            {
                "account_id": a.account_id,
                "name": a.name,
                "users": len(a.users),
                "groups": len(a.groups),
                "roles": len(a.roles),
                "customer_managed_policies": len(a.policies),
                "inline_policies": sum(len(u.inline_policies) for u in a.users)
                + sum(len(g.inline_policies) for g in a.groups)
                + sum(len(r.inline_policies) for r in a.roles),
                "instance_profiles": len(a.instance_profiles),
                "saml_providers": len(a.saml_providers),
                "oidc_providers": len(a.oidc_providers),
                "resources": len(a.resources),
                "resource_policies": sum(1 for r in a.resources if r.policy is not None),
                "compute": len(a.compute),
                "credential_report_rows": len(a.credential_report),
            }
        )
    org = snap.organization
    ic = snap.identity_center
    return {
        "schema_version": snap.schema_version,
        "collected_at": snap.collected_at,
        "source": snap.source,
        "tool_version": snap.tool_version,
        "partition": snap.partition,
        "content_hash": snap.content_hash,
        "content_hash_verified": verified,
        "accounts": accounts,
        "aws_managed_policies": len(snap.aws_managed_policies),
        "organization": None
        if org is None
        else {
            "id": org.id,
            "management_account_id": org.management_account_id,
            "accounts": len(org.accounts),
            "organizational_units": len(org.organizational_units),
            "service_control_policies": sum(1 for p in org.policies if p.type == "SERVICE_CONTROL_POLICY"),
            "resource_control_policies": sum(1 for p in org.policies if p.type == "RESOURCE_CONTROL_POLICY"),
        },
        "identity_center": None
        if ic is None
        else {
            "permission_sets": len(ic.permission_sets),
            "assignments": len(ic.assignments),
            "users": len(ic.users),
            "groups": len(ic.groups),
        },
        "access_advisor_entries": len(snap.activity.access_advisor),
        "errors": [e.model_dump(mode="json", exclude_none=True) for e in snap.errors],
    }


_KINDS = (
    ("users", "users"),
    ("groups", "groups"),
    ("roles", "roles"),
    ("customer_managed_policies", "customer managed policies"),
    ("inline_policies", "inline policies"),
    ("instance_profiles", "instance profiles"),
    ("resources", "resources"),
    ("resource_policies", "resource policies"),
    ("compute", "compute"),
    ("saml_providers", "SAML providers"),
    ("oidc_providers", "OIDC providers"),
    ("credential_report_rows", "credential report rows"),
)


def _print_summary(s: dict[str, Any]) -> None:
    def out(text: str) -> None:
        # soft_wrap: ARNs and hashes stay on one line, so they can be copied and grepped
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    verified = {
        True: "verified",
        False: "MISMATCH: the file was changed after it was written",
        None: "not set",
    }[s["content_hash_verified"]]
    out(f"schema {s['schema_version']} · source {s['source']} · collected_at {s['collected_at']}")
    out(f"content hash {s['content_hash']} ({verified})")
    for a in s["accounts"]:
        counts = ", ".join(f"{a[key]} {title}" for key, title in _KINDS)
        out(f"account {a['account_id']}{' (' + a['name'] + ')' if a['name'] else ''}: {counts}")
    out(f"AWS managed policies: {s['aws_managed_policies']}")
    if s["organization"]:
        o = s["organization"]
        out(
            f"organization {o['id']} (management {o['management_account_id']}): {o['accounts']} accounts, "
            f"{o['organizational_units']} OUs, {o['service_control_policies']} SCPs, "
            f"{o['resource_control_policies']} RCPs"
        )
    if s["identity_center"]:
        i = s["identity_center"]
        out(f"Identity Center: {i['permission_sets']} permission sets, {i['assignments']} assignments")
    out(f"collection errors: {len(s['errors'])}")
    for e in s["errors"]:
        where = " ".join(str(e[k]) for k in ("account_id", "region") if k in e)
        resource = f" {e['resource']}:" if e.get("resource") else ""
        out(
            f"  {where} {e['service']}:{e['call']} {e['error_code']}{resource} {e.get('message', '')}".rstrip()
        )
