"""The men gRPC servicer: validate the search, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.men.v1 import men_pb2, men_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.men.backend import MenBackend, v4_of
from services.men.validation import scolarite_query


class MenServicer(men_pb2_grpc.MenServiceServicer):
    """Serves every method of apiparticulier.men.v1.MenService."""

    def __init__(self, backend: MenBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def GetScolariteV5ByIdentity(
        self, request: men_pb2.GetScolariteV5ByIdentityRequest, context: ServicerContext
    ) -> men_pb2.GetScolariteV5ByIdentityResponse:
        """Schooling of a pupil in a school year, in one establishment or one perimeter, with the regime."""
        # v5 asks exactly what v4 asks: the same fields under the same numbers.
        v4_request = men_pb2.GetScolariteByIdentityRequest.FromString(request.SerializeToString())
        query = scolarite_query(v4_request, self._today())
        data = await self._backend.scolarite(query, caller_of(context))
        return men_pb2.GetScolariteV5ByIdentityResponse(data=data)

    async def GetScolariteByIdentity(
        self, request: men_pb2.GetScolariteByIdentityRequest, context: ServicerContext
    ) -> men_pb2.GetScolariteByIdentityResponse:
        """The same in the v4 shape (v3 and v4 routes)."""
        query = scolarite_query(request, self._today())
        data = await self._backend.scolarite(query, caller_of(context))
        return men_pb2.GetScolariteByIdentityResponse(data=v4_of(data))
