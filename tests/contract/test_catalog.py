"""The API catalogue: the Lookup's Api enum joined to the routes by the contracts' options."""

from __future__ import annotations

from apiparticulier.common.v1 import options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from contract.catalog import ApiCatalog
from contract.routes import RouteTable, build_routes


def test_every_api_value_names_the_routes_of_its_api() -> None:
    """Each Api value's api_label is the api_route.api of its routes, and every route's API has a value."""
    routes = build_routes()
    catalog = ApiCatalog(routes)
    for value in gateway_pb2.Api.DESCRIPTOR.values:
        if value.number == gateway_pb2.API_UNSPECIFIED:
            continue
        entry = catalog.apis[value.number]
        assert entry.label == value.GetOptions().Extensions[options_pb2.api_label]
        assert entry.routes, value.name
        assert all(route.api_label == entry.label for route in entry.routes)
        assert catalog.api_of_label(entry.label) == value.number
    assert {route.api_label for route in routes.routes} == {entry.label for entry in catalog.apis.values()}
    assert catalog.label_of(gateway_pb2.API_QUOTIENT_FAMILIAL) == "cnaf.quotient_familial"
    scolarite = catalog.apis[gateway_pb2.API_SCOLARITE]
    assert scolarite.route_for(options_pb2.SUBJECT_KIND_FRANCE_CONNECT) is None
    assert scolarite.route_for(options_pb2.SUBJECT_KIND_IDENTITY_PIVOT) is not None


def test_an_api_asked_by_label_gets_its_current_methods() -> None:
    """Cnous's v3 and v4 methods are the same API as its v5 ones, listed after them in any order declared."""
    reversed_table = RouteTable(tuple(reversed(build_routes().routes)))
    boursier = ApiCatalog(reversed_table).apis[gateway_pb2.API_ETUDIANT_BOURSIER]
    assert [route.deprecated for route in boursier.routes] == [False] * 3 + [True] * 6
    for kind in (
        options_pb2.SUBJECT_KIND_IDENTITY_PIVOT,
        options_pb2.SUBJECT_KIND_INE,
        options_pb2.SUBJECT_KIND_FRANCE_CONNECT,
    ):
        route = boursier.route_for(kind)
        assert route is not None and route.http_paths[0].startswith("/v5/"), kind
    scolarite = ApiCatalog(reversed_table).apis[gateway_pb2.API_SCOLARITE]
    current = scolarite.route_for(options_pb2.SUBJECT_KIND_IDENTITY_PIVOT)
    assert current is not None and current.http_paths == ("/v5/men/scolarites/identite",)
