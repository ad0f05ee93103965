"""The france_travail sandbox backend: answers from the population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from apiparticulier.france_travail.v1 import france_travail_pb2
from runtime.caller import Caller
from runtime.providers import FRANCE_TRAVAIL
from services.common.sandbox import SandboxPerson, SandboxPopulation, transport_error
from services.france_travail.backend import situation_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


class SandboxFranceTravailBackend:
    """Answers for the sandbox identifiants; France Travail knows no other account."""

    def __init__(self, population: SandboxPopulation) -> None:
        """Serve the given population."""
        self._population = population

    def _person(self, identifiant: str) -> SandboxPerson:
        person = self._population.by_identifiant(identifiant)
        if person is None:
            raise situation_not_found()
        if person.error is not None:
            raise transport_error(person.error, FRANCE_TRAVAIL) or situation_not_found()
        return person

    async def statut(self, identifiant: str, caller: Caller) -> france_travail_pb2.StatutData:
        """The person's status, as written in the population file."""
        person = self._person(identifiant)
        if "statut" not in person.answers:
            raise situation_not_found()
        data = json_format.ParseDict(person.answers["statut"], france_travail_pb2.StatutData())
        data.identifiant = identifiant
        return data

    async def indemnites(self, identifiant: str, caller: Caller) -> france_travail_pb2.IndemnitesData:
        """The person's payments; a person never paid is not found, as upstream."""
        person = self._person(identifiant)
        data = json_format.ParseDict(
            person.answers.get("indemnites", {}), france_travail_pb2.IndemnitesData()
        )
        if not data.paiements:
            raise situation_not_found()
        data.identifiant = identifiant
        return data

    async def close(self) -> None:
        """Nothing to release."""
