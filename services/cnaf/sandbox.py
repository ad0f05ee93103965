"""The cnaf sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import CNAF_MSA, CNAV
from services.cnaf.backend import Benefit, BenefitData
from services.common.sandbox import SandboxPerson, SandboxPopulation, transport_error

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")


def _not_registered() -> ApiError:
    return provider_not_found(
        CNAF_MSA,
        "L'allocataire n'est pas référencé auprès des caisses éligibles",
        title="Allocataire non référencé",
    )


class SandboxCnafBackend:
    """Answers for the sandbox persons; everyone else is not registered with any caisse."""

    def __init__(self, population: SandboxPopulation) -> None:
        """Serve the given population."""
        self._population = population

    def _person(self, identity: identity_pb2.IdentityPivot, api: str) -> SandboxPerson:
        person = self._population.by_identity(identity)
        if person is None:
            raise _not_registered()
        if person.error is not None:
            raise transport_error(person.error, CNAV) or _not_registered()
        if api not in person.answers:
            raise _not_registered()
        return person

    async def quotient_familial(
        self, identity: identity_pb2.IdentityPivot, year: int, month: int, caller: Caller
    ) -> cnaf_pb2.QuotientFamilialData:
        """The person's household; the value is the one of the month asked, from their history."""
        person = self._person(identity, "quotient_familial")
        data = json_format.ParseDict(person.answers["quotient_familial"], cnaf_pb2.QuotientFamilialData())
        history: dict[str, int] = person.answers.get("quotient_familial_history", {})
        asked = f"{year:04d}-{month:02d}"
        if asked in history:
            data.quotient_familial.valeur = history[asked]
        data.quotient_familial.annee = year
        data.quotient_familial.mois = month
        return data

    async def benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> BenefitData:
        """The person's status for the benefit, as written in the population file."""
        person = self._person(identity, benefit.value)
        return json_format.ParseDict(person.answers[benefit.value], data_type())

    async def close(self) -> None:
        """Nothing to release."""
