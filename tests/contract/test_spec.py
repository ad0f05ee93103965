"""The published OpenAPI spec as the oracle of the contract, through `contract.v3_json`.

Every sandbox answer of every provider method, rendered, validates against the
spec's schema of the method's REST path; and the spec's own field examples parse
strictly into the contract's messages and render back identical.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from contract.routes import Route, build_routes
from contract.v3_json import DATA_FIELD, data_object, meta_object, withheld_of
from tests.openapi import data_schema, example, http_paths, spec, violations
from tests.rich_status import rich_status
from tests.sandbox_cases import Case, cases, method, sandbox_providers

ROUTES = build_routes()
CASES = cases(ROUTES, dt.date.today())


@pytest.fixture(scope="module")
async def channels() -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    """A channel to every provider service, each on its sandbox backend."""
    async with sandbox_providers() as addresses:
        opened = {name: grpc.aio.insecure_channel(address) for name, address in addresses.items()}
        try:
            yield opened
        finally:
            for channel in opened.values():
                await channel.close(None)


@pytest.mark.parametrize("route", ROUTES.routes, ids=lambda route: route.method)
def test_every_method_names_paths_of_the_spec(route: Route) -> None:
    """Each provider method declares at least one REST path, and the spec has each."""
    assert http_paths(route)
    assert set(http_paths(route)) <= spec()["paths"].keys()


def test_every_method_has_sandbox_answers() -> None:
    """No method goes unchecked for want of a sandbox person to ask."""
    answered = {case.route.path for case in CASES if case.answers}
    assert answered == {route.path for route in ROUTES.routes}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_every_sandbox_answer_validates_against_the_spec(
    channels: dict[str, grpc.aio.Channel], case: Case
) -> None:
    """Each sandbox person's rendered data and meta objects fit the spec's 200 schema of its path.

    A person without an answer is NOT_FOUND, with the code of the refusal the population names.
    """
    call = method(channels[case.route.provider], case.route)
    if not case.answers:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(case.request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        if case.refusal is not None:
            assert rich_status(refused.value).api_code == case.refusal
        return
    response = await call(case.request, timeout=5)
    assert withheld_of(response) == []
    data, meta = data_object(response), meta_object(response)
    for path in http_paths(case.route):
        assert violations(path, data) == [], path
        assert violations(path, meta, "meta") == [], path


@pytest.mark.parametrize("route", ROUTES.routes, ids=lambda route: route.method)
def test_spec_examples_parse_strictly_and_render_back(route: Route) -> None:
    """A data object made of the spec's field examples is the contract's message, field for field.

    Parsing refuses a field the message lacks; rendering back gives every field
    the example has, with the same JSON type (an integer example of a ``number``
    may come back as a float), and adds only null fields the spec's schema admits.
    """
    for path in http_paths(route):
        schema = data_schema(path)
        built = example(schema)
        response = route.response_class()
        json_format.ParseDict(built, getattr(response, DATA_FIELD))
        assert_renders_as(data_object(response), built, schema, path)


def assert_renders_as(rendered: Any, built: Any, schema: dict[str, Any], where: str) -> None:
    """``rendered`` is ``built``, up to the null extra properties ``schema`` admits."""
    if schema.get("type") == "object" and built is not None:
        assert isinstance(rendered, dict), where
        extra = rendered.keys() - built.keys()
        assert built.keys() <= rendered.keys(), where
        assert not extra or schema.get("additionalProperties", True) is not False, (where, extra)
        assert all(rendered[name] is None for name in extra), (where, extra)
        for name, value in built.items():
            assert_renders_as(rendered[name], value, schema["properties"][name], f"{where}.{name}")
    elif schema.get("type") == "array" and built is not None:
        assert isinstance(rendered, list) and len(rendered) == len(built), where
        for item, value in zip(rendered, built, strict=True):
            assert_renders_as(item, value, schema["items"], f"{where}[]")
    else:
        number = schema.get("type") == "number" and isinstance(built, int | float)
        assert rendered == built and (type(rendered) is type(built) or number), (where, rendered, built)
