"""Assembly of the cnous service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.cnous.v1 import cnous_pb2, cnous_pb2_grpc
from runtime.server import GrpcServer
from services.cnous.backend import CnousBackend
from services.cnous.sandbox import POPULATION_FILE, SandboxCnousBackend
from services.cnous.servicer import CnousServicer
from services.cnous.settings import CnousSettings
from services.cnous.upstream import UpstreamCnousBackend
from services.common.app import provider_server
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind

SERVICE_NAME = cnous_pb2.DESCRIPTOR.services_by_name["CnousService"].full_name


def build_backend(settings: CnousSettings) -> CnousBackend:
    """The backend ``settings.backend`` names."""
    if settings.backend is BackendKind.UPSTREAM:
        return UpstreamCnousBackend.from_settings(settings)
    return SandboxCnousBackend(SandboxPopulation.load(POPULATION_FILE))


def build_server(settings: CnousSettings) -> GrpcServer:
    """The cnous service's server, ready to start; stopping it closes the backend's connections."""
    backend = build_backend(settings)
    return provider_server(
        settings,
        SERVICE_NAME,
        cnous_pb2_grpc.add_CnousServiceServicer_to_server,
        CnousServicer(backend),
        backend,
    )
