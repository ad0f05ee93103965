"""What the cnaf service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, TypeVar

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import CNAF_MSA


class Benefit(StrEnum):
    """The yes/no benefits of the service, named as the Sécurité sociale gateway names them."""

    REVENU_SOLIDARITE_ACTIVE = "revenu_solidarite_active"
    PRIME_ACTIVITE = "prime_activite"
    ALLOCATION_ADULTE_HANDICAPE = "allocation_adulte_handicape"
    ALLOCATION_SOUTIEN_FAMILIAL = "allocation_soutien_familial"


class Indicator(StrEnum):
    """The benefits answered by an indicator: who receives it, or has it paid for them.

    Named as the Sécurité sociale gateway names their prestations.
    """

    ALLOCATION_ENFANT_HANDICAPE = "allocation_enfant_handicape"
    ALLOCATION_RENTREE_SCOLAIRE = "allocation_rentree_scolaire"


def not_registered() -> ApiError:
    """The person is registered with no eligible caisse (35003)."""
    return provider_not_found(
        CNAF_MSA,
        "L'allocataire n'est pas référencé auprès des caisses éligibles",
        title="Allocataire non référencé",
    )


IndicatorData = TypeVar(
    "IndicatorData",
    cnaf_pb2.AllocationEnfantHandicapeData,
    cnaf_pb2.AllocationRentreeScolaireData,
)
BenefitData = TypeVar(
    "BenefitData",
    cnaf_pb2.RevenuSolidariteActiveData,
    cnaf_pb2.PrimeActiviteData,
    cnaf_pb2.AllocationAdulteHandicapeData,
    cnaf_pb2.AllocationSoutienFamilialData,
)


class CnafBackend(Protocol):
    """A source of CNAF and MSA data. Raises `runtime.errors.ApiError` for every failure."""

    async def quotient_familial(
        self, identity: identity_pb2.IdentityPivot, year: int, month: int, caller: Caller
    ) -> cnaf_pb2.QuotientFamilialData:
        """The quotient familial of the person's household for one month."""

    async def benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> BenefitData:
        """Whether the person receives a benefit, as the data message of its API."""

    async def indicator(
        self,
        indicator: Indicator,
        data_type: type[IndicatorData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> IndicatorData:
        """Whether the person receives the benefit (AEEH, ARS), or has it paid for them, and since when."""

    async def participation_familiale_eaje(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnaf_pb2.ParticipationFamilialeEajeData:
        """The household of the person as the caisse holds it, eligible or not (`services.cnaf.eaje`)."""

    async def close(self) -> None:
        """Release the backend's connections."""
