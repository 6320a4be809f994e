"""Observability of actions: data events, authorization-only permissions, actions without events."""

from __future__ import annotations

import pytest

from iamgraph.usage.mapping import EventMapper
from iamgraph.usage.observability import ObservabilityModel
from iamgraph.usage.types import ObservabilityKind


@pytest.fixture(scope="module")
def mapper() -> EventMapper:
    return EventMapper()


def test_kinds(mapper: EventMapper) -> None:
    model = ObservabilityModel(mapper)
    # Management events are logged by every trail.
    assert model.observability("iam:CreateRole").kind is ObservabilityKind.OBSERVABLE
    assert model.observability("s3:ListAllMyBuckets").kind is ObservabilityKind.OBSERVABLE
    # S3 object-level calls and Lambda Invoke are data events, off by default.
    assert model.observability("s3:GetObject").kind is ObservabilityKind.DATA_EVENT
    assert model.observability("lambda:InvokeFunction").kind is ObservabilityKind.DATA_EVENT
    assert model.observability("dynamodb:GetItem").kind is ObservabilityKind.DATA_EVENT
    # PassRole is a permission, not an API call.
    pr = model.observability("iam:PassRole")
    assert pr.kind is ObservabilityKind.NOT_LOGGED and "permission" in pr.reason
    assert model.observability("s3:GetObjectVersion").kind is ObservabilityKind.NOT_LOGGED
    assert model.observability("nosuch:Action").kind is ObservabilityKind.UNKNOWN_ACTION
    assert not model.observability("s3:GetObject").observable


def test_data_events_when_logged(mapper: EventMapper) -> None:
    model = ObservabilityModel(mapper, data_events={"s3"}, access_advisor_action_level={"s3"})
    obs = model.observability("s3:GetObject")
    assert obs.observable and obs.access_advisor_action_level
    assert model.observability("lambda:InvokeFunction").kind is ObservabilityKind.DATA_EVENT


def test_actions_without_any_api_are_no_event(mapper: EventMapper) -> None:
    model = ObservabilityModel(mapper)
    # lambda:InvokeFunctionUrl is authorized on function URL requests; there is no SDK operation for it.
    assert model.observability("lambda:InvokeFunctionUrl").kind is ObservabilityKind.NO_EVENT


def test_the_judgements_share_one_model_per_configuration_and_only_that(mapper: EventMapper) -> None:
    """``iamgraph report`` judges the same evidence for its unused section and its recommendations: the observability
    models are kept per process (``judgement.observability_model``). Each configuration gets its own: every
    combination of data events, management events and Access Advisor's action-level services, asked one after the
    other, answers as a model made fresh for it, and asking again returns the kept one."""
    from itertools import product

    from iamgraph.usage.judgement import observability_model

    actions = ("s3:GetObject", "sqs:ListQueues", "iam:PassRole", "iam:CreateRole", "lambda:InvokeFunction",
               "nosuch:Action")
    configs = list(product((frozenset(), frozenset({"s3"})), (True, False), (frozenset(), frozenset({"s3"}))))
    kept = []
    for data, management, aa in configs:
        model = observability_model(data, management, aa)
        fresh = ObservabilityModel(mapper, data_events=data, management_events=management,
                                   access_advisor_action_level=aa)
        assert [model.observability(a) for a in actions] == [fresh.observability(a) for a in actions], \
            (data, management, aa)
        kept.append(model)
    assert len({id(m) for m in kept}) == len(configs)
    assert [observability_model(*c) for c in configs] == kept
