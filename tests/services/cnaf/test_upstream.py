"""The cnaf upstream backend against a fake Sécurité sociale gateway on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError
from services.cnaf.app import CNAF as CNAF_SERVICE
from services.cnaf.backend import Benefit, Indicator
from services.cnaf.settings import PRESTATIONS, CnafSettings
from services.cnaf.upstream import UpstreamCnafBackend
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.people import lefebvre_in_capitals
from tests.rich_status import rich_status
from tests.services.conftest import upstream_settings

CNAF, MSA, RNCPS = "00810011", "00171001", "99430000"
RECIPIENT = "13002526500013"
CALLER = Caller(recipient=RECIPIENT, request_id="req-cnaf-42", time_remaining=5.0)

QF_ANSWER: dict[str, Any] = {
    "allocataires": [
        {"nom_naissance": "LEFEBVRE", "nom_usage": "DUBOIS", "prenoms": "ALEXIS GÉRÔME",
         "date_naissance": "1982-12-27", "sexe": "F"},
        {"nom_naissance": "DUBOIS", "nom_usage": None, "prenoms": "MARC", "date_naissance": "1980-03-02",
         "sexe": "M"},
    ],
    "enfants": [{"nom_naissance": "DUBOIS", "prenoms": "LÉA", "date_naissance": "2012-06-14", "sexe": "F"}],
    "adresse": {"destinataire": "MADAME ALEXIS DUBOIS", "numero_libelle_voie": "12 RUE DES LILAS",
                "code_postal_ville": "08000 CHARLEVILLE-MEZIERES", "pays": "FRANCE", "lieu_dit": None},
    "quotient_familial": {"valeur": 2550, "annee": 2026, "mois": 3, "annee_calcul": 2026, "mois_calcul": 1},
}  # fmt: skip


def clients_json(prefix: str = "") -> dict[str, dict[str, str]]:
    """One OAuth2 client per prestation, named after it."""
    return {name: {"client_id": f"{prefix}{name}", "client_secret": f"secret-{name}"} for name in PRESTATIONS}


settings_for = partial(upstream_settings, CnafSettings, upstream_clients=clients_json())
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


def lefebvre(**overrides: Any) -> identity_pb2.IdentityPivot:
    """An identity born in France, with a usage name and two first names."""
    return lefebvre_in_capitals(**{"nom_usage": "DUBOIS", **overrides})


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamCnafBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamCnafBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def failure_of_qf(backend: UpstreamCnafBackend, caller: Caller = CALLER) -> ApiError:
    """The error a quotient familial request raises."""
    with pytest.raises(ApiError) as raised:
        await backend.quotient_familial(lefebvre(), 2026, 3, caller)
    return raised.value


@pytest.mark.parametrize(("fd", "fournisseur"), [(CNAF, "CNAF"), (MSA, "MSA")])
async def test_quotient_familial_from_either_caisse(
    fake: FakeProvider, backend: UpstreamCnafBackend, fd: str, fournisseur: str
) -> None:
    """The answer becomes the v3 data object; the provider is the caisse X-APISECU-FD names."""
    fake.script("/quotient_familial", json_answer(QF_ANSWER, X_APISECU_FD=fd))
    data = await backend.quotient_familial(lefebvre(), 2026, 3, CALLER)
    as_dict = json_format.MessageToDict(data, preserving_proto_field_name=True)
    assert as_dict["quotient_familial"] == {
        "fournisseur": fournisseur, "valeur": 2550, "annee": 2026, "mois": 3, "annee_calcul": 2026,
        "mois_calcul": 1,
    }  # fmt: skip
    assert [a["prenoms"] for a in as_dict["allocataires"]] == ["ALEXIS GÉRÔME", "MARC"]
    assert "nom_usage" not in as_dict["allocataires"][1]
    assert as_dict["adresse"]["code_postal_ville"] == "08000 CHARLEVILLE-MEZIERES"


async def test_request_carries_the_identity_and_the_caller(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """GET with the identity as API-SECU names it, the month asked, Bearer, SIRET and correlation id."""
    fake.script("/quotient_familial", json_answer(QF_ANSWER, X_APISECU_FD=CNAF))
    await backend.quotient_familial(lefebvre(), 2026, 3, CALLER)
    (request,) = fake.to("/quotient_familial")
    assert request.method == "GET"
    assert {key: values[0] for key, values in request.query.items()} == {
        "nomNaissance": "LEFEBVRE",
        "nomUsage": "DUBOIS",
        "listePrenoms": "ALEXIS GÉRÔME",
        "dateNaissance": "1982-12-27",
        "genre": "F",
        "codePaysNaissance": "99100",
        "codeLieuNaissance": "08480",
        "anneeDemandee": "2026",
        "moisDemande": "03",
    }
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-apipart-fsfinal"] == RECIPIENT
    assert request.headers["x-correlation-id"] == "req-cnaf-42"
    token_request = fake.to("/token")[0]
    basic = base64.b64encode(b"quotient_familial:secret-quotient_familial").decode()
    assert token_request.headers["authorization"] == f"Basic {basic}"


async def test_born_abroad_with_a_partial_date(fake: FakeProvider, backend: UpstreamCnafBackend) -> None:
    """Born abroad: no birth commune is sent; an unknown day leaves a year-month date."""
    fake.script("/quotient_familial", json_answer(QF_ANSWER, X_APISECU_FD=CNAF))
    identity = lefebvre(
        code_cog_insee_pays_naissance="99351", code_cog_insee_commune_naissance="", nom_usage=""
    )
    identity.ClearField("jour_date_naissance")
    await backend.quotient_familial(identity, 2026, 3, CALLER)
    (request,) = fake.to("/quotient_familial")
    assert request.param("dateNaissance") == "1982-12"
    assert request.param("codePaysNaissance") == "99351"
    assert "codeLieuNaissance" not in request.query and "nomUsage" not in request.query


async def test_birth_commune_by_name_and_departement(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """A commune given by name goes as villeNaissance and depNaissance."""
    fake.script("/quotient_familial", json_answer(QF_ANSWER, X_APISECU_FD=CNAF))
    identity = lefebvre(
        code_cog_insee_commune_naissance="",
        nom_commune_naissance="Charleville-Mézières",
        code_cog_insee_departement_naissance="08",
    )
    await backend.quotient_familial(identity, 2026, 3, CALLER)
    (request,) = fake.to("/quotient_familial")
    assert (request.param("villeNaissance"), request.param("depNaissance")) == ("Charleville-Mézières", "08")
    assert "codeLieuNaissance" not in request.query


async def test_typographic_apostrophes_and_dashes_go_as_ascii(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """Typographic apostrophes become ', dashes -, in every name, as the real backend sends them."""
    fake.script("/quotient_familial", json_answer(QF_ANSWER, X_APISECU_FD=CNAF))
    identity = lefebvre(
        nom_naissance="D\u2019ALMEIDA",
        nom_usage="L\u2018HÔTE\u2014ROY",
        prenoms=["JEAN\u2013PIERRE", "MARIE\u2010\u02bcANNE", "LOU\u2011ÈVE"],
    )
    await backend.quotient_familial(identity, 2026, 3, CALLER)
    (request,) = fake.to("/quotient_familial")
    assert request.param("nomNaissance") == "D'ALMEIDA"
    assert request.param("nomUsage") == "L'HÔTE-ROY"
    assert request.param("listePrenoms") == "JEAN-PIERRE MARIE-'ANNE LOU-ÈVE"


async def test_each_prestation_has_its_own_client(fake: FakeProvider, backend: UpstreamCnafBackend) -> None:
    """RSA is asked on its own path with its own OAuth2 client; majoration and start date come back."""
    fake.script(
        "/revenu_solidarite_active",
        json_answer({"est_beneficiaire": True, "avec_majoration": False, "date_debut_droit": "2021-04-01"},
                    X_APISECU_FD=CNAF),
    )  # fmt: skip
    data = await backend.benefit(
        Benefit.REVENU_SOLIDARITE_ACTIVE, cnaf_pb2.RevenuSolidariteActiveData, lefebvre(), CALLER
    )
    assert (data.est_beneficiaire, data.avec_majoration, data.date_debut_droit) == (True, False, "2021-04-01")
    token_request = fake.to("/token")[0]
    assert base64.b64decode(token_request.headers["authorization"].split()[1]).startswith(
        b"revenu_solidarite_active:"
    )
    assert "anneeDemandee" not in fake.to("/revenu_solidarite_active")[0].query


async def test_benefit_without_majoration_ignores_one_sent(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """AAH has no majoration field: the adapter drops one the provider sends."""
    fake.script(
        "/allocation_adulte_handicape",
        json_answer({"est_beneficiaire": False, "avec_majoration": False}, X_APISECU_FD=MSA),
    )
    data = await backend.benefit(
        Benefit.ALLOCATION_ADULTE_HANDICAPE, cnaf_pb2.AllocationAdulteHandicapeData, lefebvre(), CALLER
    )
    assert not data.est_beneficiaire
    assert not data.HasField("date_debut_droit")


EAJE_ANSWER: dict[str, Any] = {
    "allocataires": [
        {"nomNaissance": "ROCHEFORT", "nomUsage": None, "listePrenoms": "ANNE", "dateNaissance": "1991-04-12",
         "genre": "F", "cogNaissance": "17300"},
        {"nomNaissance": "MARTIN", "nomUsage": "ROCHEFORT", "listePrenoms": "KARIM LOUIS",
         "dateNaissance": "1989-11-30", "genre": "M"},
    ],
    "enfants": [{"nomNaissance": "MARTIN", "listePrenoms": "LOU", "dateNaissance": "2025-01-08", "genre": "F",
                 "cogNaissance": None}],
    "adresse": {"identite": "MADAME ANNE ROCHEFORT", "complementInformation": "APPARTEMENT 12",
                "complementInformationGeo": None, "numeroLibelleVoie": "4 AVENUE DU PORT", "lieuDit": None,
                "codePostalVille": "17000 LA ROCHELLE", "pays": "FRANCE"},
    "nombreEnfantACharge": 1,
    "nombreBeneficiaireAEH": 0,
    "montantRessources": 31250,
    "annee": "2024",
}  # fmt: skip


@pytest.mark.parametrize(
    ("indicateur", "date", "status", "since"),
    [
        ("ALLOCATAIRE", "2023-09-01", "allocataire", "2023-09-01"),
        ("OUVRANT_DROIT", "2023-09-01T00:00:00+02:00", "ouvrant_droit", "2023-09-01"),
        ("ALLOCATAIRE", "", "allocataire", None),
        ("NON_BENEFICIAIRE", "2020-01-01", "non_beneficiaire", None),
        ("NON_BENEFICIAIRE", None, "non_beneficiaire", None),
    ],
)
async def test_aeeh_indicator_becomes_status_and_start_date(
    fake: FakeProvider,
    backend: UpstreamCnafBackend,
    indicateur: str,
    date: str | None,
    status: str,
    since: str | None,
) -> None:
    """The indicator in lower case; its date's day, but none for a non-beneficiary or a blank date."""
    fake.script(
        "/allocation_enfant_handicape",
        json_answer(
            {"indicateur": indicateur, "dateIndicateur": date, "listePrestation": []}, X_APISECU_FD=MSA
        ),
    )
    data = await backend.indicator(
        Indicator.ALLOCATION_ENFANT_HANDICAPE, cnaf_pb2.AllocationEnfantHandicapeData, lefebvre(), CALLER
    )
    assert data.status == status
    assert (data.date_debut_droit if data.HasField("date_debut_droit") else None) == since
    (request,) = fake.to("/allocation_enfant_handicape")
    assert request.param("nomNaissance") == "LEFEBVRE" and request.param("genre") == "F"
    assert request.headers["x-apipart-fsfinal"] == RECIPIENT
    assert base64.b64decode(fake.to("/token")[0].headers["authorization"].split()[1]).startswith(
        b"allocation_enfant_handicape:"
    )


@pytest.mark.parametrize(
    "body",
    [{"indicateur": "BENEFICIAIRE", "dateIndicateur": "2023-09-01"}, {"indicateur": "allocataire"},
     {"dateIndicateur": "2023-09-01"}, {"indicateur": "ALLOCATAIRE", "dateIndicateur": "01/09/2023"}],
    ids=["unknown-indicator", "lower-case", "no-indicator", "not-a-date"],
)  # fmt: skip
async def test_aeeh_answer_of_another_shape_is_unknown(
    fake: FakeProvider, backend: UpstreamCnafBackend, body: dict[str, Any]
) -> None:
    """An indicator outside the three, or a date that is not one, is 37999: never passed through."""
    fake.script("/allocation_enfant_handicape", json_answer(body, X_APISECU_FD=CNAF))
    with pytest.raises(ApiError) as raised:
        await backend.indicator(
            Indicator.ALLOCATION_ENFANT_HANDICAPE, cnaf_pb2.AllocationEnfantHandicapeData, lefebvre(), CALLER
        )
    assert raised.value.code == "37999"


async def test_ars_asks_its_own_prestation_and_refuses_an_unknown_indicator(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """ARS is asked as AEEH, with its own prestation and OAuth2 client; another indicator is 37999."""
    fake.script(
        "/allocation_rentree_scolaire",
        json_answer(
            {"indicateur": "OUVRANT_DROIT", "dateIndicateur": "2025-08-01T00:00:00"}, X_APISECU_FD=CNAF
        ),
        json_answer({"indicateur": "BENEFICIAIRE", "dateIndicateur": "2025-08-01"}, X_APISECU_FD=CNAF),
    )
    ask = partial(
        backend.indicator,
        Indicator.ALLOCATION_RENTREE_SCOLAIRE,
        cnaf_pb2.AllocationRentreeScolaireData,
        lefebvre(),
        CALLER,
    )
    data = await ask()
    assert (data.status, data.date_debut_droit) == ("ouvrant_droit", "2025-08-01")
    assert base64.b64decode(fake.to("/token")[0].headers["authorization"].split()[1]).startswith(
        b"allocation_rentree_scolaire:"
    )
    with pytest.raises(ApiError) as raised:
        await ask()
    assert raised.value.code == "37999"


async def test_aeeh_and_eaje_not_found_per_regime(fake: FakeProvider, backend: UpstreamCnafBackend) -> None:
    """A 404 of either reads as for the other prestations: no eligible caisse 35003, no MSA file 10003."""
    fake.script("/allocation_enfant_handicape", json_answer({"errorCode": "40406"}, status=404))
    fake.script("/participation_familiale_eaje", json_answer({}, status=404, X_APISECU_FD=MSA))
    with pytest.raises(ApiError) as aeeh:
        await backend.indicator(
            Indicator.ALLOCATION_ENFANT_HANDICAPE, cnaf_pb2.AllocationEnfantHandicapeData, lefebvre(), CALLER
        )
    with pytest.raises(ApiError) as eaje:
        await backend.participation_familiale_eaje(lefebvre(), CALLER)
    assert (aeeh.value.code, eaje.value.code) == ("35003", "10003")


async def test_eaje_household_in_the_gateway_s_names_becomes_the_v3_data(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """Members, address and computation parameters are mapped field by field; nulls stay unset."""
    fake.script("/participation_familiale_eaje", json_answer(EAJE_ANSWER, X_APISECU_FD=CNAF))
    data = await backend.participation_familiale_eaje(lefebvre(), CALLER)
    assert json_format.MessageToDict(data, preserving_proto_field_name=True) == {
        "allocataires": [
            {"nom_naissance": "ROCHEFORT", "prenoms": "ANNE", "date_naissance": "1991-04-12", "sexe": "F",
             "code_cog_insee_commune_naissance": "17300"},
            {"nom_naissance": "MARTIN", "nom_usage": "ROCHEFORT", "prenoms": "KARIM LOUIS",
             "date_naissance": "1989-11-30", "sexe": "M"},
        ],
        "enfants": [{"nom_naissance": "MARTIN", "prenoms": "LOU", "date_naissance": "2025-01-08",
                     "sexe": "F"}],
        "adresse": {"destinataire": "MADAME ANNE ROCHEFORT", "complement_information": "APPARTEMENT 12",
                    "numero_libelle_voie": "4 AVENUE DU PORT", "code_postal_ville": "17000 LA ROCHELLE",
                    "pays": "FRANCE"},
        "parametres_calcul_participation_familiale": {
            "nombre_enfants_a_charge": 1, "nombre_enfants_beneficiaire_aeeh": 0,
            "base_ressources_annuelles": {"valeur": 31250, "annee_calcul": 2024},
        },
    }  # fmt: skip
    assert data.parametres_calcul_participation_familiale.HasField("nombre_enfants_beneficiaire_aeeh")
    (request,) = fake.to("/participation_familiale_eaje")
    assert request.param("listePrenoms") == "ALEXIS GÉRÔME"


@pytest.mark.parametrize(
    "change",
    [{"adresse": None}, {"annee": "24"}, {"montantRessources": "31250"}, {"allocataires": None},
     {"enfants": [{"nomNaissance": "MARTIN", "listePrenoms": "LOU", "dateNaissance": "2025-01-08"}]}],
    ids=["no-address", "short-year", "amount-as-string", "no-allocataire", "child-without-sex"],
)  # fmt: skip
async def test_eaje_answer_of_another_shape_is_unknown(
    fake: FakeProvider, backend: UpstreamCnafBackend, change: dict[str, Any]
) -> None:
    """A missing address or allocataire list, a wrongly typed figure or member: 37999."""
    fake.script("/participation_familiale_eaje", json_answer({**EAJE_ANSWER, **change}, X_APISECU_FD=CNAF))
    with pytest.raises(ApiError) as raised:
        await backend.participation_familiale_eaje(lefebvre(), CALLER)
    assert raised.value.code == "37999"


@pytest.mark.parametrize(
    ("answer", "code", "provider"),
    [
        (json_answer({"errorCode": "DOSSIER_ABSENT"}, status=404, X_APISECU_FD=CNAF), "23003", "CNAF"),
        (json_answer({}, status=404, X_APISECU_FD=MSA), "10003", "MSA"),
        (Answer(404, None, {"X-APISECU-FD": RNCPS}), "40003", "RNCPS"),
        (json_answer({"errorCode": "40406"}, status=404, X_APISECU_FD=RNCPS), "35003", "CNAF & MSA"),
        (json_answer({"errorCode": 40412}, status=404), "35003", "CNAF & MSA"),
        (json_answer({"errorCode": "40409"}, status=404), "35003", "CNAF & MSA"),
    ],
)
async def test_not_found_per_regime(
    fake: FakeProvider, backend: UpstreamCnafBackend, answer: Answer, code: str, provider: str
) -> None:
    """A 404 is NOT_FOUND with the code of the organisation that said so."""
    fake.script("/quotient_familial", answer)
    error = await failure_of_qf(backend)
    assert (error.status, error.code) == (grpc.StatusCode.NOT_FOUND, code)
    assert error.provider is not None and error.provider.name == provider


async def test_not_identified_says_so(fake: FakeProvider, backend: UpstreamCnafBackend) -> None:
    """SNGI's 40409 is told apart from "no caisse" in the title, though both are 35003."""
    fake.script("/quotient_familial", json_answer({"errorCode": "40409"}, status=404))
    assert (await failure_of_qf(backend)).title == "Personne non identifiée"


async def test_unrecognised_404_is_an_unknown_answer(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """A 404 naming neither an error code nor a caisse (a wrong URL) is not "nobody": 37999."""
    error = await failure_of_qf(backend)  # nothing scripted: the fake's own 404
    assert error.code == "37999"


async def test_refused_identity_is_invalid_civility(fake: FakeProvider, backend: UpstreamCnafBackend) -> None:
    """The gateway's 400 is the API's 00366."""
    fake.script("/quotient_familial", json_answer({"errorCode": "40013"}, status=400))
    error = await failure_of_qf(backend)
    assert (error.status, error.code) == (grpc.StatusCode.INVALID_ARGUMENT, "00366")


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (json_answer({}, status=500), grpc.StatusCode.UNKNOWN, "37999"),
        (json_answer({}, status=502), grpc.StatusCode.UNAVAILABLE, "37001"),
        (json_answer({}, status=503), grpc.StatusCode.UNAVAILABLE, "37001"),
        (json_answer({}, status=504), grpc.StatusCode.DEADLINE_EXCEEDED, "37002"),
        (Answer(429, {}, {"Retry-After": "4"}), grpc.StatusCode.UNAVAILABLE, "37008"),
        (Answer(200, "{malformed", {"X-APISECU-FD": CNAF}), grpc.StatusCode.UNKNOWN, "37999"),
        (json_answer({**QF_ANSWER, "quotient_familial": {"valeur": "2550"}}, X_APISECU_FD=CNAF),
         grpc.StatusCode.UNKNOWN, "37999"),
        (json_answer(QF_ANSWER), grpc.StatusCode.UNKNOWN, "37999"),
        (json_answer(QF_ANSWER, X_APISECU_FD=RNCPS), grpc.StatusCode.UNKNOWN, "37999"),
    ],
    ids=["500", "502", "503", "504", "429", "malformed-json", "wrong-shape", "no-fd", "fd-not-a-caisse"],
)  # fmt: skip
async def test_provider_failures(
    fake: FakeProvider, backend: UpstreamCnafBackend, answer: Answer, status: grpc.StatusCode, code: str
) -> None:
    """Failures of the gateway are the CNAV's (37xxx), with the shared mapping."""
    fake.script("/quotient_familial", answer)
    error = await failure_of_qf(backend)
    assert (error.status, error.code) == (status, code)
    assert error.provider is not None and error.provider.name == "CNAV"


async def test_slow_gateway_past_the_deadline(fake: FakeProvider, backend: UpstreamCnafBackend) -> None:
    """The caller's short deadline ends the wait: 37002."""
    fake.script("/quotient_familial", Answer(200, QF_ANSWER, {"X-APISECU-FD": CNAF}, delay=3.0))
    error = await failure_of_qf(backend, Caller(RECIPIENT, "r", time_remaining=0.3))
    assert (error.status, error.code) == (grpc.StatusCode.DEADLINE_EXCEEDED, "37002")


async def test_expired_token_is_refreshed_and_the_call_retried(
    fake: FakeProvider, backend: UpstreamCnafBackend
) -> None:
    """A 401 gets one new token (token endpoint called exactly twice) and one retry that succeeds."""
    fake.script("/quotient_familial", Answer(401), json_answer(QF_ANSWER, X_APISECU_FD=CNAF))
    data = await backend.quotient_familial(lefebvre(), 2026, 3, CALLER)
    assert data.quotient_familial.valeur == 2550
    assert len(fake.to("/token")) == 2
    assert len(fake.to("/quotient_familial")) == 2


@pytest.mark.parametrize(
    ("url", "code"),
    [(f"http://127.0.0.1:{closed_port()}", "37001"), ("http://api-secu.invalid", "37004")],
    ids=["refused", "dns"],
)
async def test_unreachable_gateway(url: str, code: str) -> None:
    """Nothing listening is 37001; a name that does not resolve is 37004."""
    backend = UpstreamCnafBackend.from_settings(settings_for(url))
    try:
        error = await failure_of_qf(backend)
    finally:
        await backend.close()
    assert error.code == code


def test_path_of_a_prestation_can_be_set() -> None:
    """A client entry's path replaces the prestation's default path."""
    clients = clients_json()
    clients["quotient_familial"]["path"] = "api/qf/v2"
    settings = settings_for("http://gw", upstream_clients=clients)
    assert settings.upstream_clients["quotient_familial"].path == "api/qf/v2"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"UPSTREAM_BASE_URL": ""}, "UPSTREAM_BASE_URL"),
        ({"UPSTREAM_TOKEN_URL": ""}, "UPSTREAM_TOKEN_URL"),
        ({"UPSTREAM_CLIENTS": ""}, "UPSTREAM_CLIENTS"),
        ({"UPSTREAM_CLIENTS": json.dumps({"quotient_familial": clients_json()["quotient_familial"]})},
         "revenu_solidarite_active"),
    ],
)  # fmt: skip
def test_upstream_backend_without_its_settings_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    """BACKEND=upstream with a setting missing stops the process with the env var's name, no secret."""
    full = {
        "BACKEND": "upstream",
        "UPSTREAM_BASE_URL": "http://gw",
        "UPSTREAM_TOKEN_URL": "http://gw/token",
        "UPSTREAM_CLIENTS": json.dumps(clients_json()),
    }
    full.update(env)
    for key, value in full.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match=named) as raised:
        CnafSettings()
    assert "secret-" not in str(raised.value)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole upstream configuration reads from env vars, secrets kept hidden."""
    monkeypatch.setenv("BACKEND", "upstream")
    monkeypatch.setenv("UPSTREAM_BASE_URL", "http://gw")
    monkeypatch.setenv("UPSTREAM_TOKEN_URL", "http://gw/token")
    monkeypatch.setenv("UPSTREAM_CLIENTS", json.dumps(clients_json()))
    settings = CnafSettings()
    assert (
        settings.upstream_clients["prime_activite"].client_secret.get_secret_value()
        == "secret-prime_activite"
    )
    assert "secret-" not in repr(settings)


@pytest.fixture
async def upstream_cnaf(fake: FakeProvider) -> AsyncIterator[cnaf_pb2_grpc.CnafServiceAsyncStub]:
    """A cnaf service on BACKEND=upstream, pointing at the fake."""
    settings = settings_for(fake.url, grpc_host="127.0.0.1", grpc_port=0, metrics_port=None)
    async with running(CNAF_SERVICE.server(settings)) as channel:
        yield cnaf_pb2_grpc.CnafServiceStub(channel)


async def test_grpc_service_on_the_upstream_backend(
    fake: FakeProvider, upstream_cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub
) -> None:
    """Over gRPC, the service answers with the fake's data and forwards recipient and request id."""
    fake.script("/quotient_familial", json_answer(QF_ANSWER, X_APISECU_FD=MSA))
    metadata = (("x-recipient", RECIPIENT), ("x-request-id", "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d"))
    response = await upstream_cnaf.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(), annee=2026, mois=3),
        metadata=metadata,
        timeout=5,
    )
    assert (response.data.quotient_familial.fournisseur, response.data.quotient_familial.valeur) == (
        "MSA",
        2550,
    )
    (request,) = fake.to("/quotient_familial")
    assert request.headers["x-apipart-fsfinal"] == RECIPIENT
    assert request.headers["x-correlation-id"] == "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d"


async def test_grpc_not_found_carries_code_and_provider(
    fake: FakeProvider, upstream_cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub
) -> None:
    """An upstream 404 from the CNAF comes back NOT_FOUND, 23003, provider CNAF in ErrorInfo."""
    fake.script("/quotient_familial", json_answer({}, status=404, X_APISECU_FD=CNAF))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await upstream_cnaf.GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre()), timeout=5
        )
    status = rich_status(raised.value)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert (status.api_code, status.error_info.metadata["provider"]) == ("23003", "CNAF")


@pytest.mark.parametrize(
    ("enfants", "young"),
    [(EAJE_ANSWER["enfants"], True), ([{**EAJE_ANSWER["enfants"][0], "dateNaissance": "2015-01-08"}], False),
     (None, False)],
    ids=["young-child", "older-child", "no-child"],
)  # fmt: skip
async def test_grpc_eaje_on_the_upstream_backend_applies_the_age_rule(
    fake: FakeProvider,
    upstream_cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
    enfants: list[dict[str, Any]] | None,
    young: bool,
) -> None:
    """The gateway's household comes back only with a child under 7; else NOT_FOUND 37003 (CNAV)."""
    answer = (
        {**EAJE_ANSWER, "enfants": enfants}
        if enfants is not None
        else {key: value for key, value in EAJE_ANSWER.items() if key != "enfants"}
    )
    fake.script("/participation_familiale_eaje", json_answer(answer, X_APISECU_FD=CNAF))
    call = upstream_cnaf.GetParticipationFamilialeEajeByIdentity(
        cnaf_pb2.GetParticipationFamilialeEajeByIdentityRequest(identite=lefebvre()), timeout=5
    )
    if young:
        assert (await call).data.enfants[0].prenoms == "LOU"
        return
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    status = rich_status(raised.value)
    assert (status.api_code, status.error_info.metadata["provider"]) == ("37003", "CNAV")
