"""Assembly of the cnaf service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from runtime.server import GrpcServer
from services.cnaf.backend import CnafBackend
from services.cnaf.sandbox import POPULATION_FILE, SandboxCnafBackend
from services.cnaf.servicer import CnafServicer
from services.cnaf.settings import CnafSettings
from services.cnaf.upstream import UpstreamCnafBackend
from services.common.app import provider_server
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind

SERVICE_NAME = cnaf_pb2.DESCRIPTOR.services_by_name["CnafService"].full_name


def build_backend(settings: CnafSettings) -> CnafBackend:
    """The backend ``settings.backend`` names."""
    if settings.backend is BackendKind.UPSTREAM:
        return UpstreamCnafBackend.from_settings(settings)
    return SandboxCnafBackend(SandboxPopulation.load(POPULATION_FILE))


def build_server(settings: CnafSettings) -> GrpcServer:
    """The cnaf service's server, ready to start; stopping it closes the backend's connections."""
    backend = build_backend(settings)
    return provider_server(
        settings,
        SERVICE_NAME,
        cnaf_pb2_grpc.add_CnafServiceServicer_to_server,
        CnafServicer(backend),
        backend,
    )
