"""The cnous sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.providers import CNOUS
from services.cnous.backend import Lookup, student_not_found
from services.common.sandbox import SandboxPerson, SandboxPopulation, transport_error

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")
_API = "etudiant_boursier"


class SandboxCnousBackend:
    """Answers for the sandbox persons; everyone else has no scholarship file."""

    def __init__(self, population: SandboxPopulation) -> None:
        """Serve the given population."""
        self._population = population

    @staticmethod
    def _answer(person: SandboxPerson | None, lookup: Lookup) -> cnous_pb2.EtudiantBoursierData:
        if person is None:
            raise student_not_found(lookup)
        if person.error is not None:
            raise transport_error(person.error, CNOUS) or student_not_found(lookup)
        if _API not in person.answers:
            raise student_not_found(lookup)
        return json_format.ParseDict(person.answers[_API], cnous_pb2.EtudiantBoursierData())

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierData:
        """The status written in the population file for the person with this pivot."""
        return self._answer(self._population.by_identity(identity), Lookup.IDENTITY)

    async def by_ine(self, ine: str, caller: Caller) -> cnous_pb2.EtudiantBoursierData:
        """The status written in the population file for the person with this INE."""
        return self._answer(self._population.by_ine(ine), Lookup.INE)

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierData:
        """The same person as by identity: FranceConnect only certifies the pivot."""
        return self._answer(self._population.by_identity(identity), Lookup.FRANCE_CONNECT)

    async def close(self) -> None:
        """Nothing to release."""
