"""Assembly of the cnous service from its settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.cnous.app import CNOUS
from services.cnous.sandbox import SandboxCnousBackend
from services.cnous.settings import CnousSettings
from services.cnous.upstream import UpstreamCnousBackend
from services.common.settings import BackendKind


def test_sandbox_is_the_default_backend_on_the_service_port() -> None:
    """Without settings the service serves its sandbox on its own port."""
    assert CnousSettings.model_fields["grpc_port"].default == 50065
    assert isinstance(CNOUS.backend(CnousSettings(grpc_port=0)), SandboxCnousBackend)


async def test_upstream_backend_is_chosen_and_needs_its_settings() -> None:
    """BACKEND=upstream builds the HTTP adapter; without its credentials the process stops at start."""
    with pytest.raises(ValueError, match="UPSTREAM_TOKEN_URL"):
        CnousSettings(backend=BackendKind.UPSTREAM, upstream_base_url="https://provider.example")
    settings = CnousSettings(
        backend=BackendKind.UPSTREAM,
        upstream_base_url="https://provider.example",
        upstream_token_url="https://provider.example/token",
        upstream_client_id="c",
        upstream_client_secret=SecretStr("s"),
    )
    backend = CNOUS.backend(settings)
    assert isinstance(backend, UpstreamCnousBackend)
    await backend.close()
