"""Property-based tests from the app's own OpenAPI document (schemathesis): whatever the generated input, no
5xx, and every response matches the schema the document declares for its status code."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_helpers import bearer, small_snapshot
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from api.main import create_app
from api.settings import Settings
from iamgraph.serving.tokens import Scope, TokenFile
from iamgraph.snapshot import write_snapshot

# schemathesis needs the schema at collection time (its pytest fixture loader does not work with pytest 9),
# so the app is built here, over files in a private temporary directory.
_DIR = tempfile.TemporaryDirectory(prefix="iamgraph-api-schemathesis-")
_SNAP = Path(_DIR.name) / "snapshot.json.gz"
write_snapshot(small_snapshot(), _SNAP)
_TOKEN, _ = TokenFile(Path(_DIR.name) / "tokens.json").create("schemathesis", tuple(Scope))
APP = create_app(Settings(snapshot=_SNAP, token_file=Path(_DIR.name) / "tokens.json"))
APP.state.holder.current.graph()  # built once, so graph endpoints answer within the time limit


@contextlib.asynccontextmanager
async def _no_lifespan(_: Any) -> AsyncIterator[None]:
    yield


# schemathesis (4.32) runs the app's lifespan around every call it makes, and the app's shutdown stops its work
# pool for good (a server shuts down once): every call after the first was answered 503 shutting_down. The pool
# lives as long as this module's app instead.
APP.router.lifespan_context = _no_lifespan
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

pytestmark = pytest.mark.slow  # demo organization / property-based: tens of seconds


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_openapi(case: Any) -> None:
    response = case.call(headers=bearer(_TOKEN))
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    # Semantic checks the schema cannot express ('0' is not an ARN, a permission set for an IAM user) answer 400
    # with a message: schema-valid is not the same as meaningful, so schemathesis's positive-data check is off;
    # everything else stays on (no 5xx, documented status codes, response schemas and headers, and inputs that
    # violate the schema are rejected).
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
