"""Assembly of the c2s service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from runtime.server import GrpcServer
from services.c2s.backend import C2sBackend
from services.c2s.sandbox import POPULATION_FILE, SandboxC2sBackend
from services.c2s.servicer import C2sServicer
from services.c2s.settings import C2sSettings
from services.c2s.upstream import UpstreamC2sBackend
from services.common.app import provider_server
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind

SERVICE_NAME = c2s_pb2.DESCRIPTOR.services_by_name["C2sService"].full_name


def build_backend(settings: C2sSettings) -> C2sBackend:
    """The backend ``settings.backend`` names."""
    if settings.backend is BackendKind.UPSTREAM:
        return UpstreamC2sBackend.from_settings(settings)
    return SandboxC2sBackend(SandboxPopulation.load(POPULATION_FILE))


def build_server(settings: C2sSettings) -> GrpcServer:
    """The c2s service's server, ready to start; stopping it closes the backend's connections."""
    backend = build_backend(settings)
    return provider_server(
        settings, SERVICE_NAME, c2s_pb2_grpc.add_C2sServiceServicer_to_server, C2sServicer(backend), backend
    )
