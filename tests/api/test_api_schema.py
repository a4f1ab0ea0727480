"""Schemathesis against /openapi.json with an admin key: no 5xx, and every
response matches the documented status codes, content types and schemas."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.api.conftest import T0, LeakWatch, make_env
from harness.recorded import RunSpec, make_recording

_ENV = make_env(Path(tempfile.mkdtemp(prefix="vigil-schema-")))
_ENV.add_camera("cam1")
make_recording(_ENV.ctx.store, _ENV.catalog, "cam1", _ENV.workdir / "media", [RunSpec(T0, 4, 2)])

# the event stream never ends by itself; tests/api/test_api_events.py covers it over HTTP
schema = schemathesis.openapi.from_asgi("/openapi.json", LeakWatch(_ENV.app)).exclude(path="/api/events/stream")

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


@pytest.mark.e2e  # every route fuzzed: a few seconds each
@pytest.mark.solo  # one at a time: under pytest-xdist schemathesis' cases were silently not run
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_ENV.keys['admin']}"}, checks=CHECKS)
