"""The france_travail gRPC servicer: validate the identifiant, ask the backend, wrap the answer."""

from __future__ import annotations

from apiparticulier.france_travail.v1 import france_travail_pb2, france_travail_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.france_travail.backend import FranceTravailBackend
from services.france_travail.validation import checked_identifiant


class FranceTravailServicer(france_travail_pb2_grpc.FranceTravailServiceServicer):
    """Serves every method of apiparticulier.france_travail.v1.FranceTravailService."""

    def __init__(self, backend: FranceTravailBackend) -> None:
        """Serve from a backend."""
        self._backend = backend

    async def GetStatutByIdentifiant(
        self, request: france_travail_pb2.GetStatutByIdentifiantRequest, context: ServicerContext
    ) -> france_travail_pb2.GetStatutByIdentifiantResponse:
        """Job-seeker status by France Travail username."""
        identifiant = checked_identifiant(request.identifiant)
        data = await self._backend.statut(identifiant, caller_of(context))
        return france_travail_pb2.GetStatutByIdentifiantResponse(data=data)

    async def GetIndemnitesByIdentifiant(
        self, request: france_travail_pb2.GetIndemnitesByIdentifiantRequest, context: ServicerContext
    ) -> france_travail_pb2.GetIndemnitesByIdentifiantResponse:
        """Payments by France Travail username."""
        identifiant = checked_identifiant(request.identifiant)
        data = await self._backend.indemnites(identifiant, caller_of(context))
        return france_travail_pb2.GetIndemnitesByIdentifiantResponse(data=data)
