"""A provider service's assembly: what it declares, and how every provider is built and run alike.

Each ``services/<name>/app.py`` declares its `ProviderAssembly` once (its entry
in the registry, settings class, servicer and backends by kind), and its
``__main__`` runs it: ``python -m services.<name>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import grpc

from runtime.logs import configure_logging
from runtime.providers import ProviderService
from runtime.server import GrpcServer, ServiceDefinition, run_process
from services.common.settings import BackendKind, ProviderSettings


class Closable(Protocol):
    """A backend: its connections are closed when the server stops."""

    def close(self) -> Awaitable[None]:
        """Release the backend's connections."""


_Settings = TypeVar("_Settings", bound=ProviderSettings)
_Backend = TypeVar("_Backend", bound=Closable)
_Servicer = TypeVar("_Servicer")


# Not slotted: a slotted frozen dataclass refuses the __orig_class__ that ProviderAssembly[...](...) sets.
@dataclass(frozen=True)
class ProviderAssembly(Generic[_Settings, _Backend, _Servicer]):
    """What one provider service is made of; everything else is the same for every provider."""

    provider: ProviderService
    """Its entry in the registry: name, contract, ports."""
    settings: type[_Settings]
    """Its settings, read from the environment when the process starts."""
    servicer: Callable[[_Backend], _Servicer]
    """Its servicer, made from the backend."""
    add_servicer: Callable[[_Servicer, grpc.aio.Server], None]
    """The generated ``add_…Servicer_to_server`` of its contract."""
    backends: Mapping[BackendKind, Callable[[_Settings], _Backend]]
    """For each backend kind (``BACKEND``), how to make that backend from the settings."""

    @property
    def service_name(self) -> str:
        """The full name of the gRPC service its contract declares, for health and reflection."""
        (name,) = self.provider.service_names()
        return name

    def backend(self, settings: _Settings) -> _Backend:
        """The backend ``settings.backend`` names."""
        return self.backends[settings.backend](settings)

    def server(self, settings: _Settings) -> GrpcServer:
        """The service's server, ready to start; stopping it closes the backend's connections."""
        backend = self.backend(settings)
        servicer = self.servicer(backend)
        return GrpcServer(
            settings,
            [ServiceDefinition(self.service_name, lambda server: self.add_servicer(servicer, server))],
            on_shutdown=[backend.close],
        )

    def run(self) -> None:
        """Run the service's process: settings from the environment, then serve until SIGTERM or SIGINT."""

        async def main() -> None:
            settings = self.settings()
            configure_logging(settings.log_level, settings.log_format)
            await self.server(settings).run_until_signalled()

        run_process(main)
