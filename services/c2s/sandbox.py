"""The c2s sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.providers import CNAV
from services.c2s.backend import file_not_found
from services.common.sandbox import SandboxPopulation, transport_error

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")
_API = "complementaire_sante_solidaire"


class SandboxC2sBackend:
    """Answers for the sandbox persons; the RNCPS holds no file for anyone else."""

    def __init__(self, population: SandboxPopulation) -> None:
        """Serve the given population."""
        self._population = population

    async def complementaire_sante_solidaire(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> c2s_pb2.ComplementaireSanteSolidaireData:
        """The person's C2S status, as written in the population file."""
        person = self._population.by_identity(identity)
        if person is None:
            raise file_not_found()
        if person.error is not None:
            raise transport_error(person.error, CNAV) or file_not_found()
        if _API not in person.answers:
            raise file_not_found()
        return json_format.ParseDict(person.answers[_API], c2s_pb2.ComplementaireSanteSolidaireData())

    async def close(self) -> None:
        """Nothing to release."""
