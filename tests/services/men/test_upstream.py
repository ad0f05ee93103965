"""The men upstream backend against a fake schooling directory on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.men.v1 import men_pb2, men_pb2_grpc
from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from services.men.app import MEN
from services.men.backend import Perimetre, PerimetreKind, ScolariteQuery
from services.men.settings import MenSettings
from services.men.upstream import UpstreamMenBackend
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.rich_status import rich_status
from tests.services.conftest import upstream_settings

RECIPIENT = "13002526500013"
CALLER = Caller(recipient=RECIPIENT, request_id="req-men-1", time_remaining=5.0)
PATH = "/perimetre"
IDENTITY = identity_pb2.IdentityPivot(
    nom_naissance="MOREAU",
    prenoms=["LUCAS", "PAUL"],
    annee_date_naissance=2012,
    mois_date_naissance=4,
    jour_date_naissance=9,
    sexe_etat_civil="M",
)
BY_DEPARTEMENT = ScolariteQuery(
    identity=IDENTITY,
    first_year=2026,
    degre_etablissement="2D",
    perimetre=Perimetre(PerimetreKind.DEPARTEMENT, ("013", "084")),
)
ANSWER: dict[str, Any] = {
    "identification": {"nom": "MOREAU", "prenom": "LUCAS", "sexe": 1, "date-naissance": "2012-04-09",
                       "annee-scolaire": "2026-2027",
                       "etablissement": {"code-uai": "0130001A", "ministere-tutelle": "06"}},
    "info-scolarite": {"est-scolarise": True, "statut-eleve": {"code": "ST", "libelle": "SCOLAIRE"},
                       "code-mef-stat": "21110010001", "libelle-long_mef": "5EME", "code-regime": "3"},
    "info-bourse": {"est-boursier": True, "niveau-bourse": 3},
}  # fmt: skip


settings_for = partial(
    upstream_settings, MenSettings, upstream_client_id="men", upstream_client_secret="men-secret"
)
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamMenBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamMenBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def failure(backend: UpstreamMenBackend, caller: Caller = CALLER) -> ApiError:
    """The error a search by département raises."""
    with pytest.raises(ApiError) as raised:
        await backend.scolarite(BY_DEPARTEMENT, caller)
    return raised.value


async def test_search_by_perimeter(fake: FakeProvider, backend: UpstreamMenBackend) -> None:
    """POST with the perimeter, bearer, partner SIRET and correlation id; the answer is the v5 object."""
    fake.script(PATH, json_answer(ANSWER))
    data = await backend.scolarite(BY_DEPARTEMENT, CALLER)
    assert render(data) == {
        "identite": {"nom": "MOREAU", "prenom": "LUCAS", "sexe": "M", "date_naissance": "2012-04-09"},
        "module_elementaire_formation": {"code_mef_stat": "21110010001", "libelle": "5EME"},
        "etablissement": {"code_uai": "0130001A", "code_ministere_tutelle": "06"},
        "annee_scolaire": "2026-2027",
        "est_scolarise": True,
        "statut_eleve": {"code": "ST", "libelle": "SCOLAIRE"},
        "est_boursier": True,
        "echelon_bourse": 3,
        "regime_pensionnat": {"code": "3", "libelle": "Interne dans l'établissement"},
    }
    (request,) = fake.to(PATH)
    assert json.loads(request.body) == {
        "nom": "MOREAU", "prenom": "LUCAS", "sexe": 1, "date-naissance": "2012-04-09",
        "annee-scolaire": "2026-2027", "scope": "men_statut_scolarite", "degre-etablissement": "2D",
        "type-perimetre": "departement", "valeurs-perimetre": ["013", "084"],
    }  # fmt: skip
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-siret-partenaire"] == RECIPIENT
    assert request.headers["x-correlation-id"] == "req-men-1"


async def test_search_in_one_establishment_without_bourse(
    fake: FakeProvider, backend: UpstreamMenBackend
) -> None:
    """An establishment goes as code-uai; without info-bourse the scholarship is unknown: null, not false."""
    fake.script(PATH, json_answer({**ANSWER, "info-bourse": None}))
    query = ScolariteQuery(identity=IDENTITY, first_year=2026, code_etablissement="0130001A")
    data = await backend.scolarite(query, CALLER)
    assert (render(data)["est_boursier"], render(data)["echelon_bourse"]) == (None, None)
    body = json.loads(fake.to(PATH)[0].body)
    assert body["code-uai"] == "0130001A"
    assert "type-perimetre" not in body and "degre-etablissement" not in body


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (json_answer({}, status=404), grpc.StatusCode.NOT_FOUND, "30003"),
        (json_answer({}), grpc.StatusCode.NOT_FOUND, "30003"),
        (json_answer({"identification": ANSWER["identification"]}), grpc.StatusCode.UNKNOWN, "30999"),
        (json_answer({**ANSWER, "identification": {**ANSWER["identification"], "sexe": "M"}}),
         grpc.StatusCode.UNKNOWN, "30999"),
        (Answer(200, b"\x00"), grpc.StatusCode.UNKNOWN, "30999"),
        (json_answer({}, status=500), grpc.StatusCode.UNKNOWN, "30999"),
        (json_answer({}, status=504), grpc.StatusCode.DEADLINE_EXCEEDED, "30002"),
    ],
    ids=["404", "empty", "half", "wrong-type", "not-json", "500", "504"],
)  # fmt: skip
async def test_answers(
    fake: FakeProvider, backend: UpstreamMenBackend, answer: Answer, status: grpc.StatusCode, code: str
) -> None:
    """No schooling is 30003; a malformed answer 30999."""
    fake.script(PATH, answer)
    error = await failure(backend)
    assert (error.status, error.code) == (status, code)


async def test_expired_token_is_refreshed_once(fake: FakeProvider, backend: UpstreamMenBackend) -> None:
    """A 401 gets one new token and one retry."""
    fake.script("/token", json_answer({"access_token": "T2", "expires_in": 600}))  # after the fixture's T1
    fake.script(PATH, Answer(401), json_answer(ANSWER))
    assert (await backend.scolarite(BY_DEPARTEMENT, CALLER)).est_scolarise
    assert [r.headers["authorization"] for r in fake.to(PATH)] == ["Bearer T1", "Bearer T2"]


async def test_slow_answer_past_the_deadline(fake: FakeProvider, backend: UpstreamMenBackend) -> None:
    """The caller's short deadline ends the wait: 30002."""
    fake.script(PATH, Answer(200, ANSWER, delay=2.0))
    error = await failure(backend, Caller(RECIPIENT, "r", time_remaining=0.3))
    assert (error.status, error.code) == (grpc.StatusCode.DEADLINE_EXCEEDED, "30002")


async def test_refused_connection() -> None:
    """Nothing listening: 30001."""
    backend = UpstreamMenBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        assert (await failure(backend)).code == "30001"
    finally:
        await backend.close()


def test_missing_credentials_fail_at_start() -> None:
    """BACKEND=upstream without a base URL names the env var."""
    with pytest.raises(ValueError, match="UPSTREAM_BASE_URL"):
        settings_for("", upstream_base_url=None)


async def test_grpc_service_on_the_upstream_backend(fake: FakeProvider) -> None:
    """Over gRPC: the recipient reaches X-Siret-Partenaire; a 404 is NOT_FOUND 30003 from the MEN."""
    fake.script(PATH, json_answer(ANSWER), json_answer({}, status=404))
    settings = settings_for(fake.url, grpc_host="127.0.0.1", grpc_port=0, metrics_port=None)
    request = men_pb2.GetScolariteByIdentityRequest(
        identite=IDENTITY,
        annee_scolaire="2026-2027",
        codes_bcn_departements=["013"],
        degre_etablissement="2D",
    )
    async with running(MEN.server(settings)) as channel:
        stub = men_pb2_grpc.MenServiceStub(channel)
        response = await stub.GetScolariteByIdentity(
            request,
            metadata=(("x-recipient", RECIPIENT), ("x-request-id", "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d")),
            timeout=5,
        )
        assert response.data.etablissement.code_uai == "0130001A"
        sent = fake.to(PATH)[0]
        assert (sent.headers["x-siret-partenaire"], sent.headers["x-correlation-id"]) == (
            RECIPIENT,
            "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d",
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetScolariteByIdentity(request, timeout=5)
    status = rich_status(raised.value)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert (status.api_code, status.error_info.metadata["provider"]) == ("30003", "MEN")
