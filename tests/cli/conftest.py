"""Fixtures for the command-line tests: one demo organization per session (tests only read it)."""

from __future__ import annotations

import pytest

from iamgraph.demo import DemoConfig, DemoResult, generate_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return generate_demo(tmp_path_factory.mktemp("cli-demo"), DemoConfig())
