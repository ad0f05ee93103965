"""The cnous gRPC servicer: validate the subject, ask the backend, wrap the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apiparticulier.cnous.v1 import cnous_pb2, cnous_pb2_grpc
from runtime.caller import ServicerContext, caller_of
from services.cnous.backend import CnousBackend
from services.common.validation import (
    CNOUS_IDENTITY,
    checked_france_connect_identity,
    checked_identity,
    checked_ine,
)


class CnousServicer(cnous_pb2_grpc.CnousServiceServicer):
    """Serves every method of apiparticulier.cnous.v1.CnousService."""

    def __init__(self, backend: CnousBackend, today: Callable[[], dt.date] = dt.date.today) -> None:
        """Serve from a backend; ``today`` is the clock of date checks."""
        self._backend = backend
        self._today = today

    async def GetEtudiantBoursierByIdentity(
        self, request: cnous_pb2.GetEtudiantBoursierByIdentityRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierByIdentityResponse:
        """Scholarship status by identity pivot (full birth date; sex optional)."""
        identity = checked_identity(request.identite, CNOUS_IDENTITY, self._today())
        data = await self._backend.by_identity(identity, caller_of(context))
        return cnous_pb2.GetEtudiantBoursierByIdentityResponse(data=data)

    async def GetEtudiantBoursierByIne(
        self, request: cnous_pb2.GetEtudiantBoursierByIneRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierByIneResponse:
        """Scholarship status by INE."""
        ine = checked_ine(request.ine)
        data = await self._backend.by_ine(ine, caller_of(context))
        return cnous_pb2.GetEtudiantBoursierByIneResponse(data=data)

    async def GetEtudiantBoursierByFranceConnect(
        self, request: cnous_pb2.GetEtudiantBoursierByFranceConnectRequest, context: ServicerContext
    ) -> cnous_pb2.GetEtudiantBoursierByFranceConnectResponse:
        """Scholarship status of a FranceConnect user resolved by the gateway, without identite."""
        identity = checked_france_connect_identity(
            request.france_connect, CNOUS_IDENTITY, self._today(), drop_extra_first_names=True
        )
        data = await self._backend.by_france_connect(identity, caller_of(context))
        # The API never returns identite to a FranceConnect caller: the citizen
        # signed in, so the identity is theirs already and must not travel again.
        # The FranceConnect message keeps every other field under its number, so
        # once identite is cleared the full answer's bytes are its bytes.
        data.ClearField("identite")
        return cnous_pb2.GetEtudiantBoursierByFranceConnectResponse(
            data=cnous_pb2.EtudiantBoursierFranceConnectData.FromString(data.SerializeToString())
        )
