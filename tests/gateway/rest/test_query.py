"""Query parameters derived from the request messages, and the requests they make."""

from __future__ import annotations

from typing import Any

import pytest

from contract.routes import build_routes
from gateway.rest.query import RequestReader
from runtime.errors import ApiError

BY_PATH = {path: route for route in build_routes().routes for path in route.http_paths}


def reader(path: str) -> RequestReader:
    return RequestReader(BY_PATH[path])


def read(path: str, query: dict[str, list[str]], bearer: str = "") -> Any:
    """The request message, typed loosely: its class is the route's."""
    return reader(path).read(values(query), bearer)


def values(query: dict[str, list[str]]):
    return lambda name: query.get(name, [])


def test_identity_is_spread_and_repeated_fields_take_brackets() -> None:
    request = read(
        "/v3/dss/quotient_familial/identite",
        (
            {
                "nomNaissance": ["A", "LEFEBVRE"],
                "prenoms[]": ["ALEXIS", "JEAN"],
                "anneeDateNaissance": [" 1982 "],
                "annee": ["2025"],
                "prenoms": ["X"],
            }
        ),
    )
    assert request.identite.nom_naissance == "LEFEBVRE"  # the last of a repeated scalar wins
    assert list(request.identite.prenoms) == ["ALEXIS", "JEAN"]
    assert request.identite.annee_date_naissance == 1982
    assert request.annee == 2025
    assert not request.HasField("mois")


def test_men_lists_and_other_fields_by_their_json_names() -> None:
    request = read(
        "/v4/men/scolarites/identite",
        (
            {
                "codesBcnDepartements[]": ["075", "069"],
                "anneeScolaire": ["2025"],
                "codeEtablissement": ["0132733A"],
            }
        ),
    )
    assert list(request.codes_bcn_departements) == ["075", "069"]
    assert (request.annee_scolaire, request.code_etablissement) == ("2025", "0132733A")


def test_the_france_connect_subject_is_the_bearer() -> None:
    route_reader = reader("/v3/dss/quotient_familial/france_connect")
    assert route_reader.by_france_connect
    assert {p.name for p in route_reader.parameters} == {"annee", "mois"}
    assert (
        read("/v3/dss/quotient_familial/france_connect", {}, "fc-token").france_connect.access_token
        == "fc-token"
    )


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/v3/dss/quotient_familial/identite", {"jourDateNaissance": ["1er"]}, "00366"),
        ("/v3/dss/quotient_familial/identite", {"anneeDateNaissance": [str(2**31)]}, "00366"),
        ("/v3/dss/quotient_familial/identite", {"mois": ["juin"]}, "00400"),
        # Digits of another script, separators and signs Python's int() takes: not in a query string.
        ("/v3/dss/quotient_familial/identite", {"anneeDateNaissance": ["١٩٨٢"]}, "00366"),
        ("/v3/dss/quotient_familial/identite", {"anneeDateNaissance": ["1_982"]}, "00366"),
        ("/v3/dss/quotient_familial/identite", {"jourDateNaissance": ["+2"]}, "00366"),
        ("/v3/dss/quotient_familial/identite", {"jourDateNaissance": ["\u20032"]}, "00366"),
        ("/v3/dss/quotient_familial/identite", {"mois": ["\uff16"]}, "00400"),
    ],
)
def test_a_value_that_is_no_value_of_its_type(path: str, query: dict[str, list[str]], code: str) -> None:
    with pytest.raises(ApiError) as refused:
        reader(path).read(values(query))
    assert refused.value.code == code
    assert [v.field for v in refused.value.violations] == list(query)
