"""What who-can keeps per graph (``iamgraph.query.kept``) never changes an answer: on the demo organization, every
tagged resource's who-can answers, asked one after the other of one graph (the tables filled by the questions
before), equal the answers of the same questions each asked with the tables emptied first (what who-can worked
out per question before the tables were kept)."""

from __future__ import annotations

import pytest

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.graph import AccessGraph, build_graph
from iamgraph.query.kept import kept
from iamgraph.query.sensitive import ACCESS_ACTIONS, sensitive
from iamgraph.query.who_can import Access, who_can, who_can_one

pytestmark = pytest.mark.slow

_KEY = "who_can_kept"


@pytest.fixture(scope="module")
def graphs() -> tuple[AccessGraph, AccessGraph]:
    snapshot = build_demo_snapshot(DemoConfig())
    return build_graph(snapshot), build_graph(snapshot)


def _questions(graph: AccessGraph) -> list[tuple[str, str]]:
    """Every tagged resource of the snapshot with the actions ``sensitive`` asks for its type (read and write, or
    decrypt and encrypt); a type ``sensitive`` does not analyse has none."""
    out: list[tuple[str, str]] = []
    for arn, res in sorted(graph.index.resources.items()):
        if not res.tags:
            continue
        for action, suffix in ACCESS_ACTIONS.get(res.type, {}).values():
            out.append((arn + suffix, action))
    return out


def _cold(graph: AccessGraph, resource: str, action: str) -> list[Access]:
    graph.cache.pop(_KEY, None)
    return who_can_one(graph, resource, action)


def test_every_tagged_resource_gets_the_same_answer_with_the_tables_kept_as_without(
    graphs: tuple[AccessGraph, AccessGraph],
) -> None:
    warm, cold = graphs
    questions = _questions(warm)
    assert len(questions) >= 40, "the demo organization tags fewer resources than this test is about"
    kept_answers = [who_can_one(warm, r, a) for r, a in questions]
    tables = kept(warm)
    # Not vacuous: the questions filled the tables (and later questions were answered from them).
    assert tables.reach._data and tables.options._data and tables.paths._data
    # Asked in the opposite order, each with the tables emptied first.
    fresh = {q: _cold(cold, *q) for q in reversed(questions)}
    differing = [q for q, answer in zip(questions, kept_answers, strict=True) if answer != fresh[q]]
    assert not differing
    assert sum(len(a) for a in kept_answers) > 500


def test_the_sensitive_section_and_who_can_are_the_same_on_a_graph_already_asked(
    graphs: tuple[AccessGraph, AccessGraph],
) -> None:
    warm, cold = graphs
    asked_before = sensitive(warm, "DataClassification")
    cold.cache.pop(_KEY, None)
    assert sensitive(cold, "DataClassification") == asked_before
    # The who-can command's question (all S3 buckets, object reads): after the section, and from empty tables.
    pattern = "arn:aws:s3:::*"
    after_section = who_can(warm, pattern, action="s3:GetObject")
    cold.cache.pop(_KEY, None)
    assert who_can(cold, pattern, action="s3:GetObject") == after_section
