"""The c2s sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.providers import CNAV
from services.c2s.backend import file_not_found
from services.common.sandbox import SandboxBackend, answer

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


class SandboxC2sBackend(SandboxBackend):
    """Answers for the sandbox persons; the RNCPS holds no file for anyone else."""

    population_file = POPULATION_FILE

    async def complementaire_sante_solidaire(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> c2s_pb2.ComplementaireSanteSolidaireData:
        """The person's C2S status, as written in the population file."""
        person = await self._population.by_identity(identity)
        return answer(
            person,
            "complementaire_sante_solidaire",
            c2s_pb2.ComplementaireSanteSolidaireData,
            CNAV,
            file_not_found,
        )
