"""What the mesr service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from apiparticulier.mesr.v1 import mesr_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import MESRI

_NOT_FOUND_DETAILS = {
    SUBJECT_KIND_IDENTITY_PIVOT: "Aucun étudiant n'a pu être trouvé avec les critères de recherche fournis.",
    SUBJECT_KIND_INE: "Aucun étudiant n'a pu être trouvé avec les critères de recherche fournis.",
    SUBJECT_KIND_FRANCE_CONNECT: "Aucun étudiant n'a pu être trouvé.",
}


def student_not_found(subject: SubjectKind.ValueType) -> ApiError:
    """The directory knows no student matching the subject (25003)."""
    return provider_not_found(MESRI, _NOT_FOUND_DETAILS[subject])


class MesrBackend(Protocol):
    """A source of student status. Raises `runtime.errors.ApiError` for every failure."""

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> mesr_pb2.StatutEtudiantData:
        """The admissions and identity of the student with this validated pivot (one first name)."""

    async def by_ine(self, ine: str, caller: Caller) -> mesr_pb2.StatutEtudiantData:
        """The admissions and identity of the student with this validated, upper-cased INE."""

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> mesr_pb2.StatutEtudiantData:
        """The admissions of a FranceConnect user, from the pivot the gateway resolved.

        The pivot is validated and carries one first name. The servicer drops
        ``identite`` from the answer whatever the backend returns.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
