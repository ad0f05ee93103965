"""The sdh sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.sdh.v1 import sdh_pb2
from runtime.caller import Caller
from runtime.providers import SDH
from services.common.sandbox import SandboxBackend, answer
from services.sdh.backend import sportif_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


class SandboxSdhBackend(SandboxBackend):
    """Answers for the sandbox sportspeople; the ministry knows no other identifiant."""

    population_file = POPULATION_FILE

    async def statut_sportif(self, identifiant: str, caller: Caller) -> sdh_pb2.StatutSportifData:
        """The sportsperson's statuses, as written in the population file."""
        person = await self._population.by_identifiant(identifiant)
        return answer(person, "statut_sportif", sdh_pb2.StatutSportifData, SDH, sportif_not_found)
