"""Every provider service is assembled alike: sandbox by default, registry port, backend closed on stop."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from runtime.providers import PROVIDERS
from services.ants.app import ANTS
from services.c2s.app import C2S
from services.cnaf.app import CNAF
from services.cnaf.sandbox import SandboxCnafBackend
from services.cnaf.settings import CnafSettings
from services.cnous.app import CNOUS
from services.common.app import ProviderAssembly
from services.common.settings import BackendKind
from services.dsnj.app import DSNJ
from services.france_travail.app import FRANCE_TRAVAIL
from services.gip_mds.app import GIP_MDS
from services.men.app import MEN
from services.mesr.app import MESR
from services.sdh.app import SDH
from tests.conftest import running

ASSEMBLIES: tuple[ProviderAssembly[Any, Any, Any], ...] = (
    CNAF,
    C2S,
    FRANCE_TRAVAIL,
    MESR,
    CNOUS,
    MEN,
    DSNJ,
    GIP_MDS,
    SDH,
    ANTS,
)


def test_every_provider_of_the_registry_is_assembled() -> None:
    """One assembly per registry entry, each with a backend for every kind."""
    assert [assembly.provider for assembly in ASSEMBLIES] == list(PROVIDERS)
    assert all(set(assembly.backends) == set(BackendKind) for assembly in ASSEMBLIES)


@pytest.mark.parametrize("assembly", ASSEMBLIES, ids=lambda assembly: assembly.provider.name)
async def test_sandbox_is_the_default_backend_on_the_registry_port(
    assembly: ProviderAssembly[Any, Any, Any],
) -> None:
    """Without settings a service answers from its sandbox, on the port the registry gives it."""
    settings = assembly.settings()
    assert settings.grpc_port == assembly.provider.grpc_port
    backend = assembly.backend(settings)
    assert type(backend).__module__ == f"{assembly.provider.package}.sandbox"
    await backend.close()


class ClosableSandbox(SandboxCnafBackend):
    """The cnaf sandbox, telling whether it was closed."""

    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_server_serves_the_contract_and_closes_the_backend_on_stop() -> None:
    """Its contract's service is SERVING by full name and its servicer answers; stop closes the backend."""
    backend = ClosableSandbox.from_settings(CnafSettings())
    assembly = replace(CNAF, backends={BackendKind.SANDBOX: lambda _: backend})
    server = assembly.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    async with running(server) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="apiparticulier.cnaf.v1.CnafService")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await cnaf_pb2_grpc.CnafServiceStub(channel).GetPrimeActiviteByIdentity(
                cnaf_pb2.GetPrimeActiviteByIdentityRequest()
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert not backend.closed
    assert backend.closed
