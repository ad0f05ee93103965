"""The dsnj gRPC servicer: validate the subject and its age, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.dsnj.v1 import dsnj_pb2, dsnj_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.common.validation import Subject, france_connect_subject
from services.dsnj.backend import DsnjBackend
from services.dsnj.validation import SERVICE_NATIONAL


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
        identity = SERVICE_NATIONAL.check(Subject(request.identite, self._today()))
        data = await self._backend.service_national(identity, caller_of(context))
        return dsnj_pb2.GetServiceNationalByIdentityResponse(data=data)

    async def GetServiceNationalByFranceConnect(
        self, request: dsnj_pb2.GetServiceNationalByFranceConnectRequest, context: ServicerContext
    ) -> dsnj_pb2.GetServiceNationalByFranceConnectResponse:
        """Service national status of a FranceConnect user resolved by the gateway."""
        # FranceConnect certifies every first name; the DSNJ is asked with the first one.
        identity = SERVICE_NATIONAL.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._backend.service_national(identity, caller_of(context))
        return dsnj_pb2.GetServiceNationalByFranceConnectResponse(data=data)
