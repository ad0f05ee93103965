"""Query parameters derived from the request messages, and the requests they make."""

from __future__ import annotations

from typing import Any

import pytest

from contract.routes import build_routes
from gateway.rest.query import RequestReader

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
    ("query", "field", "value"),
    [
        ({"jourDateNaissance": ["1er"]}, ("identite", "jour_date_naissance"), 0),
        ({"anneeDateNaissance": [str(2**31)]}, ("identite", "annee_date_naissance"), 0),
        # Digits of another script, separators, signs and blanks Python's int() takes: no number here.
        ({"anneeDateNaissance": ["١٩٨٢"]}, ("identite", "annee_date_naissance"), 0),
        ({"anneeDateNaissance": ["1_982"]}, ("identite", "annee_date_naissance"), 0),
        ({"jourDateNaissance": ["+2"]}, ("identite", "jour_date_naissance"), 0),
        ({"jourDateNaissance": ["\u20032"]}, ("identite", "jour_date_naissance"), 0),
        ({"mois": ["\uff16"]}, ("mois",), 0),
        ({"mois": ["juin"]}, ("mois",), 0),
        ({"mois": [" 06\t"]}, ("mois",), 6),
        ({"prenoms": ["ALEXIS"]}, ("identite", "prenoms"), [""]),
        ({"prenoms": ["ALEXIS"], "prenoms[]": ["ALEXIS"]}, ("identite", "prenoms"), ["ALEXIS"]),
    ],
    ids=[
        "letters",
        "out-of-range",
        "other-script",
        "separator",
        "sign",
        "em-space",
        "fullwidth",
        "month-letters",
        "padded",
        "list-as-one",
        "list-as-list",
    ],
)
def test_what_is_no_value_of_its_type_is_read_as_the_rules_refuse_it(
    query: dict[str, list[str]], field: tuple[str, ...], value: Any
) -> None:
    """A whole number that is not one is 0; a list sent without its brackets is one empty item."""
    read_value: Any = read("/v3/dss/quotient_familial/identite", query)
    for name in field:
        read_value = getattr(read_value, name)
    assert (list(read_value) if isinstance(value, list) else read_value) == value
