"""The france_travail upstream backend against a fake France Travail on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest

from apiparticulier.france_travail.v1 import france_travail_pb2, france_travail_pb2_grpc
from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from services.france_travail.app import FRANCE_TRAVAIL
from services.france_travail.settings import FranceTravailSettings
from services.france_travail.upstream import UpstreamFranceTravailBackend
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.rich_status import rich_status
from tests.services.conftest import upstream_settings

CALLER = Caller(recipient="13002526500013", request_id="req-ft-1", time_remaining=5.0, token_id="jti-42")
IDENTIFIANT = "claire.fontaine75"

STATUT: dict[str, Any] = {
    "civilite": "MME", "nom": "FONTAINE", "nomUsage": "ROCHE", "prenom": "CLAIRE", "sexe": "Féminin",
    "dateNaissance": "1988-03-14T00:00:00.000Z", "email": "claire@example.org", "telephone": "0612345678",
    "telephone2": None,
    "adresse": {"INSEECommune": "75111", "codePostal": "75011", "localite": "75011 PARIS",
                "ligneVoie": "8 RUE DES GLYCINES", "ligneComplementDestinataire": "APPARTEMENT 12",
                "ligneComplementAdresse": None, "ligneComplementDistribution": "", "ligneNom": "MME ROCHE"},
    "dateInscription": "2025-02-03", "dateCessationInscription": None, "codeCertificationCNAV": "VC",
    "categorieInscription": "1", "libellecategorieInscription": "PERSONNE SANS EMPLOI",
}  # fmt: skip
PAIEMENTS: dict[str, Any] = {
    "statutInscription": True,
    "listePaiement": [
        {"datePaiement": "2026-10-05", "montantPaiement": 1321.75, "allocations": 1180.5, "aides": 150,
         "autresPaiements": 20.0},
        {"datePaiement": "2026-11-05", "montantPaiement": 1180.5, "allocations": 1180.5, "aides": None,
         "autresPaiements": None},
    ],
}  # fmt: skip


settings_for = partial(
    upstream_settings,
    FranceTravailSettings,
    upstream_client_id="ft-client",
    upstream_client_secret="ft-secret",
)
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamFranceTravailBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamFranceTravailBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def statut_failure(backend: UpstreamFranceTravailBackend, caller: Caller = CALLER) -> ApiError:
    """The error a status request raises."""
    with pytest.raises(ApiError) as raised:
        await backend.statut(IDENTIFIANT, caller)
    return raised.value


async def test_statut_is_mapped_and_the_request_carries_the_caller(
    fake: FakeProvider, backend: UpstreamFranceTravailBackend
) -> None:
    """POST of the identifiant with token, consumer and correlation id; the answer is the v3 object."""
    fake.script("/statut", json_answer(STATUT))
    data = await backend.statut(IDENTIFIANT, CALLER)
    # What France Travail sends as null or "" is the v3 null.
    assert render(data) == {
        "identifiant": IDENTIFIANT,
        "identite": {"civilite": "MME", "nom_naissance": "FONTAINE", "nom_usage": "ROCHE", "prenom": "CLAIRE",
                     "sexe": "Féminin", "date_naissance": "1988-03-14"},
        "contact": {"telephone": "0612345678", "telephone2": None, "email": "claire@example.org"},
        "adresse": {"code_postal": "75011", "code_cog_insee_commune": "75111", "localite": "75011 PARIS",
                    "ligne_voie": "8 RUE DES GLYCINES", "ligne_complement_destinataire": "APPARTEMENT 12",
                    "ligne_complement_adresse": None, "ligne_complement_distribution": None,
                    "ligne_nom": "MME ROCHE"},
        "inscription": {"date_debut": "2025-02-03", "date_fin": None,
                        "categorie": {"code": 1, "libelle": "PERSONNE SANS EMPLOI"},
                        "code_certification_cnav": "VC"},
    }  # fmt: skip
    (request,) = fake.to("/statut")
    assert (request.method, request.body) == ("POST", IDENTIFIANT.encode())
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-pe-consommateur"] == "DINUM - jti-42"
    assert request.headers["x-correlation-id"] == "req-ft-1"
    form = fake.to("/token")[0].form()
    assert (form["client_id"], form["client_secret"], form["grant_type"]) == (
        "ft-client",
        "ft-secret",
        "client_credentials",
    )
    assert form["scope"].split() == [
        "api_statutaugmentev1",
        "api_liste-paiementsv1",
        "individuStatutAugmente",
        "application_ft-client",
    ]


async def test_payments_most_recent_first(fake: FakeProvider, backend: UpstreamFranceTravailBackend) -> None:
    """GET with loginMnemotechnique; payments sorted, a null part counted as 0."""
    fake.script("/indemnites", json_answer(PAIEMENTS))
    data = await backend.indemnites(IDENTIFIANT, CALLER)
    assert data.identifiant == IDENTIFIANT
    amounts = [
        (p["date_versement"], p["montant_total"], p["montant_aides"], p["montant_autres"])
        for p in render(data)["paiements"]
    ]
    assert amounts == [("2026-11-05", 1180.5, 0.0, 0.0), ("2026-10-05", 1321.75, 150.0, 20.0)]
    (request,) = fake.to("/indemnites")
    assert request.param("loginMnemotechnique") == IDENTIFIANT
    assert request.headers["x-pe-consommateur"] == "DINUM - jti-42"


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/statut", json_answer({}, status=404)),
        ("/statut", json_answer({}, status=206)),
        ("/indemnites", Answer(204)),
        ("/indemnites", json_answer({"statutInscription": False, "listePaiement": []})),
    ],
    ids=["404", "statut-206", "indemnites-204", "no-payment"],
)
async def test_not_found(
    fake: FakeProvider, backend: UpstreamFranceTravailBackend, path: str, answer: Answer
) -> None:
    """France Travail's ways of saying "no such situation" are 24003."""
    fake.script(path, answer)
    with pytest.raises(ApiError) as raised:
        await (backend.statut if path == "/statut" else backend.indemnites)(IDENTIFIANT, CALLER)
    assert (raised.value.status, raised.value.code) == (grpc.StatusCode.NOT_FOUND, "24003")


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_answer({**STATUT, "categorieInscription": None}), "24999"),
        (json_answer({**STATUT, "categorieInscription": "A"}), "24999"),
        (json_answer({**STATUT, "nom": 12}), "24999"),
        (Answer(200, "not json"), "24999"),
        (json_answer({"messageLog": "java.util.concurrent.TimeoutException at …"}, status=500), "24002"),
        (json_answer({"messageLog": "NullPointerException"}, status=500), "24999"),
        (json_answer({}, status=503), "24001"),
    ],
    ids=["no-category", "bad-category", "wrong-type", "not-json", "upstream-timeout", "500", "503"],
)
async def test_statut_failures(
    fake: FakeProvider, backend: UpstreamFranceTravailBackend, answer: Answer, code: str
) -> None:
    """Malformed answers are 24999; France Travail's own timeout is 24002."""
    fake.script("/statut", answer)
    assert (await statut_failure(backend)).code == code


async def test_payments_without_status_is_unknown(
    fake: FakeProvider, backend: UpstreamFranceTravailBackend
) -> None:
    """A payments answer without statutInscription is not understood: 24999."""
    fake.script("/indemnites", json_answer({"listePaiement": PAIEMENTS["listePaiement"]}))
    with pytest.raises(ApiError) as raised:
        await backend.indemnites(IDENTIFIANT, CALLER)
    assert raised.value.code == "24999"


async def test_slow_answer_past_the_deadline(
    fake: FakeProvider, backend: UpstreamFranceTravailBackend
) -> None:
    """The caller's short deadline ends the wait: 24002."""
    fake.script("/statut", Answer(200, STATUT, delay=2.0))
    error = await statut_failure(backend, Caller("13002526500013", "r", time_remaining=0.3))
    assert (error.status, error.code) == (grpc.StatusCode.DEADLINE_EXCEEDED, "24002")


async def test_refused_connection() -> None:
    """Nothing listening: 24001."""
    backend = UpstreamFranceTravailBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        assert (await statut_failure(backend)).code == "24001"
    finally:
        await backend.close()


async def test_expired_token_is_refreshed_once(
    fake: FakeProvider, backend: UpstreamFranceTravailBackend
) -> None:
    """A 401 gets one new token and one retry."""
    fake.script("/token", json_answer({"access_token": "T2", "expires_in": 600}))  # after the fixture's T1
    fake.script("/statut", Answer(401), json_answer(STATUT))
    assert (await backend.statut(IDENTIFIANT, CALLER)).inscription.categorie.code == 1
    assert len(fake.to("/token")) == 2
    assert [r.headers["authorization"] for r in fake.to("/statut")] == ["Bearer T1", "Bearer T2"]


def test_missing_credentials_fail_at_start() -> None:
    """BACKEND=upstream without the token endpoint names its env var."""
    with pytest.raises(ValueError, match="UPSTREAM_TOKEN_URL"):
        settings_for("http://ft", upstream_token_url=None)


async def test_grpc_service_on_the_upstream_backend(fake: FakeProvider) -> None:
    """Over gRPC: the token id reaches X-pe-consommateur; a 404 is NOT_FOUND 24003 from France Travail."""
    fake.script("/statut", json_answer(STATUT))
    fake.script("/indemnites", json_answer({}, status=404))
    settings = settings_for(fake.url, grpc_host="127.0.0.1", grpc_port=0, metrics_port=None)
    async with running(FRANCE_TRAVAIL.server(settings)) as channel:
        stub = france_travail_pb2_grpc.FranceTravailServiceStub(channel)
        metadata = (("x-token-id", "jti-7"), ("x-request-id", "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d"))
        response = await stub.GetStatutByIdentifiant(
            france_travail_pb2.GetStatutByIdentifiantRequest(identifiant=IDENTIFIANT),
            metadata=metadata,
            timeout=5,
        )
        assert response.data.identite.nom_naissance == "FONTAINE"
        (request,) = fake.to("/statut")
        assert request.headers["x-pe-consommateur"] == "DINUM - jti-7"
        assert request.headers["x-correlation-id"] == "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetIndemnitesByIdentifiant(
                france_travail_pb2.GetIndemnitesByIdentifiantRequest(identifiant=IDENTIFIANT), timeout=5
            )
    status = rich_status(raised.value)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert (status.api_code, status.error_info.metadata["provider"]) == ("24003", "France Travail")
