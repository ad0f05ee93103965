"""The cnaf gRPC servicer: validate the subject, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import ServicerContext, caller_of
from services.cnaf.backend import Benefit, BenefitData, CnafBackend, Indicator
from services.cnaf.eaje import checked_eligible
from services.common.validation import (
    CNAV,
    QUOTIENT_FAMILIAL,
    Subject,
    france_connect_subject,
    reference_month,
)


class CnafServicer(cnaf_pb2_grpc.CnafServiceServicer):
    """Serves every method of apiparticulier.cnaf.v1.CnafService."""

    def __init__(self, backend: CnafBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def _quotient_familial(
        self, identity: identity_pb2.IdentityPivot, request: Any, context: ServicerContext
    ) -> cnaf_pb2.QuotientFamilialData:
        year, month = reference_month(request, self._today())
        return await self._backend.quotient_familial(identity, year, month, caller_of(context))

    async def _benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        context: ServicerContext,
    ) -> BenefitData:
        return await self._backend.benefit(benefit, data_type, identity, caller_of(context))

    async def GetQuotientFamilialByIdentity(
        self, request: cnaf_pb2.GetQuotientFamilialByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetQuotientFamilialByIdentityResponse:
        """Quotient familial by identity pivot."""
        identity = QUOTIENT_FAMILIAL.check(Subject(request.identite, self._today(), request=request))
        data = await self._quotient_familial(identity, request, context)
        return cnaf_pb2.GetQuotientFamilialByIdentityResponse(data=data)

    async def GetQuotientFamilialByFranceConnect(
        self, request: cnaf_pb2.GetQuotientFamilialByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetQuotientFamilialByFranceConnectResponse:
        """Quotient familial of a FranceConnect user resolved by the gateway."""
        identity = QUOTIENT_FAMILIAL.check(
            france_connect_subject(request.france_connect, self._today(), request)
        )
        data = await self._quotient_familial(identity, request, context)
        return cnaf_pb2.GetQuotientFamilialByFranceConnectResponse(data=data)

    async def GetRevenuSolidariteActiveByIdentity(
        self, request: cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse:
        """RSA status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._benefit(
            Benefit.REVENU_SOLIDARITE_ACTIVE, cnaf_pb2.RevenuSolidariteActiveData, identity, context
        )
        return cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse(data=data)

    async def GetRevenuSolidariteActiveByFranceConnect(
        self, request: cnaf_pb2.GetRevenuSolidariteActiveByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetRevenuSolidariteActiveByFranceConnectResponse:
        """RSA status of a FranceConnect user."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._benefit(
            Benefit.REVENU_SOLIDARITE_ACTIVE, cnaf_pb2.RevenuSolidariteActiveData, identity, context
        )
        return cnaf_pb2.GetRevenuSolidariteActiveByFranceConnectResponse(data=data)

    async def GetPrimeActiviteByIdentity(
        self, request: cnaf_pb2.GetPrimeActiviteByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetPrimeActiviteByIdentityResponse:
        """Prime d'activité status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._benefit(Benefit.PRIME_ACTIVITE, cnaf_pb2.PrimeActiviteData, identity, context)
        return cnaf_pb2.GetPrimeActiviteByIdentityResponse(data=data)

    async def GetPrimeActiviteByFranceConnect(
        self, request: cnaf_pb2.GetPrimeActiviteByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetPrimeActiviteByFranceConnectResponse:
        """Prime d'activité status of a FranceConnect user."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._benefit(Benefit.PRIME_ACTIVITE, cnaf_pb2.PrimeActiviteData, identity, context)
        return cnaf_pb2.GetPrimeActiviteByFranceConnectResponse(data=data)

    async def GetAllocationAdulteHandicapeByIdentity(
        self, request: cnaf_pb2.GetAllocationAdulteHandicapeByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationAdulteHandicapeByIdentityResponse:
        """AAH status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._benefit(
            Benefit.ALLOCATION_ADULTE_HANDICAPE, cnaf_pb2.AllocationAdulteHandicapeData, identity, context
        )
        return cnaf_pb2.GetAllocationAdulteHandicapeByIdentityResponse(data=data)

    async def GetAllocationAdulteHandicapeByFranceConnect(
        self, request: cnaf_pb2.GetAllocationAdulteHandicapeByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationAdulteHandicapeByFranceConnectResponse:
        """AAH status of a FranceConnect user."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._benefit(
            Benefit.ALLOCATION_ADULTE_HANDICAPE, cnaf_pb2.AllocationAdulteHandicapeData, identity, context
        )
        return cnaf_pb2.GetAllocationAdulteHandicapeByFranceConnectResponse(data=data)

    async def GetAllocationSoutienFamilialByIdentity(
        self, request: cnaf_pb2.GetAllocationSoutienFamilialByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationSoutienFamilialByIdentityResponse:
        """ASF status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._benefit(
            Benefit.ALLOCATION_SOUTIEN_FAMILIAL, cnaf_pb2.AllocationSoutienFamilialData, identity, context
        )
        return cnaf_pb2.GetAllocationSoutienFamilialByIdentityResponse(data=data)

    async def GetAllocationSoutienFamilialByFranceConnect(
        self, request: cnaf_pb2.GetAllocationSoutienFamilialByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationSoutienFamilialByFranceConnectResponse:
        """ASF status of a FranceConnect user."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._benefit(
            Benefit.ALLOCATION_SOUTIEN_FAMILIAL, cnaf_pb2.AllocationSoutienFamilialData, identity, context
        )
        return cnaf_pb2.GetAllocationSoutienFamilialByFranceConnectResponse(data=data)

    async def GetAllocationEnfantHandicapeByIdentity(
        self, request: cnaf_pb2.GetAllocationEnfantHandicapeByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationEnfantHandicapeByIdentityResponse:
        """AEEH status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._backend.indicator(
            Indicator.ALLOCATION_ENFANT_HANDICAPE,
            cnaf_pb2.AllocationEnfantHandicapeData,
            identity,
            caller_of(context),
        )
        return cnaf_pb2.GetAllocationEnfantHandicapeByIdentityResponse(data=data)

    async def GetAllocationEnfantHandicapeByFranceConnect(
        self, request: cnaf_pb2.GetAllocationEnfantHandicapeByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationEnfantHandicapeByFranceConnectResponse:
        """AEEH status of a FranceConnect user."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._backend.indicator(
            Indicator.ALLOCATION_ENFANT_HANDICAPE,
            cnaf_pb2.AllocationEnfantHandicapeData,
            identity,
            caller_of(context),
        )
        return cnaf_pb2.GetAllocationEnfantHandicapeByFranceConnectResponse(data=data)

    async def GetAllocationRentreeScolaireByIdentity(
        self, request: cnaf_pb2.GetAllocationRentreeScolaireByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationRentreeScolaireByIdentityResponse:
        """ARS status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._backend.indicator(
            Indicator.ALLOCATION_RENTREE_SCOLAIRE,
            cnaf_pb2.AllocationRentreeScolaireData,
            identity,
            caller_of(context),
        )
        return cnaf_pb2.GetAllocationRentreeScolaireByIdentityResponse(data=data)

    async def GetAllocationRentreeScolaireByFranceConnect(
        self, request: cnaf_pb2.GetAllocationRentreeScolaireByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetAllocationRentreeScolaireByFranceConnectResponse:
        """ARS status of a FranceConnect user."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._backend.indicator(
            Indicator.ALLOCATION_RENTREE_SCOLAIRE,
            cnaf_pb2.AllocationRentreeScolaireData,
            identity,
            caller_of(context),
        )
        return cnaf_pb2.GetAllocationRentreeScolaireByFranceConnectResponse(data=data)

    async def _participation_familiale_eaje(
        self, identity: identity_pb2.IdentityPivot, context: ServicerContext
    ) -> cnaf_pb2.ParticipationFamilialeEajeData:
        data = await self._backend.participation_familiale_eaje(identity, caller_of(context))
        return checked_eligible(data, self._today())

    async def GetParticipationFamilialeEajeByIdentity(
        self, request: cnaf_pb2.GetParticipationFamilialeEajeByIdentityRequest, context: ServicerContext
    ) -> cnaf_pb2.GetParticipationFamilialeEajeByIdentityResponse:
        """EAJE participation familiale data by identity pivot; NOT_FOUND 37003 without a child under 7."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._participation_familiale_eaje(identity, context)
        return cnaf_pb2.GetParticipationFamilialeEajeByIdentityResponse(data=data)

    async def GetParticipationFamilialeEajeByFranceConnect(
        self, request: cnaf_pb2.GetParticipationFamilialeEajeByFranceConnectRequest, context: ServicerContext
    ) -> cnaf_pb2.GetParticipationFamilialeEajeByFranceConnectResponse:
        """EAJE data of a FranceConnect user's household; NOT_FOUND 37003 without a child under 7."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._participation_familiale_eaje(identity, context)
        return cnaf_pb2.GetParticipationFamilialeEajeByFranceConnectResponse(data=data)
