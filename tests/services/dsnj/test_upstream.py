"""The dsnj upstream backend against a fake DSNJ API on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest

from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError
from runtime.providers import DSNJ
from services.dsnj.settings import DsnjSettings
from services.dsnj.upstream import UpstreamDsnjBackend
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.services.conftest import upstream_settings

PATH = "/service_national"
CALLER = Caller(recipient="13002526500013", request_id="req-dsnj-1", time_remaining=5.0)
IDENTITY = identity_pb2.IdentityPivot(
    nom_naissance="d\u2019Armand-Lœb",
    prenoms=["Éloïse", "Marie"],
    annee_date_naissance=2007,
    mois_date_naissance=1,
    jour_date_naissance=9,
    sexe_etat_civil="f",
    code_cog_insee_pays_naissance="99100",
    code_cog_insee_commune_naissance="35238",
)

settings_for = partial(upstream_settings, DsnjSettings, upstream_bearer_token="static-T")
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


def found(en_regle: str, complement: str | None = None, **top: Any) -> Answer:
    """The DSNJ's answer for one person found."""
    result: dict[str, Any] = {"code": "OK", "en_regle": en_regle, "complement": complement}
    return json_answer({"return_code": "OK", "results": [result], **top})


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamDsnjBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamDsnjBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def failure(backend: UpstreamDsnjBackend, identity: identity_pb2.IdentityPivot = IDENTITY) -> ApiError:
    """The error a search raises."""
    with pytest.raises(ApiError) as raised:
        await backend.service_national(identity, CALLER)
    return raised.value


async def test_request_is_a_batch_of_one_ascii_identity(
    fake: FakeProvider, backend: UpstreamDsnjBackend
) -> None:
    """POST of one identity: first first name capitalised, names in ASCII; static token and User-Agent."""
    fake.script(PATH, found("En règle", "JDC effectuée le 2025-03-02"))
    data = await backend.service_national(IDENTITY, CALLER)
    assert (data.statut_service_national, data.commentaires) == ("en_regle", "JDC effectuée le 2025-03-02")
    (request,) = fake.to(PATH)
    assert request.method == "POST"
    assert json.loads(request.body) == {
        "identites_pivot": [
            {
                "given_name": "Eloise",
                "family_name": "D'ARMAND-LOEB",
                "birthdate": "2007-01-09",
                "gender": "female",
                "birthplace": "35238",
                "birthcountry": "99100",
            }
        ]
    }
    assert request.headers["authorization"] == "Bearer static-T"
    assert request.headers["user-agent"] == "curl/8.15.0"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["x-correlation-id"] == "req-dsnj-1"
    assert fake.to("/token") == []


async def test_a_person_born_abroad_is_sent_without_birthplace(
    fake: FakeProvider, backend: UpstreamDsnjBackend
) -> None:
    """Only people born in France are searched by commune."""
    fake.script(PATH, found("Non concerné"))
    abroad = identity_pb2.IdentityPivot()
    abroad.CopyFrom(IDENTITY)
    abroad.code_cog_insee_pays_naissance = "99350"
    data = await backend.service_national(abroad, CALLER)
    assert data.statut_service_national == "non_concerne" and not data.HasField("commentaires")
    (request,) = fake.to(PATH)
    sent = json.loads(request.body)["identites_pivot"][0]
    assert (sent["birthplace"], sent["birthcountry"], sent["gender"]) == (None, "99350", "female")


@pytest.mark.parametrize(
    ("label", "statut"),
    [
        ("En règle", "en_regle"),
        ("Pas en règle", "pas_en_regle"),
        ("Indéterminé", "indetermine"),
        ("NON CONCERNE", "non_concerne"),
    ],
)
async def test_each_status_label(
    fake: FakeProvider, backend: UpstreamDsnjBackend, label: str, statut: str
) -> None:
    """The DSNJ's labels, whatever their case and accents, are the four v3 values."""
    fake.script(PATH, found(label, ""))
    data = await backend.service_national(IDENTITY, CALLER)
    assert data.statut_service_national == statut
    assert not data.HasField("commentaires")


async def test_not_found_is_39003(fake: FakeProvider, backend: UpstreamDsnjBackend) -> None:
    """NON_TROUVE, answered with HTTP 200, is the DSNJ's not found."""
    fake.script(PATH, json_answer({"return_code": "OK", "results": [{"code": "NON_TROUVE"}]}))
    error = await failure(backend)
    assert (error.status, error.code, error.provider) == (
        grpc.StatusCode.NOT_FOUND,
        "39003",
        DSNJ,
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_answer({"return_code": "ERREUR_TECHNIQUE", "error_msg": "panne", "results": []}), "39999"),
        (json_answer({"return_code": "ERREUR_TECHNIQUE", "results": []}, status=500), "39999"),
        (json_answer({"return_code": "OK", "results": [{"code": "ERREUR_FORMAT"}]}), "39999"),
        (json_answer({"return_code": "OK", "results": [{"code": "OK"}, {"code": "OK"}]}), "39999"),
        (json_answer({"return_code": "OK", "results": []}), "39999"),
        (found("En attente"), "39999"),
        (Answer(200, "<html>maintenance</html>"), "39999"),
        (json_answer({}, status=503), "39001"),
        (json_answer({}, status=504), "39002"),
        (json_answer({}, status=429), "39008"),
    ],
    ids=[
        "technical-error",
        "technical-error-500",
        "format-error",
        "two-results",
        "no-result",
        "unknown-label",
        "not-json",
        "unavailable",
        "gateway-timeout",
        "rate-limited",
    ],
)
async def test_dsnj_failures(
    fake: FakeProvider, backend: UpstreamDsnjBackend, answer: Answer, code: str
) -> None:
    """Whatever the DSNJ answers that is not one person's status is one of its error codes."""
    fake.script(PATH, answer)
    assert (await failure(backend)).code == code


async def test_refused_connection() -> None:
    """Nothing listening: 39001."""
    backend = UpstreamDsnjBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        assert (await failure(backend)).code == "39001"
    finally:
        await backend.close()


def test_missing_token_fails_at_start() -> None:
    """BACKEND=upstream without the DSNJ's token names the variable."""
    with pytest.raises(ValueError, match="UPSTREAM_BEARER_TOKEN"):
        settings_for("http://dsnj", upstream_bearer_token=None)
