"""Assembly of the men service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.men.v1 import men_pb2, men_pb2_grpc
from runtime.server import GrpcServer
from services.common.app import provider_server
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind
from services.men.backend import MenBackend
from services.men.sandbox import POPULATION_FILE, SandboxMenBackend
from services.men.servicer import MenServicer
from services.men.settings import MenSettings
from services.men.upstream import UpstreamMenBackend

SERVICE_NAME = men_pb2.DESCRIPTOR.services_by_name["MenService"].full_name


def build_backend(settings: MenSettings) -> MenBackend:
    """The backend ``settings.backend`` names."""
    if settings.backend is BackendKind.UPSTREAM:
        return UpstreamMenBackend.from_settings(settings)
    return SandboxMenBackend(SandboxPopulation.load(POPULATION_FILE))


def build_server(settings: MenSettings) -> GrpcServer:
    """The men service's server, ready to start; stopping it closes the backend's connections."""
    backend = build_backend(settings)
    return provider_server(
        settings, SERVICE_NAME, men_pb2_grpc.add_MenServiceServicer_to_server, MenServicer(backend), backend
    )
