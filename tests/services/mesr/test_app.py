"""Assembly of the mesr service from its settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.common.settings import BackendKind
from services.mesr.app import MESR
from services.mesr.sandbox import SandboxMesrBackend
from services.mesr.settings import MesrSettings
from services.mesr.upstream import UpstreamMesrBackend


def test_sandbox_is_the_default_backend_on_the_service_port() -> None:
    """Without settings the service serves its sandbox on its own port."""
    assert MesrSettings.model_fields["grpc_port"].default == 50064
    assert isinstance(MESR.backend(MesrSettings(grpc_port=0)), SandboxMesrBackend)


async def test_upstream_backend_is_chosen_and_needs_its_settings() -> None:
    """BACKEND=upstream builds the HTTP adapter; without its credentials the process stops at start."""
    with pytest.raises(ValueError, match="UPSTREAM_INE_API_KEY"):
        MesrSettings(backend=BackendKind.UPSTREAM, upstream_base_url="https://provider.example")
    settings = MesrSettings(
        backend=BackendKind.UPSTREAM,
        upstream_base_url="https://provider.example",
        upstream_ine_api_key=SecretStr("k1"),
        upstream_identity_api_key=SecretStr("k2"),
    )
    backend = MESR.backend(settings)
    assert isinstance(backend, UpstreamMesrBackend)
    await backend.close()
