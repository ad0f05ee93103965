"""The dsnj gRPC servicer: validate the subject and its age, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.dsnj.v1 import dsnj_pb2, dsnj_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.common.validation import (
    DSNJ_IDENTITY,
    FRANCE_CONNECT_PREFIX,
    checked_france_connect_identity,
    checked_identity,
)
from services.dsnj.backend import DsnjBackend
from services.dsnj.validation import checked_age


class DsnjServicer(dsnj_pb2_grpc.DsnjServiceServicer):
    """Serves every method of apiparticulier.dsnj.v1.DsnjService."""

    def __init__(self, backend: DsnjBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date and age checks."""
        self._backend = backend
        self._today = today

    async def GetServiceNationalByIdentity(
        self, request: dsnj_pb2.GetServiceNationalByIdentityRequest, context: ServicerContext
    ) -> dsnj_pb2.GetServiceNationalByIdentityResponse:
        """Service national status by identity pivot."""
        today = self._today()
        identity = checked_age(checked_identity(request.identite, DSNJ_IDENTITY, today), today, "identite")
        data = await self._backend.service_national(identity, caller_of(context))
        return dsnj_pb2.GetServiceNationalByIdentityResponse(data=data)

    async def GetServiceNationalByFranceConnect(
        self, request: dsnj_pb2.GetServiceNationalByFranceConnectRequest, context: ServicerContext
    ) -> dsnj_pb2.GetServiceNationalByFranceConnectResponse:
        """Service national status of a FranceConnect user resolved by the gateway."""
        today = self._today()
        # FranceConnect certifies every first name; the DSNJ is asked with the first one.
        resolved = checked_france_connect_identity(
            request.france_connect, DSNJ_IDENTITY, today, drop_extra_first_names=True
        )
        identity = checked_age(resolved, today, FRANCE_CONNECT_PREFIX)
        data = await self._backend.service_national(identity, caller_of(context))
        return dsnj_pb2.GetServiceNationalByFranceConnectResponse(data=data)
