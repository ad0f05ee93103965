"""What the mesr service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import MESRI


class Lookup(StrEnum):
    """How the student was designated; the not-found detail of the v3 API depends on it."""

    IDENTITY = "identity"
    INE = "ine"
    FRANCE_CONNECT = "france_connect"


_NOT_FOUND_DETAILS = {
    Lookup.IDENTITY: "Aucun étudiant n'a pu être trouvé avec les critères de recherche fournis.",
    Lookup.INE: "Aucun étudiant n'a pu être trouvé avec les critères de recherche fournis.",
    Lookup.FRANCE_CONNECT: "Aucun étudiant n'a pu être trouvé.",
}


def student_not_found(lookup: Lookup) -> ApiError:
    """The directory knows no student matching the subject (25003)."""
    return provider_not_found(MESRI, _NOT_FOUND_DETAILS[lookup])


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
