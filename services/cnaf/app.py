"""Assembly of the cnaf service: backend, servicer and server from settings."""

from __future__ import annotations

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from runtime.server import GrpcServer, ServiceDefinition
from services.cnaf.sandbox import POPULATION_FILE, SandboxCnafBackend
from services.cnaf.servicer import CnafServicer
from services.cnaf.settings import CnafSettings
from services.common.sandbox import SandboxPopulation

SERVICE_NAME = cnaf_pb2.DESCRIPTOR.services_by_name["CnafService"].full_name


def build_server(settings: CnafSettings) -> GrpcServer:
    """The cnaf service's server, ready to start."""
    backend = SandboxCnafBackend(SandboxPopulation.load(POPULATION_FILE))
    servicer = CnafServicer(backend)
    return GrpcServer(
        settings,
        [
            ServiceDefinition(
                SERVICE_NAME, lambda server: cnaf_pb2_grpc.add_CnafServiceServicer_to_server(servicer, server)
            )
        ],
        on_shutdown=[backend.close],
    )
