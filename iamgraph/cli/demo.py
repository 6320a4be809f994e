"""``iamgraph demo``: the main job on the built-in demo organization (no AWS account needed)."""

from __future__ import annotations

from pathlib import Path

import typer

from iamgraph.cli.app import app, console, handle_errors


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Working directory for the demo's files."),
) -> None:
    """Generate the demo organization, import it, and show what iamgraph finds."""
    console.print(f"demo output directory: {out}")
