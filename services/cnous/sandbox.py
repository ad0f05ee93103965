"""The cnous sandbox backend: answers from the fictitious population in sandbox_population.json.

A person's ``etudiant_boursier`` answer is the most recent valid grant (the v5
data object), the one given without ``campaignYear``; it belongs to the
campaign its ``date_rentree`` opens. ``etudiant_boursier_campagnes`` holds the
grants of other campaigns, by starting year; a campaign the person has no grant
for is not found, as at the Cnous.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from runtime.caller import Caller
from runtime.errors import ApiError
from runtime.providers import CNOUS
from services.cnous.backend import student_not_found
from services.common.sandbox import SandboxBackend, SandboxPerson, answer, found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")
_API = "etudiant_boursier"
_CAMPAIGNS = "etudiant_boursier_campagnes"


def _etudiant_boursier(
    person: SandboxPerson | None, campaign: int | None, subject: SubjectKind.ValueType
) -> cnous_pb2.EtudiantBoursierV5Data:
    def not_found() -> ApiError:
        return student_not_found(subject)

    latest = answer(person, _API, cnous_pb2.EtudiantBoursierV5Data, CNOUS, not_found)
    if campaign is None or latest.periode_versement_bourse.date_rentree.startswith(f"{campaign}-"):
        return latest
    earlier = found(person, CNOUS, not_found).answers.get(_CAMPAIGNS, {}).get(str(campaign))
    if earlier is None:
        raise not_found()
    return json_format.ParseDict(earlier, cnous_pb2.EtudiantBoursierV5Data())


class SandboxCnousBackend(SandboxBackend):
    """Answers for the sandbox persons; everyone else has no scholarship file."""

    population_file = POPULATION_FILE

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The status written in the population file for the person with this pivot."""
        return _etudiant_boursier(
            await self._population.by_identity(identity), campaign, SUBJECT_KIND_IDENTITY_PIVOT
        )

    async def by_ine(
        self, ine: str, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The status written in the population file for the person with this INE."""
        return _etudiant_boursier(await self._population.by_ine(ine), campaign, SUBJECT_KIND_INE)

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The same person as by identity: FranceConnect only certifies the pivot."""
        return _etudiant_boursier(
            await self._population.by_identity(identity), campaign, SUBJECT_KIND_FRANCE_CONNECT
        )
