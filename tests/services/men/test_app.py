"""Assembly of the men service from its settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.common.settings import BackendKind
from services.men.app import MEN
from services.men.sandbox import SandboxMenBackend
from services.men.settings import MenSettings
from services.men.upstream import UpstreamMenBackend


def test_sandbox_is_the_default_backend_on_the_service_port() -> None:
    """Without settings the service serves its sandbox on its own port."""
    assert MenSettings.model_fields["grpc_port"].default == 50066
    assert isinstance(MEN.backend(MenSettings(grpc_port=0)), SandboxMenBackend)


async def test_upstream_backend_is_chosen_and_needs_its_settings() -> None:
    """BACKEND=upstream builds the HTTP adapter; without its credentials the process stops at start."""
    with pytest.raises(ValueError, match="UPSTREAM_TOKEN_URL"):
        MenSettings(backend=BackendKind.UPSTREAM, upstream_base_url="https://provider.example")
    settings = MenSettings(
        backend=BackendKind.UPSTREAM,
        upstream_base_url="https://provider.example",
        upstream_token_url="https://provider.example/token",
        upstream_client_id="c",
        upstream_client_secret=SecretStr("s"),
    )
    backend = MEN.backend(settings)
    assert isinstance(backend, UpstreamMenBackend)
    await backend.close()
