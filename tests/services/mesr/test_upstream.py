"""The mesr upstream backend against a fake student directory on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.mesr.v1 import mesr_pb2, mesr_pb2_grpc
from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from services.mesr.app import MESR
from services.mesr.settings import MesrSettings
from services.mesr.upstream import UpstreamMesrBackend
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.rich_status import rich_status
from tests.services.conftest import upstream_settings

CALLER = Caller(recipient="13002526500013", request_id="req-mesr-1", time_remaining=5.0, token_id="jti-9")
PATH = "/etudiants"
INE = "2301456789K"
IDENTITY = identity_pb2.IdentityPivot(
    nom_naissance="BERNARD",
    prenoms=["CAMILLE"],
    annee_date_naissance=2005,
    mois_date_naissance=5,
    jour_date_naissance=7,
    sexe_etat_civil="F",
    code_cog_insee_pays_naissance="99100",
    code_cog_insee_commune_naissance="29019",
)
ANSWER: dict[str, Any] = {
    "ine": INE, "nomFamille": "BERNARD", "prenom": "CAMILLE", "dateNaissance": "2005-05-07",
    "inscriptions": [
        {"dateDebutInscription": "2026-09-01T00:00:00+02:00", "dateFinInscription": "2027-08-31",
         "statut": "inscrit", "regime": "formation initiale", "codeCommune": "29019",
         "etablissement": {"uai": "0290346U", "nomEtablissement": "UNIVERSITE DE BRETAGNE OCCIDENTALE"}},
        {"dateDebutInscription": "2026-09-01", "dateFinInscription": "2027-08-31", "statut": "admis",
         "regime": "formation inédite", "codeCommune": None,
         "etablissement": {"uai": "0350936C", "nomEtablissement": "UNIVERSITE DE RENNES"}},
    ],
}  # fmt: skip


settings_for = partial(
    upstream_settings, MesrSettings, upstream_ine_api_key="key-ine", upstream_identity_api_key="key-identity"
)
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamMesrBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamMesrBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def test_by_identity_maps_admissions_and_sends_the_caller(
    fake: FakeProvider, backend: UpstreamMesrBackend
) -> None:
    """POST of the civility with the identity key, X-Caller and correlation id; admissions mapped."""
    fake.script(PATH, json_answer(ANSWER))
    data = await backend.by_identity(IDENTITY, CALLER)
    as_dict = render(data)
    assert as_dict["identite"] == {
        "nom_naissance": "BERNARD",
        "prenom": "CAMILLE",
        "date_naissance": "2005-05-07",
    }
    assert as_dict["admissions"][0] == {
        "date_debut": "2026-09-01", "date_fin": "2027-08-31", "est_inscrit": True,
        "regime_formation": {"libelle": "formation initiale", "code": "RF1"},
        "code_cog_insee_commune": "29019",
        "etablissement_etudes": {"uai": "0290346U", "nom": "UNIVERSITE DE BRETAGNE OCCIDENTALE"},
    }  # fmt: skip
    second = as_dict["admissions"][1]
    # An unknown regime label has a null code; a commune the directory does not send is null.
    assert (second["est_inscrit"], second["regime_formation"]["code"], second["code_cog_insee_commune"]) == (
        False,
        None,
        None,
    )
    (request,) = fake.to(PATH)
    assert request.method == "POST"
    assert json.loads(request.body) == {
        "nomFamille": "BERNARD", "prenom1": "CAMILLE", "dateNaissance": "2005-05-07", "sexe": "2",
        "lieuNaissance": "29019",
    }  # fmt: skip
    assert request.headers["x-api-key"] == "key-identity"
    assert request.headers["x-caller"] == "DINUM - jti-9"
    assert request.headers["x-correlation-id"] == "req-mesr-1"


async def test_by_ine_uses_the_ine_key(fake: FakeProvider, backend: UpstreamMesrBackend) -> None:
    """GET ?INE= with the INE key."""
    fake.script(PATH, json_answer(ANSWER))
    data = await backend.by_ine(INE, CALLER)
    assert len(data.admissions) == 2
    (request,) = fake.to(PATH)
    assert (request.method, request.param("INE"), request.headers["x-api-key"]) == ("GET", INE, "key-ine")


@pytest.mark.parametrize(
    ("method", "detail"),
    [
        ("by_identity", "Aucun étudiant n'a pu être trouvé avec les critères de recherche fournis."),
        ("by_france_connect", "Aucun étudiant n'a pu être trouvé."),
    ],
)
async def test_not_found(fake: FakeProvider, backend: UpstreamMesrBackend, method: str, detail: str) -> None:
    """A 404 is 25003, worded after how the student was designated."""
    fake.script(PATH, json_answer({"message": "not found"}, status=404))
    with pytest.raises(ApiError) as raised:
        await getattr(backend, method)(IDENTITY, CALLER)
    assert (raised.value.status, raised.value.code, raised.value.detail) == (
        grpc.StatusCode.NOT_FOUND,
        "25003",
        detail,
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_answer({**ANSWER, "nomFamille": None}), "25999"),
        (json_answer({"inscriptions": []}), "25999"),
        (json_answer({**ANSWER, "inscriptions": [{"statut": "inscrit"}]}), "25999"),
        (Answer(200, "<html>"), "25999"),
        (json_answer({}, status=500), "25999"),
        (json_answer({}, status=502), "25001"),
    ],
    ids=["null-name", "no-name", "bad-inscription", "not-json", "500", "502"],
)
async def test_failures(fake: FakeProvider, backend: UpstreamMesrBackend, answer: Answer, code: str) -> None:
    """An answer without nomFamille or of the wrong shape is 25999."""
    fake.script(PATH, answer)
    with pytest.raises(ApiError) as raised:
        await backend.by_ine(INE, CALLER)
    assert raised.value.code == code


async def test_slow_answer_past_the_deadline(fake: FakeProvider, backend: UpstreamMesrBackend) -> None:
    """The caller's short deadline ends the wait: 25002."""
    fake.script(PATH, Answer(200, ANSWER, delay=2.0))
    with pytest.raises(ApiError) as raised:
        await backend.by_ine(INE, Caller("", "r", time_remaining=0.3))
    assert (raised.value.status, raised.value.code) == (grpc.StatusCode.DEADLINE_EXCEEDED, "25002")


async def test_refused_connection() -> None:
    """Nothing listening: 25001."""
    backend = UpstreamMesrBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        with pytest.raises(ApiError) as raised:
            await backend.by_ine(INE, CALLER)
    finally:
        await backend.close()
    assert raised.value.code == "25001"


@pytest.mark.parametrize("missing", ["UPSTREAM_INE_API_KEY", "UPSTREAM_IDENTITY_API_KEY"])
def test_missing_api_key_fails_at_start(missing: str) -> None:
    """BACKEND=upstream without either key names its env var, not the other key."""
    with pytest.raises(ValueError, match=missing) as raised:
        settings_for("http://mesr", **{missing.lower(): None})
    assert "key-" not in str(raised.value)


async def test_grpc_service_on_the_upstream_backend(fake: FakeProvider) -> None:
    """Over gRPC: FranceConnect without identite and X-Caller from the token id; a 404 is 25003, MESRI."""
    fake.script(PATH, json_answer(ANSWER), json_answer({}, status=404))
    settings = settings_for(fake.url, grpc_host="127.0.0.1", grpc_port=0, metrics_port=None)
    subject = identity_pb2.FranceConnectSubject(access_token="fc", identite_pivot=IDENTITY)
    async with running(MESR.server(settings)) as channel:
        stub = mesr_pb2_grpc.MesrServiceStub(channel)
        response = await stub.GetStatutEtudiantByFranceConnect(
            mesr_pb2.GetStatutEtudiantByFranceConnectRequest(france_connect=subject),
            metadata=(("x-token-id", "jti-3"),),
            timeout=5,
        )
        assert len(response.data.admissions) == 2 and "identite" not in render(response.data)
        assert fake.to(PATH)[0].headers["x-caller"] == "DINUM - jti-3"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetStatutEtudiantByIne(mesr_pb2.GetStatutEtudiantByIneRequest(ine=INE), timeout=5)
    status = rich_status(raised.value)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert (status.api_code, status.error_info.metadata["provider"]) == ("25003", "MESRI")
