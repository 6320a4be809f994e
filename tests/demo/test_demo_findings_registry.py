"""The planted findings are one function each, named for the finding, in the one ordered tuple ``PLANTINGS``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from iamgraph.demo import DemoConfig, findings
from iamgraph.demo.context import Ctx
from iamgraph.demo.findings import PLANTINGS, Site
from iamgraph.demo.org import build_world

Step = Callable[[Ctx, Site], None]


def _function_name(item_id: str) -> str:
    """``privesc.create-policy-version`` -> ``privesc_create_policy_version``."""
    return item_id.replace(".", "_").replace("-", "_")


@pytest.mark.parametrize("config", [DemoConfig(with_activity=False), DemoConfig(accounts=11, seed=3, with_activity=False)])
def test_each_finding_is_planted_by_the_function_named_for_it(
    config: DemoConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step but ``scenery_*`` plants exactly one item, whose id is the step's name; scenery plants none."""
    planted_by: list[tuple[str, list[str]]] = []

    def watched(step: Step) -> Step:
        def run(ctx: Ctx, site: Site) -> None:
            before = len(ctx.planted)
            step(ctx, site)
            planted_by.append((step.__name__, [i.id for i in ctx.planted[before:]]))
        return run

    monkeypatch.setattr(findings, "PLANTINGS", tuple(watched(s) for s in PLANTINGS))
    world = build_world(config)
    assert [name for name, _ in planted_by] == [s.__name__ for s in PLANTINGS]
    for name, ids in planted_by:
        if name.startswith("scenery_"):
            assert ids == [], name
        else:
            assert [_function_name(i) for i in ids] == [name], (name, ids)
    # Nothing is planted outside the tuple.
    assert [i.id for i in world.planted] == [i for _, ids in planted_by for i in ids]


def test_the_tuple_names_each_function_once_and_holds_every_planting_function() -> None:
    names = [s.__name__ for s in PLANTINGS]
    assert len(names) == len(set(names))
    defined = {
        name for name, value in vars(findings).items()
        if callable(value) and getattr(value, "__module__", None) == findings.__name__ and not name.startswith("_")
        and name not in {"plant_findings", "Site", "ProdAdmins"}
    }
    assert defined == set(names)
