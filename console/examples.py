"""The developer page's examples: each route asked about a person the sandbox knows.

A FranceConnect route is called with the sandbox FranceConnect token that opens it
(`gateway.france_connect.sandbox.SANDBOX_TOKENS`: the first active one holding one of the
route's scopes); an identity route of the same API asks about that token's person, from its
claims. What no sandbox token stands for (an identifiant, an INE, a registration number, a
pupil) is given below, from the sandbox populations (README, "Sandbox population"). The
published spec's own examples name nobody the sandbox knows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from apiparticulier.common.v1 import options_pb2
from contract.routes import Route, build_routes
from gateway.france_connect.sandbox import SANDBOX_TOKENS, SandboxToken

TOKEN_VARIABLE = "$TOKEN"  # noqa: S105 (a shell variable's name, no secret)
"""What the identity examples send as bearer: the reader's own token, named as `make run` exports it."""

_SANDBOX_PARAMETERS: Mapping[str, Mapping[str, str | list[str]]] = {
    "france_travail.statut": {"identifiant": "claire.fontaine75"},
    "france_travail.indemnites": {"identifiant": "claire.fontaine75"},
    "sdh.statut_sportif": {"identifiant": "700001"},
    "mesr.statut_etudiant": {"ine": "2301456789K"},
    "cnous.etudiant_boursier": {"ine": "2406123457A"},
    "ants.extrait_immatriculation_vehicule": {"immatriculation": "SB-101-AA"},
    "men.scolarite": {
        "nomNaissance": "ROCHE",
        "prenoms[]": ["LÉA"],
        "sexeEtatCivil": "F",
        "anneeDateNaissance": "2013",
        "moisDateNaissance": "4",
        "jourDateNaissance": "9",
        "codeEtablissement": "0132733A",
    },
}
"""Per API label, the sandbox values no FranceConnect token gives (README's sandbox tables)."""


def _identity(token: SandboxToken) -> dict[str, str | list[str]]:
    """The token's person as the REST front's identity parameters (every one the claims give)."""
    claims = token.claims
    year, month, day = (int(part) for part in str(claims["birthdate"]).split("-"))
    return {
        "nomNaissance": str(claims["family_name"]),
        "prenoms[]": [str(name) for name in claims["given_name_array"]],
        "sexeEtatCivil": "F" if claims["gender"] == "female" else "M",
        "anneeDateNaissance": str(year),
        "moisDateNaissance": str(month),
        "jourDateNaissance": str(day),
        "codeCogInseePaysNaissance": str(claims["birthcountry"]),
        "codeCogInseeCommuneNaissance": str(claims["birthplace"]),
    }


@functools.cache
def _routes_by_http_path() -> dict[str, Route]:
    return {path: route for route in build_routes().routes for path in route.http_paths}


_LIVE_TOKENS = tuple(token for token in SANDBOX_TOKENS if token.active and not token.expired)

_UNDECLARED_BEARERS: Mapping[str, str] = {
    "/api/introspect": TOKEN_VARIABLE,
    "/mesh/v1/citizen/accesses": _LIVE_TOKENS[0].token,
}
"""Routes that take a bearer the served spec does not declare (no ``security``): the API token,
and the citizen's own FranceConnect token for their access history."""


def france_connect_token(api_label: str) -> SandboxToken | None:
    """The first live sandbox FranceConnect token holding a scope of the API; None: no such token."""
    scopes = {scope for route in build_routes().of_api(api_label) for scope in route.scopes}
    return next((token for token in _LIVE_TOKENS if scopes.intersection(token.scopes)), None)


def example(
    http_path: str, parameters: list[dict[str, Any]], secured: bool
) -> tuple[str | None, dict[str, str | list[str]]]:
    """The bearer and query of ``http_path``'s sandbox example.

    Args:
        http_path: The spec's path (``/v3/dss/quotient_familial/identite``).
        parameters: The operation's spec parameters (``name``, ``in``, ``required``, ``example``).
        secured: The spec declares a bearer for the operation.

    Returns:
        The bearer (`TOKEN_VARIABLE`, or a sandbox FranceConnect token for a FranceConnect route;
        None: the route takes none) and the query: each parameter a sandbox person fills, then
        each other required one with the spec's example.
    """
    route = _routes_by_http_path().get(http_path)
    sandbox: dict[str, str | list[str]] = {}
    bearer = TOKEN_VARIABLE if secured else _UNDECLARED_BEARERS.get(http_path)
    if route is not None:
        token = france_connect_token(route.api_label)
        if token is not None:
            sandbox.update(_identity(token))
            if route.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT:
                bearer = token.token
        sandbox.update(_SANDBOX_PARAMETERS.get(route.api_label, {}))
    query: dict[str, str | list[str]] = {}
    for parameter in parameters:
        name = parameter["name"]
        if parameter.get("in") != "query":
            continue
        if name in sandbox:
            query[name] = sandbox[name]
        elif parameter.get("required"):
            query[name] = str(parameter.get("example", parameter.get("schema", {}).get("example", "")))
    return bearer, query
