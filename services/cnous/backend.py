"""What the cnous service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import CNOUS

_NOT_FOUND_DETAILS = {
    SUBJECT_KIND_IDENTITY_PIVOT: "Aucun étudiant boursier n'a pu être trouvé avec les critères de recherche "
    "fournis.",
    SUBJECT_KIND_INE: "Aucun étudiant boursier n'a pu être trouvé avec les critères de recherche fournis. "
    "Veuillez vérifier que l'identifiant correspond au périmètre couvert par l'API.",
    SUBJECT_KIND_FRANCE_CONNECT: "Aucun étudiant boursier n'a pu être trouvé.",
}


def student_not_found(subject: SubjectKind.ValueType) -> ApiError:
    """The Cnous holds no scholarship file for the subject (26003)."""
    return provider_not_found(CNOUS, _NOT_FOUND_DETAILS[subject])


class CnousBackend(Protocol):
    """A source of scholarship status. Raises `runtime.errors.ApiError` for every failure."""

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The scholarship status of the student with this validated pivot (sex may be empty).

        ``campaign`` is the starting year of the campaign asked; None: the most recent valid grant.
        The same holds for the other searches.
        """

    async def by_ine(
        self, ine: str, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The scholarship status of the student with this validated, upper-cased INE."""

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The scholarship status of a FranceConnect user, from the pivot the gateway resolved.

        The pivot is validated. The servicer drops ``identite`` from the answer
        whatever the backend returns.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
