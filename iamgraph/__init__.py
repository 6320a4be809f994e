"""iamgraph: AWS IAM least-privilege analyzer and policy recommender.

``iamgraph.authorize(request, policies, mode=...)`` evaluates explicit policies with AWS's evaluation logic;
``iamgraph.SnapshotEvaluator`` evaluates principals of a snapshot (``ask``). Both load lazily so that importing a
low layer (``iamgraph.model``) does not pull in the engine.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "authorize": "iamgraph.eval.engine",
    "named_policy": "iamgraph.eval",
    "SnapshotEvaluator": "iamgraph.eval",
    "Mode": "iamgraph.eval",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'iamgraph' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
