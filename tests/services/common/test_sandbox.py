"""The shared sandbox: how a person is matched, and what a person's answer or error path gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.errors import ApiError, ErrorSource, api_error, provider_not_found
from services.common.sandbox import (
    SandboxBackend,
    SandboxError,
    SandboxPerson,
    SandboxPopulation,
    answer,
    first_names,
    found,
)
from services.common.settings import ProviderSettings

SOURCE = ErrorSource("99", "Fournisseur fictif")
API = "complementaire_sante_solidaire"


def nobody() -> ApiError:
    return provider_not_found(SOURCE, "Personne")


def several() -> ApiError:
    """The fictitious provider's refusal of an identity several persons bear."""
    return api_error("00391")


def pivot(prenoms: list[str], **overrides: Any) -> identity_pb2.IdentityPivot:
    fields: dict[str, Any] = {
        "nom_naissance": "D\u2019Almeida",
        "prenoms": prenoms,
        "annee_date_naissance": 1982,
        "mois_date_naissance": 12,
        "jour_date_naissance": 27,
    }
    fields.update(overrides)
    return identity_pb2.IdentityPivot(**fields)


def population_of(prenoms: list[str], birth: tuple[int, ...] = (1982, 12, 27)) -> SandboxPopulation:
    """One person registered with these first names and the birth date as far as ``birth`` goes."""
    identity: dict[str, Any] = {"nomNaissance": "D'ALMEIDA", "prenoms": prenoms}
    identity.update(
        zip(("anneeDateNaissance", "moisDateNaissance", "jourDateNaissance"), birth, strict=False)
    )
    return SandboxPopulation([({"identite": identity}, SandboxPerson("registered"))])


@pytest.mark.parametrize(
    ("registered", "asked"),
    [
        (["ALEXIS", "GÉRÔME"], ["ALEXIS GÉRÔME"]),
        (["ALEXIS GÉRÔME"], ["Alexis", "Gérôme"]),
        (["ALEXIS GÉRÔME"], ["alexis\u00a0gerome"]),
        (["ALEXIS", "GÉRÔME"], ["ALEXIS"]),
        (["JEAN-PIERRE"], ["Jean\u2013Pierre", "Marc"]),
    ],
)
async def test_first_names_match_as_one_string_or_a_list(registered: list[str], asked: list[str]) -> None:
    """The first first name is the first word of all the first names, whichever way they are given."""
    person = await population_of(registered).by_identity(pivot(asked))
    assert person is not None and person.label == "registered"


@pytest.mark.parametrize(
    ("registered", "asked"),
    [
        (["ALEXIS", "GÉRÔME"], ["GÉRÔME ALEXIS"]),
        (["JEAN-PIERRE"], ["JEAN"]),
        (["JEAN PIERRE"], ["JEAN-PIERRE"]),
    ],
)
async def test_other_first_first_names_do_not_match(registered: list[str], asked: list[str]) -> None:
    """Another first first name is another person; a compound name is not its first part."""
    assert await population_of(registered).by_identity(pivot(asked)) is None


def test_first_names_are_the_words_of_all_those_given() -> None:
    """Spaces separate first names; case, accents and hyphens inside one do not count."""
    assert first_names(["  Alexis  Gérôme", "Jean\u2013Pierre"]) == ["ALEXIS", "GEROME", "JEAN PIERRE"]


async def test_birth_date_matches_as_far_as_registered() -> None:
    """A person registered with a birth year only is found by the year, not by a full date."""
    registered = population_of(["LINA"], birth=(1982,))
    year_only = pivot(["Lina"])
    year_only.ClearField("mois_date_naissance")
    year_only.ClearField("jour_date_naissance")
    assert await registered.by_identity(year_only) is not None
    assert await registered.by_identity(pivot(["Lina"])) is None


def test_answer_parses_the_person_s_data_object() -> None:
    """A person with an answer for the API gets it as the API's data message."""
    person = SandboxPerson("covered", {API: {"est_beneficiaire": True, "date_debut_droit": "2021-05-01"}})
    data = answer(person, API, c2s_pb2.ComplementaireSanteSolidaireData, SOURCE, nobody)
    assert (data.est_beneficiaire, data.date_debut_droit) == (True, "2021-05-01")
    assert not data.HasField("avec_participation")


@pytest.mark.parametrize(
    ("person", "status", "code"),
    [
        (None, grpc.StatusCode.NOT_FOUND, "99003"),
        (SandboxPerson("not found", error=SandboxError.NOT_FOUND), grpc.StatusCode.NOT_FOUND, "99003"),
        (SandboxPerson("no answer for the API", {"other_api": {}}), grpc.StatusCode.NOT_FOUND, "99003"),
        (
            SandboxPerson("down", error=SandboxError.PROVIDER_UNAVAILABLE),
            grpc.StatusCode.UNAVAILABLE,
            "99001",
        ),
        (
            SandboxPerson("slow", error=SandboxError.PROVIDER_TIMEOUT),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "99002",
        ),
        (SandboxPerson("odd", error=SandboxError.PROVIDER_UNKNOWN_ANSWER), grpc.StatusCode.UNKNOWN, "99999"),
    ],
)
def test_error_paths(person: SandboxPerson | None, status: grpc.StatusCode, code: str) -> None:
    """Nobody, not found or no answer: the provider's not-found; a failure: the source's failure."""
    with pytest.raises(ApiError) as raised:
        answer(person, API, c2s_pb2.ComplementaireSanteSolidaireData, SOURCE, nobody)
    assert (raised.value.status, raised.value.code) == (status, code)


def test_an_ambiguous_person_is_the_provider_s_own_refusal_or_not_found() -> None:
    """A person standing for several: the refusal the provider has for it, else its not-found."""
    person = SandboxPerson("homonyms", error=SandboxError.AMBIGUOUS)
    with pytest.raises(ApiError) as raised:
        answer(person, API, c2s_pb2.ComplementaireSanteSolidaireData, SOURCE, nobody, ambiguous=several)
    assert raised.value.code == "00391"
    with pytest.raises(ApiError) as raised:
        found(person, SOURCE, nobody)
    assert raised.value.code == "99003"


def test_found_gives_the_person_whatever_their_answers() -> None:
    """A person found with no answer for any API is still found: the backend reads their answers."""
    person = SandboxPerson("household", {"history": {"2025-06": 2480}})
    assert found(person, SOURCE, nobody) is person


async def test_backend_reads_its_population_file(tmp_path: Path) -> None:
    """A sandbox backend made from settings serves the population of its own file; closing is a no-op."""
    path = tmp_path / "sandbox_population.json"
    path.write_text('{"persons": [{"label": "Marc", "identifiant": "marc.martin"}]}', encoding="utf-8")

    class Backend(SandboxBackend):
        population_file = path

        async def person(self, identifiant: str) -> SandboxPerson | None:
            return await self._population.by_identifiant(identifiant)

    backend = Backend.from_settings(ProviderSettings())
    assert await backend.person("marc.martin") == SandboxPerson("Marc")
    await backend.close()
