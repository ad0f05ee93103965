"""The sdh gRPC servicer: validate the identifiant, ask the backend, wrap the answer."""

from __future__ import annotations

from apiparticulier.sdh.v1 import sdh_pb2, sdh_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.sdh.backend import SdhBackend
from services.sdh.validation import checked_identifiant


class SdhServicer(sdh_pb2_grpc.SdhServiceServicer):
    """Serves every method of apiparticulier.sdh.v1.SdhService."""

    def __init__(self, backend: SdhBackend) -> None:
        """Serve from a backend."""
        self._backend = backend

    async def GetStatutSportifByIdentifiant(
        self, request: sdh_pb2.GetStatutSportifByIdentifiantRequest, context: ServicerContext
    ) -> sdh_pb2.GetStatutSportifByIdentifiantResponse:
        """Sports status by PSQS identifiant."""
        identifiant = checked_identifiant(request.identifiant)
        data = await self._backend.statut_sportif(identifiant, caller_of(context))
        return sdh_pb2.GetStatutSportifByIdentifiantResponse(data=data)
