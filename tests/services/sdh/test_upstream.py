"""The sdh upstream backend against a fake sports ministry API on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from runtime.providers import SDH
from services.sdh.settings import SdhSettings
from services.sdh.upstream import UpstreamSdhBackend
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.services.conftest import upstream_settings

TODAY = dt.date(2026, 6, 15)
CALLER = Caller(recipient="13002526500013", request_id="req-sdh-1", time_remaining=5.0)

settings_for = partial(upstream_settings, SdhSettings, upstream_client_id="sdh", upstream_client_secret="s3")
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


def fiche_hn(number: int, start: str, end: str, *, haut_niveau: bool = True) -> dict[str, Any]:
    """One list record of the ministry."""
    return {
        "fiche": number,
        "debutDroits": f"{start}T00:00:00",
        "finDroits": f"{end}T00:00:00",
        "federation": 68,
        "nomFederation": "Fédération Française de Vol Libre",
        "nomCourtFederation": "VOL LIBRE",
        "categorie": 4,
        "libCategorie": "Elite",
        "hautNiveau": haut_niveau,
        "valeur": 128,
    }


def sportif(*fiches: dict[str, Any], **fields: Any) -> Answer:
    """The ministry's answer for a sportsperson with these list records."""
    training = [
        {"active": False, "etablissement": 1, "nomEtablissement": "ANCIEN", "region": 11, "nomRegion": "IDF"},
        {
            "active": True,
            "etablissement": 980,
            "nomEtablissement": "MRP OCCITANIE",
            "region": 76,
            "nomRegion": "Occitanie",
        },
    ]
    body = {
        "nom": "DUPONT",
        "prenom": "Thomas Paul",
        "nomUsage": "MARTIN",
        "dateNaissance": "1990-06-15T00:00:00",
        "genre": "M",
        "sexe": False,
        "categorie": "Elite",
        "fichesHN": list(fiches),
        "fichesSportif": training,
        **fields,
    }
    return json_answer(body)


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamSdhBackend]:
    """The upstream backend on the fake, on a fixed day."""
    settings = settings_for(fake.url)
    http = settings.upstream_client(SDH)
    backend = UpstreamSdhBackend(
        http, settings.upstream_tokens(http, credentials_in_body=True), "sportifs", today=lambda: TODAY
    )
    yield backend
    await backend.close()


async def ask(backend: UpstreamSdhBackend, identifiant: str = "700001") -> dict[str, Any]:
    """The v3 data object of an identifiant."""
    return render(await backend.statut_sportif(identifiant, CALLER))


async def test_today_s_status_and_the_others(fake: FakeProvider, backend: UpstreamSdhBackend) -> None:
    """The record holding today is the status; the others, with today's establishment, are previous."""
    fake.script(
        "/sportifs/700001",
        sportif(fiche_hn(2, "2025-01-01", "2025-12-31"), fiche_hn(1, "2026-01-01", "2026-12-31")),
    )
    data = await ask(backend)
    assert data["identite"] == {
        "nom_naissance": "DUPONT",
        "nom_usage": "MARTIN",
        "prenoms": "Thomas Paul",
        "date_naissance": "1990-06-15",
        "sexe": "M",
    }
    assert (data["est_sportif_de_haut_niveau"], data["a_ete_sportif_de_haut_niveau"]) == (True, True)
    assert data["informations_statut"] == {
        "periode": {"date_debut_statut": "2026-01-01", "date_fin_statut": "2026-12-31"},
        "federation": {
            "code_federation": "68",
            "nom_federation": "Fédération Française de Vol Libre",
            "nom_court_federation": "VOL LIBRE",
        },
        "etablissement": {"code_etablissement": "980", "nom_etablissement": "MRP OCCITANIE"},
        "region": {"code_region": "76", "nom_region": "Occitanie"},
        "categorie": {"code_categorie": "4", "nom_categorie": "Elite", "valeur": "128"},
        "sportif_de_haut_niveau": True,
    }
    (previous,) = data["informations_statuts_precedents"]
    assert (previous["fiche"], previous["periode"]["date_fin_statut"]) == (2, "2025-12-31")
    assert previous["etablissement"] == data["informations_statut"]["etablissement"]
    (request,) = fake.to("/sportifs/700001")
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-correlation-id"] == "req-sdh-1"
    (token,) = fake.to("/token")
    assert token.form() == {"grant_type": "client_credentials", "client_id": "sdh", "client_secret": "s3"}


@pytest.mark.parametrize("day", ["2026-06-15", "2026-06-14", "2026-06-16"])
async def test_both_ends_of_the_rights_period_count(
    fake: FakeProvider, backend: UpstreamSdhBackend, day: str
) -> None:
    """A record starting or ending today is today's."""
    start, end = ("2026-06-15", "2026-12-31") if day <= "2026-06-15" else ("2026-01-01", "2026-06-15")
    fake.script("/sportifs/700001", sportif(fiche_hn(1, start, end)))
    data = await ask(backend)
    assert data["est_sportif_de_haut_niveau"] is True
    assert data["informations_statuts_precedents"] == []


async def test_past_only_has_no_status_today(fake: FakeProvider, backend: UpstreamSdhBackend) -> None:
    """Only past records: not high-level now, was; today's status null, as the real API sends it."""
    fake.script(
        "/sportifs/700001",
        sportif(
            fiche_hn(1, "2024-01-01", "2024-12-31"),
            fiche_hn(3, "2027-01-01", "2027-12-31", haut_niveau=False),
        ),
    )
    data = await ask(backend)
    assert (data["est_sportif_de_haut_niveau"], data["a_ete_sportif_de_haut_niveau"]) == (False, True)
    assert data["informations_statut"] is None
    assert [p["fiche"] for p in data["informations_statuts_precedents"]] == [1, 3]


async def test_a_collectif_national_is_not_high_level(
    fake: FakeProvider, backend: UpstreamSdhBackend
) -> None:
    """A record of today that is not high-level: the status is there, the flags are false."""
    fake.script(
        "/sportifs/700001", sportif(fiche_hn(1, "2026-01-01", "2026-12-31", haut_niveau=False), nomUsage=None)
    )
    data = await ask(backend)
    assert (data["est_sportif_de_haut_niveau"], data["a_ete_sportif_de_haut_niveau"]) == (False, False)
    assert data["informations_statut"]["sportif_de_haut_niveau"] is False
    assert data["identite"]["nom_usage"] is None


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_answer({}, status=404), "41003"),
        (json_answer({}, status=500), "41999"),
        (json_answer({}, status=403), "41999"),
        (json_answer({"nom": "DUPONT", "fichesHN": [{"fiche": "un"}]}), "41999"),
        (json_answer({}, status=503), "41001"),
        (json_answer({}, status=504), "41002"),
    ],
    ids=["not-found", "500", "403", "wrong-shape", "unavailable", "timeout"],
)
async def test_failures(fake: FakeProvider, backend: UpstreamSdhBackend, answer: Answer, code: str) -> None:
    """404 is 41003; everything else but a sportsperson is one of the SDH's failures."""
    fake.script("/sportifs/700001", answer)
    with pytest.raises(ApiError) as raised:
        await ask(backend)
    assert raised.value.code == code


async def test_refused_connection() -> None:
    """Nothing listening: 41001."""
    backend = UpstreamSdhBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        with pytest.raises(ApiError) as raised:
            await ask(backend)
        assert raised.value.code == "41001"
    finally:
        await backend.close()


def test_missing_credentials_fail_at_start() -> None:
    """BACKEND=upstream without a token URL names the variable."""
    with pytest.raises(ValueError, match="UPSTREAM_TOKEN_URL"):
        settings_for("http://sdh", upstream_token_url=None)
