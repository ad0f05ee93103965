"""The ants gRPC servicer: validate the registration number and the user, ask the backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.ants.v1 import ants_pb2, ants_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.ants.backend import AntsBackend
from services.ants.validation import EXTRAIT
from services.common.validation import france_connect_subject


class AntsServicer(ants_pb2_grpc.AntsServiceServicer):
    """Serves every method of apiparticulier.ants.v1.AntsService."""

    def __init__(self, backend: AntsBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def GetExtraitImmatriculationVehiculeByFranceConnect(
        self,
        request: ants_pb2.GetExtraitImmatriculationVehiculeByFranceConnectRequest,
        context: ServicerContext,
    ) -> ants_pb2.GetExtraitImmatriculationVehiculeByFranceConnectResponse:
        """Registration extract of a FranceConnect user's vehicle."""
        identity = EXTRAIT.check(france_connect_subject(request.france_connect, self._today(), request))
        immatriculation = request.immatriculation.strip().upper()
        return await self._backend.extrait(immatriculation, identity, caller_of(context))
