"""Every request rule of the real API (VALIDATION.md), broken over REST: status, codes in order, source.

Each case sends one route's sandbox call with some parameters changed (None: left out) and
checks the whole ``errors`` body: HTTP 422, every code in the real API's order, each item's
title and detail from the catalogue, no ``source`` (null) but the recipient's, ``meta`` the
provider's for a provider's own code (39400) and empty otherwise. The cases the mesh used to
refuse and the real API takes are sent too, and must reach the provider.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runtime.error_catalogue import rule_entry
from tests.gateway.rest.conftest import Front
from tests.gateway.rest.test_app import EVERY_ROUTE
from tests.people import RECIPIENT

TODAY = dt.date.today()
QF = "/v3/dss/quotient_familial/identite"
QF_FC = "/v3/dss/quotient_familial/france_connect"
RSA = "/v3/dss/revenu_solidarite_active/identite"
C2S = "/v3/dss/complementaire_sante_solidaire/identite"
MESRI = "/v3/mesri/statut_etudiant/identite"
CNOUS = "/v4/cnous/etudiant_boursier/identite"
GIP_MDS = "/v3/gip_mds/service_civique/identite"
MEN = "/v4/men/scolarites/identite"
MEN_V3 = "/v3/men/scolarites/identite"
DSNJ = "/v3/dsnj/service_national/identite"
UUID = "0b6a2f4e-7c1d-4e8a-9b3f-5d2c1a0e9f87"
NAME_AS_REQUEST_ID = "LEFEBVRE.ALEXIS.1982-12-27"
PERIMETER = {"codeEtablissement": None, "codesBcnDepartements[]": "013", "degreEtablissement": "2D"}
"""A MEN search by département instead of establishment."""


async def _call(
    front: Front, path: str, changes: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    params, france_connect = EVERY_ROUTE[path]
    query = {**params, "recipient": RECIPIENT, **changes}
    query = {name: value for name, value in query.items() if value is not None}
    sent = {"Authorization": f"Bearer {france_connect}"} if france_connect else front.bearer()
    return await front.http.get(path, params=query, headers={**sent, **(headers or {})})


REFUSED: list[tuple[str, str, dict[str, Any], dict[str, str], list[str]]] = [
    # -- CNAV (§5.1): the chain, each rule ------------------------------------------------------
    ("cnav-birth-name-missing", RSA, {"nomNaissance": None}, {}, ["00420"]),
    ("cnav-birth-name-digit", RSA, {"nomNaissance": "LEFEBVRE2"}, {}, ["00420"]),
    ("cnav-birth-name-oe", RSA, {"nomNaissance": "CŒUR"}, {}, ["00420"]),
    ("cnav-usage-name-dot", RSA, {"nomUsage": "ST.MARTIN"}, {}, ["00426"]),
    ("cnav-usage-name-comma", RSA, {"nomUsage": "Fernandez, Franco"}, {}, ["00426"]),
    ("cnav-first-name-empty", RSA, {"prenoms[]": ""}, {}, ["00367"]),
    ("cnav-first-name-digit", RSA, {"prenoms[]": ["ALEXIS", "G3"]}, {}, ["00367"]),
    ("cnav-first-names-not-a-list", RSA, {"prenoms[]": None, "prenoms": "ALEXIS"}, {}, ["00367"]),
    ("cnav-year-letters", RSA, {"anneeDateNaissance": "mille"}, {}, ["00363"]),
    ("cnav-month-13", RSA, {"moisDateNaissance": "13"}, {}, ["00363"]),
    ("cnav-day-32", RSA, {"jourDateNaissance": "32"}, {}, ["00363"]),
    ("cnav-no-such-date", RSA, {"moisDateNaissance": "2", "jourDateNaissance": "30"}, {}, ["00363"]),
    ("cnav-born-before-1900", RSA, {"anneeDateNaissance": "1899"}, {}, ["00363"]),
    (
        "cnav-born-today",
        RSA,
        {
            "anneeDateNaissance": str(TODAY.year),
            "moisDateNaissance": str(TODAY.month),
            "jourDateNaissance": str(TODAY.day),
        },
        {},
        ["00363"],
    ),
    (
        "cnav-year-0-alone",
        RSA,
        {"moisDateNaissance": None, "jourDateNaissance": None, "anneeDateNaissance": "0"},
        {},
        ["00363"],
    ),
    ("cnav-sex-x", RSA, {"sexeEtatCivil": "X"}, {}, ["00427"]),
    ("cnav-country-missing", RSA, {"codeCogInseePaysNaissance": None}, {}, ["00400"]),
    ("cnav-country-not-99", RSA, {"codeCogInseePaysNaissance": "10100"}, {}, ["00400"]),
    ("cnav-commune-00", RSA, {"codeCogInseeCommuneNaissance": "00480"}, {}, ["00365"]),
    ("cnav-commune-20", RSA, {"codeCogInseeCommuneNaissance": "20480"}, {}, ["00365"]),
    ("cnav-commune-short", RSA, {"codeCogInseeCommuneNaissance": "8480"}, {}, ["00365"]),
    (
        "cnav-transcogage-departement",
        RSA,
        {
            "codeCogInseeCommuneNaissance": None,
            "nomCommuneNaissance": "SEDAN",
            "codeCogInseeDepartementNaissance": "96",
        },
        {},
        ["00428"],
    ),
    (
        "cnav-transcogage-year",
        RSA,
        {
            "codeCogInseeCommuneNaissance": None,
            "nomCommuneNaissance": "SEDAN",
            "codeCogInseeDepartementNaissance": "08",
            "anneeDateNaissance": str(TODAY.year + 1),
        },
        {},
        ["00422", "00363"],
    ),
    ("cnav-request-id-not-a-uuid", RSA, {}, {"X-Request-Id": NAME_AS_REQUEST_ID}, ["00401"]),
    (
        "cnav-every-rule-in-order",
        RSA,
        {
            "sexeEtatCivil": "X",
            "codeCogInseePaysNaissance": "1",
            "moisDateNaissance": "13",
            "prenoms[]": "4LEXIS",
            "nomNaissance": "",
            "nomUsage": "ST.MARTIN",
        },
        {"X-Request-Id": "ticket-42"},
        ["00427", "00400", "00363", "00401", "00367", "00420", "00426"],
    ),
    (
        "cnav-a-bad-birthplace-drops-the-sex",
        RSA,
        {"sexeEtatCivil": "X", "codeCogInseeCommuneNaissance": "20480", "nomNaissance": ""},
        {},
        ["00365", "00420"],
    ),
    ("c2s-is-cnav", C2S, {"sexeEtatCivil": "X", "nomNaissance": ""}, {}, ["00427", "00420"]),
    # -- the quotient familial (§5.2) -----------------------------------------------------------
    ("qf-year-letters", QF, {"annee": "deux"}, {}, ["00356"]),
    ("qf-year-empty", QF, {"annee": ""}, {}, ["00356"]),
    ("qf-year-three-back", QF, {"annee": str(TODAY.year - 3)}, {}, ["00356"]),
    ("qf-year-next", QF, {"annee": str(TODAY.year + 1)}, {}, ["00356"]),
    ("qf-month-13", QF, {"mois": "13", "annee": str(TODAY.year - 1)}, {}, ["00354"]),
    ("qf-month-13-this-year-twice", QF, {"mois": "13", "annee": str(TODAY.year)}, {}, ["00354", "00354"]),
    ("qf-month-0-alone", QF, {"mois": "0"}, {}, ["00354"]),
    ("qf-over-23-months", QF, {"annee": str(TODAY.year - 2), "mois": "1"}, {}, ["00355"]),
    ("qf-then-cnav", QF, {"annee": "1", "nomNaissance": ""}, {}, ["00356", "00420"]),
    ("qf-dropped-by-the-birthplace", QF, {"annee": "1", "codeCogInseeCommuneNaissance": "1"}, {}, ["00365"]),
    ("qf-france-connect-month", QF_FC, {"mois": "13", "annee": str(TODAY.year)}, {}, ["00354", "00354"]),
    ("qf-france-connect-request-id", QF_FC, {}, {"X-Request-Id": NAME_AS_REQUEST_ID}, ["00401"]),
    # -- civility (§6.1): MESRI, Cnous, GIP-MDS ---------------------------------------------------
    ("mesri-birth-name-missing", MESRI, {"nomNaissance": None}, {}, ["00420"]),
    ("mesri-birth-name-digit", MESRI, {"nomNaissance": "B3RNARD"}, {}, ["00420"]),
    ("mesri-first-names-missing", MESRI, {"prenoms[]": None}, {}, ["00421"]),
    ("mesri-first-names-not-a-list", MESRI, {"prenoms[]": None, "prenoms": "CAMILLE"}, {}, ["00421"]),
    ("mesri-year-missing", MESRI, {"anneeDateNaissance": None}, {}, ["00422"]),
    ("mesri-year-letters", MESRI, {"anneeDateNaissance": "deux mille"}, {}, ["00422"]),
    ("mesri-month-13", MESRI, {"moisDateNaissance": "13"}, {}, ["00423"]),
    ("mesri-day-32", MESRI, {"jourDateNaissance": "32"}, {}, ["00424"]),
    ("mesri-no-such-date", MESRI, {"moisDateNaissance": "2", "jourDateNaissance": "30"}, {}, ["00425"]),
    ("mesri-sex-missing", MESRI, {"sexeEtatCivil": None}, {}, ["00427"]),
    ("mesri-commune", MESRI, {"codeCogInseeCommuneNaissance": "20480"}, {}, ["00365"]),
    (
        "mesri-every-rule-in-order",
        MESRI,
        {
            "codeCogInseeCommuneNaissance": "1",
            "sexeEtatCivil": "X",
            "moisDateNaissance": None,
            "prenoms[]": None,
            "nomNaissance": "",
        },
        {},
        ["00420", "00421", "00423", "00427", "00365"],
    ),
    ("cnous-civility", CNOUS, {"moisDateNaissance": "13", "nomNaissance": ""}, {}, ["00420", "00423"]),
    ("gip-mds-civility", GIP_MDS, {"jourDateNaissance": None, "prenoms[]": None}, {}, ["00421", "00424"]),
    # -- INE (§6.2) ---------------------------------------------------------------------------------
    ("ine-eleven-letters", "/v4/cnous/etudiant_boursier/ine", {"ine": "ABCDEFGHIJK"}, {}, ["00360"]),
    ("ine-letter-o", "/v3/mesri/statut_etudiant/ine", {"ine": "2301456789O"}, {}, ["00360"]),
    ("ine-missing", "/v3/cnous/etudiant_boursier/ine", {"ine": None}, {}, ["00360"]),
    # -- MEN (§6.3) -----------------------------------------------------------------------------------
    ("men-no-geography", MEN, {"codeEtablissement": None}, {}, ["00415"]),
    ("men-uai", MEN, {"codeEtablissement": "0132733-"}, {}, ["00410"]),
    ("men-uai-and-perimeter", MEN, {"codesBcnRegions[]": "18"}, {}, ["00419"]),
    ("men-perimeter-without-degree", MEN, {**PERIMETER, "degreEtablissement": None}, {}, ["00412"]),
    ("men-degree-lower-case", MEN, {**PERIMETER, "degreEtablissement": "2d"}, {}, ["00412"]),
    ("men-two-perimeters", MEN, {**PERIMETER, "codesBcnRegions[]": "18"}, {}, ["00413"]),
    (
        "men-perimeter-not-a-list",
        MEN,
        {**PERIMETER, "codesBcnDepartements[]": None, "codesBcnDepartements": "013"},
        {},
        ["00414"],
    ),
    ("men-perimeter-empty-item", MEN, {**PERIMETER, "codesBcnDepartements[]": ""}, {}, ["00414"]),
    ("men-departement-020", MEN, {**PERIMETER, "codesBcnDepartements[]": ["013", "020"]}, {}, ["00416"]),
    (
        "men-region-19",
        MEN,
        {**PERIMETER, "codesBcnDepartements[]": None, "codesBcnRegions[]": "19"},
        {},
        ["00417"],
    ),
    (
        "men-degree-and-departement",
        MEN,
        {**PERIMETER, "degreEtablissement": "3D", "codesBcnDepartements[]": "13"},
        {},
        ["00412", "00416"],
    ),
    ("men-school-year", MEN, {"anneeScolaire": "2025/2026"}, {}, ["00411"]),
    ("men-school-year-missing", MEN, {"anneeScolaire": None}, {}, ["00411"]),
    (
        "men-every-rule-in-order",
        MEN_V3,
        {"anneeScolaire": None, "codeEtablissement": None, "sexeEtatCivil": None, "prenoms[]": None},
        {},
        ["00421", "00427", "00415", "00411"],
    ),
    # -- the other families (§7) ----------------------------------------------------------------------
    ("dsnj-first-names", DSNJ, {"prenoms[]": ["LÉO", "M4RCEL"]}, {}, ["00421"]),
    ("dsnj-birth-name", DSNJ, {"nomNaissance": "ARMAND-2"}, {}, ["00420"]),
    ("dsnj-year-missing-is-also-age", DSNJ, {"anneeDateNaissance": None}, {}, ["00422", "39400"]),
    ("dsnj-age", DSNJ, {"anneeDateNaissance": str(TODAY.year - 40)}, {}, ["39400"]),
    ("dsnj-sex", DSNJ, {"sexeEtatCivil": None}, {}, ["00427"]),
    ("dsnj-commune", DSNJ, {"codeCogInseeCommuneNaissance": "3523"}, {}, ["00365"]),
    ("dsnj-country", DSNJ, {"codeCogInseePaysNaissance": None}, {}, ["00400"]),
    (
        "dsnj-every-rule-in-order",
        DSNJ,
        {
            "codeCogInseePaysNaissance": "1",
            "codeCogInseeCommuneNaissance": "1",
            "sexeEtatCivil": "X",
            "anneeDateNaissance": str(TODAY.year - 40),
            "nomNaissance": "",
            "prenoms[]": "",
        },
        {},
        ["00421", "00420", "39400", "00427", "00365", "00400"],
    ),
    (
        "france-travail-identifiant",
        "/v3/france_travail/statut/identifiant",
        {"identifiant": " "},
        {},
        ["00380"],
    ),
    ("sdh-identifiant", "/v3/sdh/statut_sportif/identifiant", {"identifiant": "70000A"}, {}, ["00380"]),
    (
        "ants-immatriculation",
        "/v3/ants/extrait_immatriculation_vehicule/france_connect",
        {"immatriculation": None},
        {},
        ["00430"],
    ),
]


@pytest.mark.parametrize(
    ("path", "changes", "headers", "codes"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
async def test_a_broken_rule_is_refused_as_the_real_api_refuses_it(
    front: Front, path: str, changes: dict[str, Any], headers: dict[str, str], codes: list[str]
) -> None:
    """422; one item per broken rule, in the real order, the catalogue's texts; no source."""
    response = await _call(front, path, changes, headers)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [error["code"] for error in errors] == codes
    for error in errors:
        entry = rule_entry(error["code"])
        assert (error["title"], error["detail"]) == (entry.title, entry.detail)
        assert error["source"] is None
        assert error["meta"] == ({"provider": "DSNJ"} if error["code"] == "39400" else {})


async def test_the_recipient_is_its_source(front: Front) -> None:
    """A recipient that is no SIRET is the one parameter error with a source (§3)."""
    response = await _call(front, RSA, {"recipient": "12345678901234"})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["code"], error["source"]) == ("00210", {"parameter": "recipient"})


TAKEN: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
    ("cnav-no-sex", RSA, {"sexeEtatCivil": None}, {}),
    ("cnav-sex-lower-case", RSA, {"sexeEtatCivil": "f"}, {}),
    ("cnav-no-first-names", RSA, {"prenoms[]": None}, {}),
    ("cnav-four-first-names", RSA, {"prenoms[]": ["ALEXIS", "GÉRÔME", "MARIE", "ANNE"]}, {}),
    ("cnav-typographic-apostrophe", RSA, {"nomUsage": "D\u2019ARTAGNAN"}, {}),
    ("cnav-commune-code-and-name", RSA, {"nomCommuneNaissance": "CHARLEVILLE-MEZIERES"}, {}),
    ("cnav-born-in-france-without-commune", RSA, {"codeCogInseeCommuneNaissance": None}, {}),
    (
        "cnav-french-algeria",
        RSA,
        {"codeCogInseePaysNaissance": "92352", "codeCogInseeCommuneNaissance": None},
        {},
    ),
    ("cnav-year-alone", RSA, {"moisDateNaissance": None, "jourDateNaissance": None}, {}),
    ("cnav-request-id-uuid", RSA, {}, {"X-Request-Id": UUID.upper()}),
    ("cnav-request-id-nothing-left", RSA, {}, {"X-Request-Id": "..."}),
    ("qf-year-alone", QF, {"annee": str(TODAY.year - 1)}, {}),
    ("qf-month-alone", QF, {"mois": "1"}, {}),
    ("qf-two-calendar-years-back-within-23-months", QF, {"annee": str(TODAY.year - 1), "mois": "1"}, {}),
    ("mesri-two-first-names", MESRI, {"prenoms[]": ["CAMILLE", "ANNE"]}, {}),
    ("cnous-no-sex", CNOUS, {"sexeEtatCivil": None}, {}),
    ("men-school-year-format-only", MEN, {"anneeScolaire": "2026-2028"}, {}),
    ("men-uai-word-character", MEN, {"codeEtablissement": "01327334"}, {}),
    ("men-degree-ignored-with-a-uai", MEN, {"degreEtablissement": "3D"}, {}),
    ("men-perimeter-with-degree", MEN, PERIMETER, {}),
    ("france-travail-any-username", "/v3/france_travail/statut/identifiant", {"identifiant": "a.b@c d"}, {}),
    ("sdh-long-digits", "/v3/sdh/statut_sportif/identifiant", {"identifiant": "7" * 30}, {}),
    ("request-id-elsewhere", MESRI, {}, {"X-Request-Id": NAME_AS_REQUEST_ID}),
]


@pytest.mark.parametrize(
    ("path", "changes", "headers"), [case[1:] for case in TAKEN], ids=[case[0] for case in TAKEN]
)
async def test_what_the_real_api_takes_reaches_the_provider(
    front: Front, path: str, changes: dict[str, Any], headers: dict[str, str]
) -> None:
    """Found or not found by the sandbox, never refused as a parameter error."""
    response = await _call(front, path, changes, headers)
    assert response.status_code in (200, 404), response.text


async def test_a_request_id_never_carries_a_name_elsewhere(front: Front) -> None:
    """Off the CNAV routes a request id that is no UUID is served under a new one: never echoed or kept."""
    response = await _call(front, MESRI, {}, {"X-Request-Id": NAME_AS_REQUEST_ID})
    assert response.status_code == 200
    assert "LEFEBVRE" not in response.headers["x-request-id"]
    assert len(response.headers["x-request-id"]) == len(UUID)
    kept = await _call(front, MESRI, {}, {"X-Request-Id": "{" + UUID + "}"})
    assert kept.headers["x-request-id"] == UUID
