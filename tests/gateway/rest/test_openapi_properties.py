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
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from contract.openapi import restricted_spec
from contract.routes import build_routes
from tests.gateway.rest.conftest import Front
from tests.people import RECIPIENT

EXAMPLES = 12
"""Requests per operation and generation mode: 27 operations x 2 modes x 12, about 650 calls."""
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _exercise(base_url: str, token: str) -> list[str]:
    """Run every operation's property test; the failures, one line each."""
    paths = [path for route in build_routes().routes for path in route.http_paths]
    schema = schemathesis.openapi.from_dict(restricted_spec(paths, base_url))
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result.err()
            operation = result.ok()
            bearer = "fc-lefebvre" if operation.path.endswith("/france_connect") else token
            headers = {"Authorization": f"Bearer {bearer}"}
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                try:
                    _property(operation, mode, session, base_url, headers)()
                except Exception as failure:  # each failure is reported with its operation
                    failures.append(f"{operation.label} ({mode.value}): {type(failure).__name__}: {failure}")
    return failures


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


@pytest.mark.timeout(300)  # about 650 generated calls: more than the suite's 60 s on a busy machine
async def test_the_front_conforms_to_the_current_spec(front: Front) -> None:
    """No server error, every answer of a documented status matches its schema and content type."""
    failures = await asyncio.wait_for(asyncio.to_thread(_exercise, front.base_url, front.token), 240)
    assert not failures, "\n\n".join(failures)
