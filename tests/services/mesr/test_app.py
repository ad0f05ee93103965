"""Assembly of the mesr service from its settings."""

from __future__ import annotations

import pytest

from services.common.settings import BackendKind
from services.mesr.app import build_backend
from services.mesr.sandbox import SandboxMesrBackend
from services.mesr.settings import MesrSettings


def test_sandbox_is_the_default_backend_on_the_service_port() -> None:
    """Without settings the service serves its sandbox on its own port."""
    assert MesrSettings.model_fields["grpc_port"].default == 50064
    assert isinstance(build_backend(MesrSettings(grpc_port=0)), SandboxMesrBackend)


def test_upstream_backend_is_refused_until_it_exists() -> None:
    """Asking for the upstream backend stops the process rather than serving the sandbox."""
    settings = MesrSettings(backend=BackendKind.UPSTREAM, upstream_base_url="https://provider.example")
    with pytest.raises(ValueError, match="BACKEND=upstream"):
        build_backend(settings)
