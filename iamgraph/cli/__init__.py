"""Command line: ``iamgraph``. Each command group lives in its own module and registers on ``app``."""

from __future__ import annotations

from iamgraph.cli import (  # noqa: F401  (modules register their commands on import)
    change,
    collect,
    demo,
    demo_org,
    detect,
    gate,
    graph,
    recommend,
    serve,
    simulate,
    snapshot,
    usage,
)
from iamgraph.cli.app import app


def main() -> None:
    app()
