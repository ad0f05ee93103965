"""Schemathesis, driven by the current spec, against the running REST front.

For every operation the front serves, Hypothesis generates requests from the
current spec, the published one and what came since (valid ones, and invalid
ones: missing, mistyped or out-of-range parameters), and each answer must pass
`not_a_server_error`, `response_schema_conformance` and `content_type_conformance`.
The API token (or, on the FranceConnect routes, a sandbox FranceConnect token)
holds every scope, so that every response field is there to be checked.
Bounded: a fixed number of examples per operation and generation mode,
derandomized so that every run sends the same requests.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from contract.openapi import restricted_spec
from contract.routes import build_routes
from tests.gateway.rest.conftest import Front
from tests.people import RECIPIENT

EXAMPLES = 12
"""Requests per operation and generation mode: 41 operations x 2 modes x 12, about 980 calls."""
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
PATHS = [path for route in build_routes().routes for path in route.http_paths]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@cache
def _schema(base_url: str) -> Any:
    """The spec of every path the front serves, its server ``base_url``: parsed once a process."""
    return schemathesis.openapi.from_dict(restricted_spec(PATHS, base_url))


def _exercise(base_url: str, token: str, path: str, mode: schemathesis.GenerationMode) -> None:
    """Run the property test of ``path``'s operation in ``mode``; raises its first failure."""
    operation = _schema(base_url)[path]["GET"]
    bearer = "fc-lefebvre" if path.endswith("/france_connect") else token
    with requests.Session() as session:
        _property(operation, mode, session, base_url, {"Authorization": f"Bearer {bearer}"})()


def _property(
    operation: Any,
    mode: schemathesis.GenerationMode,
    session: requests.Session,
    base_url: str,
    headers: dict[str, str],
) -> Any:
    # Positive requests name a real SIRET, so that they get past the recipient check to the providers.
    query = {"recipient": RECIPIENT} if mode is schemathesis.GenerationMode.POSITIVE else None
    strategy = operation.as_strategy(generation_mode=mode, query=query)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS)

    return check


def test_every_operation_of_the_front_s_paths_is_a_get() -> None:
    """The operations exercised below, a GET per path, are every one the spec gives the front's paths."""
    spec = restricted_spec(PATHS, "http://127.0.0.1")
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    operations = {
        (method, path) for path, item in spec["paths"].items() for method in item if method in methods
    }
    assert operations == {("get", path) for path in PATHS}


# One test per operation and mode (each a few seconds), not one for them all: the parallel run
# shares them out among its processes instead of one process running the 980 calls alone.
@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("path", PATHS)
async def test_the_front_conforms_to_the_current_spec(
    front: Front, path: str, mode: schemathesis.GenerationMode
) -> None:
    """No server error, every answer of a documented status matches its schema and content type."""
    await asyncio.wait_for(asyncio.to_thread(_exercise, front.base_url, front.token, path, mode), 240)
