"""CLI commands: detect (deviation alerts)."""

from __future__ import annotations

from iamgraph.cli.app import app  # noqa: F401
