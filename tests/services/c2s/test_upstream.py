"""The c2s upstream backend against a fake Sécurité sociale gateway on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import grpc
import pytest

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError
from services.c2s.app import C2S
from services.c2s.settings import C2sSettings
from services.c2s.upstream import UpstreamC2sBackend
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.services.conftest import upstream_settings

RNCPS = "99430000"
CALLER = Caller(recipient="13002526500013", request_id="req-c2s-1", time_remaining=5.0)
IDENTITY = identity_pb2.IdentityPivot(
    nom_naissance="MARTIN",
    prenoms=["JULIE"],
    annee_date_naissance=1990,
    mois_date_naissance=5,
    jour_date_naissance=4,
    sexe_etat_civil="F",
    code_cog_insee_pays_naissance="99100",
    code_cog_insee_commune_naissance="75056",
)


settings_for = partial(
    upstream_settings, C2sSettings, upstream_client_id="c2s", upstream_client_secret="secret"
)
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamC2sBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamC2sBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def failure(backend: UpstreamC2sBackend) -> ApiError:
    """The error a C2S request raises."""
    with pytest.raises(ApiError) as raised:
        await backend.complementaire_sante_solidaire(IDENTITY, CALLER)
    return raised.value


async def test_covered_person(fake: FakeProvider, backend: UpstreamC2sBackend) -> None:
    """A covered person's status comes back; the request carries identity, SIRET and correlation id."""
    fake.script(
        "/complementaire_sante_solidaire",
        json_answer(
            {"est_beneficiaire": True, "avec_participation": False, "date_debut_droit": "2024-01-01"},
            X_APISECU_FD=RNCPS,
        ),
    )
    data = await backend.complementaire_sante_solidaire(IDENTITY, CALLER)
    assert (data.est_beneficiaire, data.avec_participation, data.date_debut_droit) == (
        True,
        False,
        "2024-01-01",
    )
    (request,) = fake.to("/complementaire_sante_solidaire")
    assert (request.param("nomNaissance"), request.param("codeLieuNaissance")) == ("MARTIN", "75056")
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-apipart-fsfinal"] == "13002526500013"
    assert request.headers["x-correlation-id"] == "req-c2s-1"


async def test_names_reach_the_gateway_with_ascii_apostrophes_and_dashes(fake: FakeProvider) -> None:
    """Over gRPC, names with typographic apostrophes and dashes reach the gateway with ASCII ones."""
    fake.script(
        "/complementaire_sante_solidaire", json_answer({"est_beneficiaire": False}, X_APISECU_FD=RNCPS)
    )
    identity = identity_pb2.IdentityPivot()
    identity.CopyFrom(IDENTITY)
    identity.nom_naissance = "D\u2019ALMEIDA"
    identity.prenoms[:] = ["JEAN-PIERRE", "ANNE\u2019MARIE"]
    settings = settings_for(fake.url, grpc_host="127.0.0.1", grpc_port=0)
    async with running(C2S.server(settings)) as channel:
        response = await c2s_pb2_grpc.C2sServiceStub(channel).GetComplementaireSanteSolidaireByIdentity(
            c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=identity), timeout=5
        )
    assert not response.data.est_beneficiaire
    (request,) = fake.to("/complementaire_sante_solidaire")
    assert (request.param("nomNaissance"), request.param("listePrenoms")) == (
        "D'ALMEIDA",
        "JEAN-PIERRE ANNE'MARIE",
    )


async def test_person_not_covered(fake: FakeProvider, backend: UpstreamC2sBackend) -> None:
    """Not covered: no participation, no start date."""
    fake.script(
        "/complementaire_sante_solidaire", json_answer({"est_beneficiaire": False}, X_APISECU_FD=RNCPS)
    )
    data = await backend.complementaire_sante_solidaire(IDENTITY, CALLER)
    assert not data.est_beneficiaire
    assert not data.HasField("avec_participation") and not data.HasField("date_debut_droit")


@pytest.mark.parametrize(
    "answer",
    [json_answer({}, status=404, X_APISECU_FD=RNCPS), json_answer({"errorCode": "40406"}, status=404)],
)
async def test_not_found_is_the_rncps(
    fake: FakeProvider, backend: UpstreamC2sBackend, answer: Answer
) -> None:
    """A 404 from the gateway is 40003, RNCPS."""
    fake.script("/complementaire_sante_solidaire", answer)
    error = await failure(backend)
    assert (error.status, error.code) == (grpc.StatusCode.NOT_FOUND, "40003")


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_answer({"est_beneficiaire": "oui"}, X_APISECU_FD=RNCPS), "37999"),
        (json_answer({}, status=503), "37001"),
        (json_answer({}, status=404), "37999"),
    ],
)
async def test_gateway_failures(
    fake: FakeProvider, backend: UpstreamC2sBackend, answer: Answer, code: str
) -> None:
    """A wrong shape, an unavailable gateway, an unrecognised 404: the CNAV's errors."""
    fake.script("/complementaire_sante_solidaire", answer)
    assert (await failure(backend)).code == code


async def test_refused_connection() -> None:
    """Nothing listening: 37001."""
    backend = UpstreamC2sBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        assert (await failure(backend)).code == "37001"
    finally:
        await backend.close()


def test_missing_credentials_fail_at_start() -> None:
    """BACKEND=upstream without a client secret names the env var."""
    with pytest.raises(ValueError, match="UPSTREAM_CLIENT_SECRET"):
        settings_for("http://gw", upstream_client_secret=None)
