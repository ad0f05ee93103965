"""The cnous sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from runtime.caller import Caller
from runtime.providers import CNOUS
from services.cnous.backend import student_not_found
from services.common.sandbox import SandboxBackend, SandboxPerson, answer

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


def _etudiant_boursier(
    person: SandboxPerson | None, subject: SubjectKind.ValueType
) -> cnous_pb2.EtudiantBoursierData:
    return answer(
        person, "etudiant_boursier", cnous_pb2.EtudiantBoursierData, CNOUS, lambda: student_not_found(subject)
    )


class SandboxCnousBackend(SandboxBackend):
    """Answers for the sandbox persons; everyone else has no scholarship file."""

    population_file = POPULATION_FILE

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierData:
        """The status written in the population file for the person with this pivot."""
        return _etudiant_boursier(self._population.by_identity(identity), SUBJECT_KIND_IDENTITY_PIVOT)

    async def by_ine(self, ine: str, caller: Caller) -> cnous_pb2.EtudiantBoursierData:
        """The status written in the population file for the person with this INE."""
        return _etudiant_boursier(self._population.by_ine(ine), SUBJECT_KIND_INE)

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierData:
        """The same person as by identity: FranceConnect only certifies the pivot."""
        return _etudiant_boursier(self._population.by_identity(identity), SUBJECT_KIND_FRANCE_CONNECT)
