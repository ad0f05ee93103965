"""The dsnj sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.dsnj.v1 import dsnj_pb2
from runtime.caller import Caller
from runtime.providers import DSNJ
from services.common.sandbox import SandboxBackend, answer
from services.dsnj.backend import person_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


class SandboxDsnjBackend(SandboxBackend):
    """Answers for the sandbox persons; the DSNJ knows nobody else."""

    population_file = POPULATION_FILE

    async def service_national(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> dsnj_pb2.ServiceNationalData:
        """The person's status, as written in the population file."""
        person = await self._population.by_identity(identity)
        return answer(person, "service_national", dsnj_pb2.ServiceNationalData, DSNJ, person_not_found)
