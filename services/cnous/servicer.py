"""The cnous gRPC servicer: validate subject and campaign, ask the backend, answer in the version's shape."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from google.protobuf.message import Message

from apiparticulier.cnous.v1 import cnous_pb2, cnous_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import ServicerContext, caller_of
from services.cnous.backend import CnousBackend
from services.cnous.campaign import checked_campaign_year
from services.cnous.shapes import carried_over, v3_of
from services.common.validation import CIVILITY, Subject, checked_ine, france_connect_subject


class CnousServicer(cnous_pb2_grpc.CnousServiceServicer):
    """Serves every method of apiparticulier.cnous.v1.CnousService, v5, v4 and v3 alike.

    The campaign is checked after the subject, as the real API checks it
    (VALIDATION §6.2): after the identity, after the INE, alone for FranceConnect.
    """

    def __init__(self, backend: CnousBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def _by_identity(
        self, identite: identity_pb2.IdentityPivot, request: Message, context: ServicerContext
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        identity = CIVILITY.check(Subject(identite, self._today()))
        return await self._backend.by_identity(identity, checked_campaign_year(request), caller_of(context))

    async def _by_ine(
        self, ine: str, request: Message, context: ServicerContext
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        checked = checked_ine(ine)
        return await self._backend.by_ine(checked, checked_campaign_year(request), caller_of(context))

    async def _by_france_connect(
        self, subject: identity_pb2.FranceConnectSubject, request: Message, context: ServicerContext
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        campaign = checked_campaign_year(request)
        identity = CIVILITY.check(france_connect_subject(subject, self._today()))
        return await self._backend.by_france_connect(identity, campaign, caller_of(context))

    async def GetEtudiantBoursierV5ByIdentity(
        self, request: cnous_pb2.GetEtudiantBoursierV5ByIdentityRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierV5ByIdentityResponse:
        """Scholarship status by identity pivot (full birth date; sex optional), with the INE."""
        data = await self._by_identity(request.identite, request, context)
        return cnous_pb2.GetEtudiantBoursierV5ByIdentityResponse(data=data)

    async def GetEtudiantBoursierV5ByIne(
        self, request: cnous_pb2.GetEtudiantBoursierV5ByIneRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierV5ByIneResponse:
        """Scholarship status by INE, v5 shape."""
        data = await self._by_ine(request.ine, request, context)
        return cnous_pb2.GetEtudiantBoursierV5ByIneResponse(data=data)

    async def GetEtudiantBoursierV5ByFranceConnect(
        self, request: cnous_pb2.GetEtudiantBoursierV5ByFranceConnectRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierV5ByFranceConnectResponse:
        """Scholarship status of a FranceConnect user, v5 shape, without identite."""
        data = await self._by_france_connect(request.france_connect, request, context)
        return cnous_pb2.GetEtudiantBoursierV5ByFranceConnectResponse(
            data=carried_over(data, cnous_pb2.EtudiantBoursierV5FranceConnectData)
        )

    async def GetEtudiantBoursierByIdentity(
        self, request: cnous_pb2.GetEtudiantBoursierByIdentityRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierByIdentityResponse:
        """Scholarship status by identity pivot, v4 shape."""
        data = await self._by_identity(request.identite, request, context)
        return cnous_pb2.GetEtudiantBoursierByIdentityResponse(
            data=carried_over(data, cnous_pb2.EtudiantBoursierData)
        )

    async def GetEtudiantBoursierByIne(
        self, request: cnous_pb2.GetEtudiantBoursierByIneRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierByIneResponse:
        """Scholarship status by INE, v4 shape."""
        data = await self._by_ine(request.ine, request, context)
        return cnous_pb2.GetEtudiantBoursierByIneResponse(
            data=carried_over(data, cnous_pb2.EtudiantBoursierData)
        )

    async def GetEtudiantBoursierByFranceConnect(
        self, request: cnous_pb2.GetEtudiantBoursierByFranceConnectRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierByFranceConnectResponse:
        """Scholarship status of a FranceConnect user resolved by the gateway, v4 shape, without identite."""
        data = await self._by_france_connect(request.france_connect, request, context)
        return cnous_pb2.GetEtudiantBoursierByFranceConnectResponse(
            data=carried_over(data, cnous_pb2.EtudiantBoursierFranceConnectData)
        )

    async def GetEtudiantBoursierV3ByIdentity(
        self, request: cnous_pb2.GetEtudiantBoursierV3ByIdentityRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierV3ByIdentityResponse:
        """Scholarship status by identity pivot, in the v3 shape."""
        data = await self._by_identity(request.identite, request, context)
        return cnous_pb2.GetEtudiantBoursierV3ByIdentityResponse(
            data=v3_of(data, cnous_pb2.EtudiantBoursierV3Data)
        )

    async def GetEtudiantBoursierV3ByIne(
        self, request: cnous_pb2.GetEtudiantBoursierV3ByIneRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierV3ByIneResponse:
        """Scholarship status by INE, in the v3 shape."""
        data = await self._by_ine(request.ine, request, context)
        return cnous_pb2.GetEtudiantBoursierV3ByIneResponse(
            data=v3_of(data, cnous_pb2.EtudiantBoursierV3Data)
        )

    async def GetEtudiantBoursierV3ByFranceConnect(
        self, request: cnous_pb2.GetEtudiantBoursierV3ByFranceConnectRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierV3ByFranceConnectResponse:
        """Scholarship status of a FranceConnect user, in the v3 shape, without identite."""
        data = await self._by_france_connect(request.france_connect, request, context)
        return cnous_pb2.GetEtudiantBoursierV3ByFranceConnectResponse(
            data=v3_of(data, cnous_pb2.EtudiantBoursierV3FranceConnectData)
        )
