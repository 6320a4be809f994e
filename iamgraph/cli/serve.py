"""CLI commands: ``iamgraph serve`` (the HTTP API) and ``iamgraph token create|list|revoke``.

The CLI layer may not import ``api`` (the layer above it), so ``serve`` hands its options to uvicorn as
``IAMGRAPH_API_*`` environment variables and names the app factory as a string, ``api.main:app_from_env``,
which uvicorn imports itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.cli.inputs import alias, require_output_file
from iamgraph.errors import InputError
from iamgraph.serving.settings import ENV_PREFIX, is_loopback
from iamgraph.serving.tokens import TokenFile, parse_scopes

DEFAULT_TOKEN_FILE = Path("iamgraph-tokens.json")

token_app = typer.Typer(help="Manage the HTTP API's bearer tokens (stored hashed in a token file).",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command("serve")
@handle_errors
def serve(
    snapshot: Path = typer.Option(..., "--snapshot", "-s", help="Snapshot file to serve (reloadable with "
                                  "POST /v1/snapshots/reload after replacing the file)."),
    usage: Path | None = typer.Option(None, "--db", help="Usage store (DuckDB file) for the unused and "
                                      "recommendation endpoints."),
    usage_old: Path | None = typer.Option(None, "--usage", hidden=True, help="Old spelling of --db."),
    token_file: Path | None = typer.Option(None, "--token-file", help="Token file written by 'iamgraph token "
                                           f"create' (default: ./{DEFAULT_TOKEN_FILE} when it exists, the file "
                                           "'token create' writes by default). Required unless "
                                           "--allow-anonymous-local."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Put a TLS reverse proxy in "
                             "front for anything but loopback (docs/api.md)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    audit_log: Path | None = typer.Option(None, "--audit-log", help="Append one JSON line per API call, "
                                          "answered or refused, to this file (bodies as SHA-256 and size)."),
    allow_anonymous_local: bool = typer.Option(False, "--allow-anonymous-local", help="Serve without tokens "
                                               "to loopback callers (only with a loopback --host)."),
    warm_graph: bool = typer.Option(False, "--warm-graph", help="Build the access graph at start instead of "
                                    "on the first request that needs it."),
    allow_unhashed_snapshot: bool = typer.Option(False, "--allow-unhashed-snapshot", help="Let a reload swap in a "
                                                 "snapshot file that has no content_hash (refused by default)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="uvicorn worker processes (each loads "
                                "the snapshot and builds its own graph)."),
    time_limit: float = typer.Option(30.0, "--time-limit", min=0.1, max=3600, help="Per-request time limit in "
                                     "seconds; a request over it gets 503."),
    config: Path | None = typer.Option(None, "--config", help="Project config file (iamgraph.yaml) whose "
                                       "'recommend' and 'evidence.logged' sections the recommendation and unused "
                                       "endpoints follow; ./iamgraph.yaml is used when present."),
) -> None:
    """Serve the HTTP API (FastAPI under uvicorn) over a snapshot."""
    usage = alias(usage, usage_old, "--db", "--usage")
    if token_file is None and not allow_anonymous_local and DEFAULT_TOKEN_FILE.is_file():
        # The file `iamgraph token create` writes when given no --token-file: the two commands pair up as is.
        token_file = DEFAULT_TOKEN_FILE
    if token_file is None and not allow_anonymous_local:
        raise InputError(f"no token file: create one with 'iamgraph token create' (it writes ./{DEFAULT_TOKEN_FILE}, "
                         "which serve then reads), give --token-file, or, for local use only, "
                         "--allow-anonymous-local")
    if allow_anonymous_local and not is_loopback(host):
        raise InputError(f"--allow-anonymous-local is only allowed with a loopback --host, not {host!r}")
    if not snapshot.exists():
        raise InputError("no such snapshot file", source=str(snapshot))
    if token_file is not None and not token_file.exists():
        raise InputError("no such token file (create one with 'iamgraph token create --token-file ...')",
                         source=str(token_file))
    if config is None and Path("iamgraph.yaml").is_file():
        config = Path("iamgraph.yaml")
    if config is not None:
        from iamgraph.recommend import load_config

        load_config(config)  # a bad file is one line and exit 2 here, not a failed start inside uvicorn
    env = {
        "SNAPSHOT": str(snapshot.resolve()),
        "CONFIG": str(config.resolve()) if config else "",
        "USAGE": str(usage.resolve()) if usage else "",
        "TOKEN_FILE": str(token_file.resolve()) if token_file else "",
        "AUDIT_LOG": str(audit_log.resolve()) if audit_log else "",
        "ALLOW_ANONYMOUS_LOCAL": "1" if allow_anonymous_local else "0",
        "HOST": host,
        "WARM_GRAPH": "1" if warm_graph else "0",
        "ALLOW_UNHASHED_SNAPSHOT": "1" if allow_unhashed_snapshot else "0",
        "TIME_LIMIT": str(time_limit),
    }
    for key, value in env.items():
        os.environ[ENV_PREFIX + key] = value
    import uvicorn

    console.print(f"iamgraph API on http://{host}:{port} (snapshot {snapshot})", highlight=False)
    uvicorn.run("api.main:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=False, server_header=False)


@token_app.command("create")
@handle_errors
def token_create(
    name: str = typer.Option(..., "--name", help="Who the token is for; the audit log records it."),
    scopes: str = typer.Option("read", "--scopes", help="Comma-separated: read, evaluate, admin."),
    token_file: Path = typer.Option(DEFAULT_TOKEN_FILE, "--token-file", help="Token file to add it to "
                                    "(created if missing; written atomically, mode 600)."),
) -> None:
    """Create a token. It is printed once; only its salted hash is stored."""
    require_output_file(token_file, "--token-file")
    try:
        token, rec = TokenFile(token_file).create(name, parse_scopes(scopes))
    except OSError as exc:  # the message names the file the user gave, not the temporary file beside it
        raise InputError(f"cannot write: {exc.strerror or exc}", source=f"--token-file {token_file}") from None
    console.print(f"created token {rec.token_id} for {rec.name} with scopes "
                  f"{','.join(s.value for s in rec.scopes)} in {token_file}", highlight=False, soft_wrap=True)
    console.print("store it now; it cannot be shown again:", highlight=False)
    typer.echo(token)


@token_app.command("list")
@handle_errors
def token_list(
    token_file: Path = typer.Option(DEFAULT_TOKEN_FILE, "--token-file", help="Token file to read."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (ids, names, scopes; never hashes)."),
) -> None:
    """List tokens (ids, names, scopes, revoked or not)."""
    import json

    records = TokenFile(token_file).load()
    rows = [{"id": r.token_id, "name": r.name, "scopes": [s.value for s in r.scopes],
             "created_at": r.created_at, "revoked": r.revoked} for r in records]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("id", "name", "scopes", "created", "revoked")
    for r in records:
        table.add_row(r.token_id, r.name, ",".join(s.value for s in r.scopes), r.created_at,
                      "yes" if r.revoked else "")
    console.print(table)


@token_app.command("revoke")
@handle_errors
def token_revoke(
    name_or_id: str = typer.Argument(..., help="The token's name or id."),
    token_file: Path = typer.Option(DEFAULT_TOKEN_FILE, "--token-file", help="Token file to change."),
) -> None:
    """Revoke a token. A running server notices the changed file on its next request."""
    rec = TokenFile(token_file).revoke(name_or_id)
    console.print(f"revoked token {rec.token_id} ({rec.name})", highlight=False)
