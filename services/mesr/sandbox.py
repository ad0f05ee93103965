"""The mesr sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from apiparticulier.mesr.v1 import mesr_pb2
from runtime.caller import Caller
from runtime.providers import MESRI
from services.common.sandbox import SandboxBackend, SandboxPerson, answer
from services.mesr.backend import student_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


def _statut(person: SandboxPerson | None, subject: SubjectKind.ValueType) -> mesr_pb2.StatutEtudiantData:
    return answer(
        person, "statut_etudiant", mesr_pb2.StatutEtudiantData, MESRI, lambda: student_not_found(subject)
    )


class SandboxMesrBackend(SandboxBackend):
    """Answers for the sandbox persons; everyone else is unknown to the student directory."""

    population_file = POPULATION_FILE

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> mesr_pb2.StatutEtudiantData:
        """The status written in the population file for the person with this pivot."""
        return _statut(await self._population.by_identity(identity), SUBJECT_KIND_IDENTITY_PIVOT)

    async def by_ine(self, ine: str, caller: Caller) -> mesr_pb2.StatutEtudiantData:
        """The status written in the population file for the person with this INE."""
        return _statut(await self._population.by_ine(ine), SUBJECT_KIND_INE)

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> mesr_pb2.StatutEtudiantData:
        """The same person as by identity: FranceConnect only certifies the pivot."""
        return _statut(await self._population.by_identity(identity), SUBJECT_KIND_FRANCE_CONNECT)
