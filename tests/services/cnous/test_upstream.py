"""The cnous upstream backend against a fake Cnous on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest

from apiparticulier.cnous.v1 import cnous_pb2, cnous_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from services.cnous.app import CNOUS
from services.cnous.settings import CnousSettings
from services.cnous.upstream import UpstreamCnousBackend
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.rich_status import rich_status
from tests.services.conftest import upstream_settings

CALLER = Caller(recipient="13002526500013", request_id="req-cnous-1", time_remaining=5.0)
INE = "2406123457A"
IDENTITY = identity_pb2.IdentityPivot(
    nom_naissance="MERCIER",
    prenoms=["ZOÉ", "ANNE"],
    annee_date_naissance=2006,
    mois_date_naissance=3,
    jour_date_naissance=21,
    sexe_etat_civil="F",
    code_cog_insee_pays_naissance="99100",
    code_cog_insee_commune_naissance="56260",
)
ANSWER: dict[str, Any] = {
    "statut_boursier": {"est_boursier": True, "est_radie": False, "date_radiation": None},
    "echelon_bourse": {"echelon": "0bis", "echelon_bourse_regionale_provisoire": False},
    "email": "zoe.mercier@etu.example",
    "ine": "2406123457A",
    "periode_versement_bourse": {"date_rentree": "2026-09-01", "duree": 10},
    "etablissement_etudes": {"nom_commune": "RENNES", "nom_etablissement": "UNIVERSITE DE RENNES"},
    "identite": {"nom": "MERCIER", "prenoms": ["ZOÉ", "ANNE"], "date_naissance": "2006-03-21",
                 "nom_commune_naissance": "VANNES", "sexe": "F"},
}  # fmt: skip


settings_for = partial(
    upstream_settings, CnousSettings, upstream_client_id="cnous", upstream_client_secret="cnous-secret"
)
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamCnousBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamCnousBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def test_by_identity_is_mapped_and_authenticated(
    fake: FakeProvider, backend: UpstreamCnousBackend
) -> None:
    """POST of the civility with a bearer token and the correlation id; the answer is the v5 object."""
    fake.script("/civility", json_answer(ANSWER))
    data = await backend.by_identity(IDENTITY, None, CALLER)
    assert render(data) == ANSWER
    (request,) = fake.to("/civility")
    assert json.loads(request.body) == {
        "lastName": "MERCIER", "firstNames": "ZOÉ, ANNE", "birthDate": "2006-03-21", "birthPlace": "56260",
        "civility": "F",
    }  # fmt: skip
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-correlation-id"] == "req-cnous-1"
    basic = base64.b64encode(b"cnous:cnous-secret").decode()
    assert fake.to("/token")[0].headers["authorization"] == f"Basic {basic}"


async def test_by_ine_and_france_connect_paths(fake: FakeProvider, backend: UpstreamCnousBackend) -> None:
    """The INE goes in the path; a FranceConnect user's identity goes under FranceConnect's claim names."""
    fake.script(
        f"/ine/{INE}",
        json_answer(
            {
                "statut_boursier": {"est_boursier": False, "est_radie": False},
                "periode_versement_bourse": {"date_rentree": "2026-09-01", "duree": 0},
            }
        ),
    )
    fake.script("/france_connect", json_answer(ANSWER))
    # What the Cnous does not send is null; false and a duree of 0 stay values.
    assert render(await backend.by_ine(INE, None, CALLER)) == {
        "statut_boursier": {"est_boursier": False, "est_radie": False, "date_radiation": None},
        "periode_versement_bourse": {"date_rentree": "2026-09-01", "duree": 0},
        "etablissement_etudes": None,
        "echelon_bourse": None,
        "email": None,
        "identite": None,
        "ine": None,
    }
    await backend.by_france_connect(IDENTITY, None, CALLER)
    (request,) = fake.to("/france_connect")
    assert json.loads(request.body) == {
        "family_name": "MERCIER", "given_name": "ZOÉ ANNE", "birthdate": "2006-03-21", "gender": "female",
        "birthplace": "56260", "birthcountry": "99100",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (json_answer({}, status=404), grpc.StatusCode.NOT_FOUND, "26003"),
        (json_answer({}, status=400), grpc.StatusCode.INVALID_ARGUMENT, "00360"),
        (json_answer({"statut_boursier": {"est_boursier": "oui", "est_radie": False}}),
         grpc.StatusCode.UNKNOWN, "26999"),
        (json_answer({**ANSWER, "periode_versement_bourse": {"date_rentree": "01/09/2026", "duree": 10}}),
         grpc.StatusCode.UNKNOWN, "26999"),
        (json_answer({"lastName": "MERCIER"}), grpc.StatusCode.UNKNOWN, "26999"),
        (json_answer({}, status=504), grpc.StatusCode.DEADLINE_EXCEEDED, "26002"),
    ],
    ids=["404", "400", "wrong-type", "bad-date", "other-shape", "504"],
)  # fmt: skip
async def test_answers_by_ine(
    fake: FakeProvider, backend: UpstreamCnousBackend, answer: Answer, status: grpc.StatusCode, code: str
) -> None:
    """Not found is 26003, a refused INE 00360, a malformed answer 26999."""
    fake.script(f"/ine/{INE}", answer)
    with pytest.raises(ApiError) as raised:
        await backend.by_ine(INE, None, CALLER)
    assert (raised.value.status, raised.value.code) == (status, code)


async def test_expired_token_is_refreshed_once(fake: FakeProvider, backend: UpstreamCnousBackend) -> None:
    """A 401 gets one new token and one retry."""
    fake.script("/token", json_answer({"access_token": "T2", "expires_in": 600}))  # after the fixture's T1
    fake.script("/civility", Answer(401), json_answer(ANSWER))
    assert (await backend.by_identity(IDENTITY, None, CALLER)).statut_boursier.est_boursier
    assert [r.headers["authorization"] for r in fake.to("/civility")] == ["Bearer T1", "Bearer T2"]


async def test_slow_answer_past_the_deadline(fake: FakeProvider, backend: UpstreamCnousBackend) -> None:
    """The caller's short deadline ends the wait: 26002."""
    fake.script(f"/ine/{INE}", Answer(200, ANSWER, delay=2.0))
    with pytest.raises(ApiError) as raised:
        await backend.by_ine(INE, None, Caller("", "r", time_remaining=0.3))
    assert (raised.value.status, raised.value.code) == (grpc.StatusCode.DEADLINE_EXCEEDED, "26002")


async def test_refused_connection() -> None:
    """Nothing listening (the token endpoint included): 26001."""
    backend = UpstreamCnousBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        with pytest.raises(ApiError) as raised:
            await backend.by_ine(INE, None, CALLER)
    finally:
        await backend.close()
    assert raised.value.code == "26001"


def test_missing_credentials_fail_at_start() -> None:
    """BACKEND=upstream without a client id names the env var."""
    with pytest.raises(ValueError, match="UPSTREAM_CLIENT_ID"):
        settings_for("http://cnous", upstream_client_id=None)


async def test_grpc_service_on_the_upstream_backend(fake: FakeProvider) -> None:
    """Over gRPC: an answer comes back; a 404 is NOT_FOUND 26003 from the CNOUS."""
    fake.script(f"/ine/{INE}", json_answer(ANSWER))
    fake.script("/civility", json_answer({}, status=404))
    settings = settings_for(fake.url, grpc_host="127.0.0.1", grpc_port=0, metrics_port=None)
    async with running(CNOUS.server(settings)) as channel:
        stub = cnous_pb2_grpc.CnousServiceStub(channel)
        response = await stub.GetEtudiantBoursierByIne(
            cnous_pb2.GetEtudiantBoursierByIneRequest(ine=INE),
            metadata=(("x-request-id", "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d"),),
            timeout=5,
        )
        assert response.data.echelon_bourse.echelon == "0bis"
        assert fake.to(f"/ine/{INE}")[0].headers["x-correlation-id"] == "9d3c2b1a-0f4e-4a5b-8c7d-6e5f4a3b2c1d"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetEtudiantBoursierByIdentity(
                cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=IDENTITY), timeout=5
            )
    status = rich_status(raised.value)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert (status.api_code, status.error_info.metadata["provider"]) == ("26003", "CNOUS")


async def test_campaign_year_goes_upstream_in_each_modality(
    fake: FakeProvider, backend: UpstreamCnousBackend
) -> None:
    """The campaign asked goes in the JSON body (identity, FranceConnect) or the query (INE)."""
    for path in ("/civility", f"/ine/{INE}", "/france_connect"):
        fake.script(path, json_answer(ANSWER))
    await backend.by_identity(IDENTITY, 2023, CALLER)
    await backend.by_ine(INE, 2023, CALLER)
    await backend.by_france_connect(IDENTITY, 2023, CALLER)
    assert json.loads(fake.to("/civility")[0].body)["campaignYear"] == 2023
    assert fake.to(f"/ine/{INE}")[0].query == {"campaignYear": ["2023"]}
    assert json.loads(fake.to("/france_connect")[0].body)["campaignYear"] == 2023
