"""docs/snapshot-format.md documents every field of the snapshot model (the house rule for new fields)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

import iamgraph.snapshot.model as model
from iamgraph.snapshot import SCHEMA_VERSION

DOC = Path(__file__).resolve().parents[2] / "docs" / "snapshot-format.md"
MODELS = [
    c
    for c in vars(model).values()
    if isinstance(c, type)
    and issubclass(c, BaseModel)
    and c.__module__ == model.__name__
    and not c.__name__.startswith("_")
]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_every_field_is_documented(cls: type[BaseModel]) -> None:
    text = DOC.read_text()
    missing = [f for f in cls.model_fields if not re.search(rf"`{re.escape(f)}\??`", text)]
    assert not missing, f"{cls.__name__}: document {missing} in docs/snapshot-format.md"


def test_the_documented_version_is_the_current_one() -> None:
    assert f"currently `{SCHEMA_VERSION}`" in DOC.read_text()
