"""The server of a provider service, assembled the same way for every provider."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import grpc

from runtime.server import GrpcServer, ServiceDefinition
from services.common.settings import ProviderSettings

_Servicer = TypeVar("_Servicer")


class Closable(Protocol):
    """A backend: its connections are closed when the server stops."""

    def close(self) -> Awaitable[None]:
        """Release the backend's connections."""


def provider_server(
    settings: ProviderSettings,
    service_name: str,
    add_servicer: Callable[[_Servicer, grpc.aio.Server], None],
    servicer: _Servicer,
    backend: Closable,
) -> GrpcServer:
    """The provider service's server, ready to start; stopping it closes the backend.

    Args:
        settings: The process's settings.
        service_name: Full name of the gRPC service, for health and reflection.
        add_servicer: The generated ``add_…Servicer_to_server`` function.
        servicer: The service's servicer.
        backend: The backend the servicer asks.
    """
    return GrpcServer(
        settings,
        [ServiceDefinition(service_name, lambda server: add_servicer(servicer, server))],
        on_shutdown=[backend.close],
    )
