"""The mesr gRPC servicer: validate the subject, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.mesr.v1 import mesr_pb2, mesr_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.common.validation import MESRI, Subject, checked_ine, france_connect_subject
from services.mesr.backend import MesrBackend


class MesrServicer(mesr_pb2_grpc.MesrServiceServicer):
    """Serves every method of apiparticulier.mesr.v1.MesrService."""

    def __init__(self, backend: MesrBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def GetStatutEtudiantByIdentity(
        self, request: mesr_pb2.GetStatutEtudiantByIdentityRequest, context: ServicerContext
    ) -> mesr_pb2.GetStatutEtudiantByIdentityResponse:
        """Student status by identity pivot (first names, full birth date, sex)."""
        identity = MESRI.check(Subject(request.identite, self._today()))
        data = await self._backend.by_identity(identity, caller_of(context))
        return mesr_pb2.GetStatutEtudiantByIdentityResponse(data=data)

    async def GetStatutEtudiantByIne(
        self, request: mesr_pb2.GetStatutEtudiantByIneRequest, context: ServicerContext
    ) -> mesr_pb2.GetStatutEtudiantByIneResponse:
        """Student status by INE."""
        ine = checked_ine(request.ine)
        data = await self._backend.by_ine(ine, caller_of(context))
        return mesr_pb2.GetStatutEtudiantByIneResponse(data=data)

    async def GetStatutEtudiantByFranceConnect(
        self, request: mesr_pb2.GetStatutEtudiantByFranceConnectRequest, context: ServicerContext
    ) -> mesr_pb2.GetStatutEtudiantByFranceConnectResponse:
        """Student status of a FranceConnect user resolved by the gateway, without identite."""
        identity = MESRI.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._backend.by_france_connect(identity, caller_of(context))
        # The v3 API never returns identite to a FranceConnect caller: the citizen
        # signed in, so the identity is theirs already and must not travel again.
        return mesr_pb2.GetStatutEtudiantByFranceConnectResponse(
            data=mesr_pb2.StatutEtudiantFranceConnectData(admissions=data.admissions)
        )
