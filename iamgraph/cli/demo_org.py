"""CLI commands: demo_org (to be filled by its issue)."""

from __future__ import annotations

from iamgraph.cli.app import app  # noqa: F401
