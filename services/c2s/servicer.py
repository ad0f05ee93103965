"""The c2s gRPC servicer: validate the subject, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.c2s.backend import C2sBackend
from services.common.validation import CNAV, Subject, france_connect_subject


class C2sServicer(c2s_pb2_grpc.C2sServiceServicer):
    """Serves every method of apiparticulier.c2s.v1.C2sService."""

    def __init__(self, backend: C2sBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def GetComplementaireSanteSolidaireByIdentity(
        self, request: c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest, context: ServicerContext
    ) -> c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse:
        """C2S status by identity pivot."""
        identity = CNAV.check(Subject(request.identite, self._today()))
        data = await self._backend.complementaire_sante_solidaire(identity, caller_of(context))
        return c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse(data=data)

    async def GetComplementaireSanteSolidaireByFranceConnect(
        self, request: c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectRequest, context: ServicerContext
    ) -> c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectResponse:
        """C2S status of a FranceConnect user resolved by the gateway."""
        identity = CNAV.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._backend.complementaire_sante_solidaire(identity, caller_of(context))
        return c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectResponse(data=data)
