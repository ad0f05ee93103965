"""The cnaf sandbox backend: answers from the fictitious population in sandbox_population.json."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.providers import CNAV
from services.cnaf.backend import Benefit, BenefitData, Indicator, IndicatorData, not_registered
from services.cnaf.settings import PARTICIPATION_FAMILIALE_EAJE
from services.common.sandbox import SandboxBackend, answer, found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")

_Data = TypeVar("_Data", bound=Message)


class SandboxCnafBackend(SandboxBackend):
    """Answers for the sandbox persons; everyone else is not registered with any caisse."""

    population_file = POPULATION_FILE

    async def quotient_familial(
        self, identity: identity_pb2.IdentityPivot, year: int, month: int, caller: Caller
    ) -> cnaf_pb2.QuotientFamilialData:
        """The person's household; the value is the one of the month asked, from their history."""
        person = found(await self._population.by_identity(identity), CNAV, not_registered)
        data = answer(person, "quotient_familial", cnaf_pb2.QuotientFamilialData, CNAV, not_registered)
        history: dict[str, int] = person.answers.get("quotient_familial_history", {})
        asked = f"{year:04d}-{month:02d}"
        if asked in history:
            data.quotient_familial.valeur = history[asked]
        data.quotient_familial.annee = year
        data.quotient_familial.mois = month
        return data

    async def _answer(self, api: str, data_type: type[_Data], identity: identity_pb2.IdentityPivot) -> _Data:
        return answer(await self._population.by_identity(identity), api, data_type, CNAV, not_registered)

    async def benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> BenefitData:
        """The person's status for the benefit, as written in the population file."""
        return await self._answer(benefit.value, data_type, identity)

    async def indicator(
        self,
        indicator: Indicator,
        data_type: type[IndicatorData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> IndicatorData:
        """The person's status for the benefit, as written in the population file."""
        return await self._answer(indicator.value, data_type, identity)

    async def participation_familiale_eaje(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnaf_pb2.ParticipationFamilialeEajeData:
        """The person's household, as written in the population file, eligible or not."""
        return await self._answer(
            PARTICIPATION_FAMILIALE_EAJE, cnaf_pb2.ParticipationFamilialeEajeData, identity
        )
