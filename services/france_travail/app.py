"""Assembly of the france_travail service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.france_travail.v1 import france_travail_pb2, france_travail_pb2_grpc
from runtime.server import GrpcServer
from services.common.app import provider_server
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind
from services.france_travail.backend import FranceTravailBackend
from services.france_travail.sandbox import POPULATION_FILE, SandboxFranceTravailBackend
from services.france_travail.servicer import FranceTravailServicer
from services.france_travail.settings import FranceTravailSettings
from services.france_travail.upstream import UpstreamFranceTravailBackend

SERVICE_NAME = france_travail_pb2.DESCRIPTOR.services_by_name["FranceTravailService"].full_name


def build_backend(settings: FranceTravailSettings) -> FranceTravailBackend:
    """The backend ``settings.backend`` names."""
    if settings.backend is BackendKind.UPSTREAM:
        return UpstreamFranceTravailBackend.from_settings(settings)
    return SandboxFranceTravailBackend(SandboxPopulation.load(POPULATION_FILE))


def build_server(settings: FranceTravailSettings) -> GrpcServer:
    """The france_travail service's server, ready to start; stopping it closes the backend's connections."""
    backend = build_backend(settings)
    return provider_server(
        settings,
        SERVICE_NAME,
        france_travail_pb2_grpc.add_FranceTravailServiceServicer_to_server,
        FranceTravailServicer(backend),
        backend,
    )
