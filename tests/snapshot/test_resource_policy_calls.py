"""The one table of resource-policy reads names real AWS operations of the right service.

The live collector records a failed policy read under the operation's name, the offline import under the same
name, and the queries mark a resource's answers incomplete by matching it; a misspelt name would silently turn an
unread policy into "no policy". The operation names are checked against botocore's service models (the API
definitions the AWS SDKs are generated from).
"""

from __future__ import annotations

import botocore.session
import pytest

from iamgraph.collect.files import _POLICY_CALLS
from iamgraph.query.incomplete import POLICY_CALLS
from iamgraph.snapshot.model import RESOURCE_POLICY_CALLS

_SESSION = botocore.session.get_session()


@pytest.mark.parametrize(("rtype", "call"), sorted(RESOURCE_POLICY_CALLS.items()))
def test_call_is_an_operation_of_the_resource_service(rtype: str, call: str) -> None:
    service = rtype.split(":", 1)[0]
    model = _SESSION.get_service_model(service)
    assert call in model.operation_names


def test_the_import_and_the_queries_use_the_same_table() -> None:
    assert POLICY_CALLS is RESOURCE_POLICY_CALLS
    assert {f"{service}:" for service in _POLICY_CALLS} == {t.split(":", 1)[0] + ":" for t in RESOURCE_POLICY_CALLS}
    for rtype, call in RESOURCE_POLICY_CALLS.items():
        assert _POLICY_CALLS[rtype.split(":", 1)[0]] == call
