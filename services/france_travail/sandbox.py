"""The france_travail sandbox backend: answers from the population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.france_travail.v1 import france_travail_pb2
from runtime.caller import Caller
from runtime.providers import FRANCE_TRAVAIL
from services.common.sandbox import SandboxBackend, answer
from services.france_travail.backend import situation_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


class SandboxFranceTravailBackend(SandboxBackend):
    """Answers for the sandbox identifiants; France Travail knows no other account."""

    population_file = POPULATION_FILE

    async def statut(self, identifiant: str, caller: Caller) -> france_travail_pb2.StatutData:
        """The person's status, as written in the population file."""
        person = await self._population.by_identifiant(identifiant)
        data = answer(person, "statut", france_travail_pb2.StatutData, FRANCE_TRAVAIL, situation_not_found)
        data.identifiant = identifiant
        return data

    async def indemnites(self, identifiant: str, caller: Caller) -> france_travail_pb2.IndemnitesData:
        """The person's payments; a person never paid is not found, as upstream."""
        person = await self._population.by_identifiant(identifiant)
        data = answer(
            person, "indemnites", france_travail_pb2.IndemnitesData, FRANCE_TRAVAIL, situation_not_found
        )
        if not data.paiements:
            raise situation_not_found()
        data.identifiant = identifiant
        return data
