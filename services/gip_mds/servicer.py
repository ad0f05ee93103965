"""The gip_mds gRPC servicer: validate the subject, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.gip_mds.v1 import gip_mds_pb2, gip_mds_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.common.validation import CIVILITY, Subject, france_connect_subject
from services.gip_mds.backend import GipMdsBackend


class GipMdsServicer(gip_mds_pb2_grpc.GipMdsServiceServicer):
    """Serves every method of apiparticulier.gip_mds.v1.GipMdsService."""

    def __init__(self, backend: GipMdsBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def GetServiceCiviqueByIdentity(
        self, request: gip_mds_pb2.GetServiceCiviqueByIdentityRequest, context: ServicerContext
    ) -> gip_mds_pb2.GetServiceCiviqueByIdentityResponse:
        """Service civique status by identity pivot."""
        identity = CIVILITY.check(Subject(request.identite, self._today()))
        data = await self._backend.service_civique(identity, caller_of(context))
        return gip_mds_pb2.GetServiceCiviqueByIdentityResponse(data=data)

    async def GetServiceCiviqueByFranceConnect(
        self, request: gip_mds_pb2.GetServiceCiviqueByFranceConnectRequest, context: ServicerContext
    ) -> gip_mds_pb2.GetServiceCiviqueByFranceConnectResponse:
        """Service civique status of a FranceConnect user resolved by the gateway."""
        # FranceConnect certifies every first name; the GIP-MDS is asked with the first one.
        identity = CIVILITY.check(france_connect_subject(request.france_connect, self._today()))
        data = await self._backend.service_civique(identity, caller_of(context))
        return gip_mds_pb2.GetServiceCiviqueByFranceConnectResponse(data=data)
