"""The gip_mds upstream backend against a fake GIP-MDS API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
import pytest

from apiparticulier.common.v1 import identity_pb2
from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from services.gip_mds.settings import GipMdsSettings
from services.gip_mds.upstream import UpstreamGipMdsBackend
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.services.conftest import upstream_settings

PATH = "/contrats-generique"
CALLER = Caller(recipient="13002526500013", request_id="req-gip-1", time_remaining=5.0)
IDENTITY = identity_pb2.IdentityPivot(
    nom_naissance="d\u2019Ornano",
    prenoms=["Inès", "Maud"],
    annee_date_naissance=2001,
    mois_date_naissance=2,
    jour_date_naissance=3,
)
NOTHING = {"siret": None, "raison_sociale": None}
EMPTY = {
    "contrat_trouve": False,
    "organisme_accueil": NOTHING,
    "date_debut_contrat": None,
    "date_fin_contrat": None,
}

settings_for = partial(
    upstream_settings, GipMdsSettings, upstream_client_id="gip", upstream_client_secret="s3"
)
"""Upstream settings pointing at the fake on a URL; keyword arguments set or override fields."""


def contracts(*contrats: dict[str, Any]) -> Answer:
    """The GIP-MDS's answer for a person found with these contracts, in one établissement."""
    etablissement = {"siret": "13002526500013", "contrat": list(contrats)}
    entreprise = {"siren": "130025265", "raisonSociale": "DINUM", "etablissement": [etablissement]}
    return json_answer({"individu": {"entreprise": [entreprise]}, "retour": {"codeRetour": "OK"}})


def refused(status: int, code: str) -> Answer:
    """The GIP-MDS's refusal."""
    return json_answer({"erreurs": [{"code": code, "message": "…"}]}, status=status)


@pytest.fixture
async def backend(fake: FakeProvider) -> AsyncIterator[UpstreamGipMdsBackend]:
    """The upstream backend on the fake."""
    backend = UpstreamGipMdsBackend.from_settings(settings_for(fake.url))
    yield backend
    await backend.close()


async def ask(backend: UpstreamGipMdsBackend) -> dict[str, Any]:
    """The v3 data object of a search."""
    return render(await backend.service_civique(IDENTITY, CALLER))


async def test_request_carries_the_identity_and_the_nature(
    fake: FakeProvider, backend: UpstreamGipMdsBackend
) -> None:
    """GET with the upper-case birth name, first first name, DDMMYYYY, nature 89; token from the form."""
    fake.script(
        PATH, contracts({"dateDebutContrat": "2025-10-01", "dateFinContrat": None, "motifRupture": None})
    )
    data = await ask(backend)
    assert data["statut_actuel"] == {
        "contrat_trouve": True,
        "organisme_accueil": {"siret": "13002526500013", "raison_sociale": "DINUM"},
        "date_debut_contrat": "2025-10-01",
        "date_fin_contrat": None,
    }
    assert data["statut_passe"] == EMPTY
    (request,) = fake.to(PATH)
    assert {name: request.param(name) for name in request.query} == {
        "nom": "D'ORNANO",
        "prenom": "Inès",
        "dateNaissance": "03022001",
        "listeCodeNature": "89",
        "comparaisonCertifiee": "1",
    }
    assert request.headers["authorization"] == "Bearer T1"
    assert request.headers["x-correlation-id"] == "req-gip-1"
    (token,) = fake.to("/token")
    assert token.form() == {"grant_type": "client_credentials", "client_id": "gip", "client_secret": "s3"}


@pytest.mark.parametrize(
    ("motif", "running"), [("01", False), ("99", True), ("100", True), (None, False)], ids=str
)
async def test_an_ended_contract_runs_only_with_motive_99_or_100(
    fake: FakeProvider, backend: UpstreamGipMdsBackend, motif: str | None, running: bool
) -> None:
    """A contract with an end date is over, unless its rupture motive says it is not broken."""
    fake.script(
        PATH,
        contracts({"dateDebutContrat": "2024-01-15", "dateFinContrat": "2024-07-14", "motifRupture": motif}),
    )
    data = await ask(backend)
    found, empty = ("statut_actuel", "statut_passe") if running else ("statut_passe", "statut_actuel")
    assert data[found]["contrat_trouve"] and data[found]["date_fin_contrat"] == "2024-07-14"
    assert data[empty] == EMPTY


async def test_only_the_first_contract_counts(fake: FakeProvider, backend: UpstreamGipMdsBackend) -> None:
    """A second contract is not read, as the real API does."""
    fake.script(
        PATH,
        contracts(
            {"dateDebutContrat": "2022-01-01", "dateFinContrat": "2022-06-30", "motifRupture": "01"},
            {"dateDebutContrat": "2025-01-01", "dateFinContrat": None},
        ),
    )
    data = await ask(backend)
    assert data["statut_passe"]["date_debut_contrat"] == "2022-01-01"
    assert data["statut_actuel"] == EMPTY


@pytest.mark.parametrize(
    "answer",
    [refused(404, "NOT_FOUND_CONTRAT"), json_answer({"individu": {"entreprise": []}})],
    ids=["not-found-contrat", "no-entreprise"],
)
async def test_a_person_without_contract(
    fake: FakeProvider, backend: UpstreamGipMdsBackend, answer: Answer
) -> None:
    """Known but without contract: both statuses empty, not an error."""
    fake.script(PATH, answer)
    assert await ask(backend) == {"statut_actuel": EMPTY, "statut_passe": EMPTY}


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (refused(404, "NOT_FOUND_INDIVIDU"), grpc.StatusCode.NOT_FOUND, "31003"),
        (refused(413, "TOO_MANY_INDIVIDU"), grpc.StatusCode.INVALID_ARGUMENT, "00391"),
        (refused(404, "SOMETHING_ELSE"), grpc.StatusCode.UNKNOWN, "31999"),
        (json_answer({}, status=404), grpc.StatusCode.UNKNOWN, "31999"),
        (refused(500, "ERREUR"), grpc.StatusCode.UNKNOWN, "31999"),
        (json_answer({"individu": {"entreprise": "DINUM"}}), grpc.StatusCode.UNKNOWN, "31999"),
        (json_answer({}, status=503), grpc.StatusCode.UNAVAILABLE, "31001"),
    ],
    ids=["individu", "too-many", "other-code", "no-body", "500", "wrong-shape", "unavailable"],
)
async def test_refusals_and_failures(
    fake: FakeProvider, backend: UpstreamGipMdsBackend, answer: Answer, status: grpc.StatusCode, code: str
) -> None:
    """Each refusal is its code; what the adapter does not recognise is the GIP-MDS's unknown answer."""
    fake.script(PATH, answer)
    with pytest.raises(ApiError) as raised:
        await backend.service_civique(IDENTITY, CALLER)
    assert (raised.value.status, raised.value.code) == (status, code)


async def test_refused_connection() -> None:
    """Nothing listening: 31001."""
    backend = UpstreamGipMdsBackend.from_settings(settings_for(f"http://127.0.0.1:{closed_port()}"))
    try:
        with pytest.raises(ApiError) as raised:
            await backend.service_civique(IDENTITY, CALLER)
        assert raised.value.code == "31001"
    finally:
        await backend.close()


def test_missing_credentials_fail_at_start() -> None:
    """BACKEND=upstream without a client id names the variable."""
    with pytest.raises(ValueError, match="UPSTREAM_CLIENT_ID"):
        settings_for("http://gip", upstream_client_id=None)
