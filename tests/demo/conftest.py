"""One default demo organization per test session (generated once; tests only read it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iamgraph.demo import DemoConfig, DemoResult, generate_demo


@pytest.fixture(scope="session")
def demo_default(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return generate_demo(tmp_path_factory.mktemp("demo-default"), DemoConfig())


@pytest.fixture(scope="session")
def demo_dir(demo_default: DemoResult) -> Path:
    return demo_default.out_dir
