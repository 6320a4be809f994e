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
