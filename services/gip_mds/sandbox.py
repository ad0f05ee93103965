"""The gip_mds sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gip_mds.v1 import gip_mds_pb2
from runtime.caller import Caller
from runtime.providers import GIP_MDS
from services.common.sandbox import SandboxBackend, answer
from services.gip_mds.backend import identity_ambiguous, person_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


class SandboxGipMdsBackend(SandboxBackend):
    """Answers for the sandbox persons; the GIP-MDS knows nobody else."""

    population_file = POPULATION_FILE

    async def service_civique(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> gip_mds_pb2.ServiceCiviqueData:
        """The person's contracts, as written in the population file."""
        person = await self._population.by_identity(identity)
        return answer(
            person,
            "service_civique",
            gip_mds_pb2.ServiceCiviqueData,
            GIP_MDS,
            person_not_found,
            ambiguous=identity_ambiguous,
        )
