"""The published spec the mesh ships, and the REST routes against it."""

from __future__ import annotations

import pytest

from contract.openapi import published_spec, query_parameter_names, response_schema, restricted_spec
from contract.routes import build_routes
from gateway.rest.query import RECIPIENT_PARAMETER, query_parameters

ROUTES = build_routes().routes


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.path)
def test_every_route_takes_the_spec_query_parameters(route) -> None:
    """Every parameter the spec gives a path is one the request message derives; the only others
    are identity pivot fields some APIs leave out of their spec (MESR, Cnous and MEN take no
    birthplace), which their providers ignore."""
    parameters = query_parameters(route)
    derived = {parameter.name for parameter in parameters} | {RECIPIENT_PARAMETER}
    identity = {parameter.name for parameter in parameters if parameter.in_identity}
    for path in route.http_paths:
        documented = query_parameter_names(path)
        assert documented <= derived, path
        assert derived - documented <= identity, path


def test_restricted_spec_keeps_the_paths_asked_and_names_its_server() -> None:
    paths = ["/v3/dss/quotient_familial/identite", "/v3/not/in/the/spec"]
    spec = restricted_spec(paths, "https://mesh.example")
    assert list(spec["paths"]) == ["/v3/dss/quotient_familial/identite"]
    assert spec["servers"] == [
        {"url": "https://mesh.example", "description": spec["servers"][0]["description"]}
    ]
    assert spec["components"] == published_spec()["components"]
    assert "https://mesh.example" not in str(published_spec()["servers"])


def test_response_schema_reads_nullable_as_json_schema() -> None:
    schema = response_schema("/v3/dss/allocation_adulte_handicape/identite", 200)
    field = schema["properties"]["data"]["properties"]["date_debut_droit"]
    assert field["type"] == ["string", "null"]
    assert "nullable" not in str(schema)
