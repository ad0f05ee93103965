"""Assembly of the mesr service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.mesr.v1 import mesr_pb2, mesr_pb2_grpc
from runtime.server import GrpcServer
from services.common.app import provider_server
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind
from services.mesr.backend import MesrBackend
from services.mesr.sandbox import POPULATION_FILE, SandboxMesrBackend
from services.mesr.servicer import MesrServicer
from services.mesr.settings import MesrSettings
from services.mesr.upstream import UpstreamMesrBackend

SERVICE_NAME = mesr_pb2.DESCRIPTOR.services_by_name["MesrService"].full_name


def build_backend(settings: MesrSettings) -> MesrBackend:
    """The backend ``settings.backend`` names."""
    if settings.backend is BackendKind.UPSTREAM:
        return UpstreamMesrBackend.from_settings(settings)
    return SandboxMesrBackend(SandboxPopulation.load(POPULATION_FILE))


def build_server(settings: MesrSettings) -> GrpcServer:
    """The mesr service's server, ready to start; stopping it closes the backend's connections."""
    backend = build_backend(settings)
    return provider_server(
        settings,
        SERVICE_NAME,
        mesr_pb2_grpc.add_MesrServiceServicer_to_server,
        MesrServicer(backend),
        backend,
    )
