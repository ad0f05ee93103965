"""Assembly of the cnous service from its settings."""

from __future__ import annotations

import pytest

from services.cnous.app import build_backend
from services.cnous.sandbox import SandboxCnousBackend
from services.cnous.settings import CnousSettings
from services.common.settings import BackendKind


def test_sandbox_is_the_default_backend_on_the_service_port() -> None:
    """Without settings the service serves its sandbox on its own port."""
    assert CnousSettings.model_fields["grpc_port"].default == 50065
    assert isinstance(build_backend(CnousSettings(grpc_port=0)), SandboxCnousBackend)


def test_upstream_backend_is_refused_until_it_exists() -> None:
    """Asking for the upstream backend stops the process rather than serving the sandbox."""
    settings = CnousSettings(backend=BackendKind.UPSTREAM, upstream_base_url="https://provider.example")
    with pytest.raises(ValueError, match="BACKEND=upstream"):
        build_backend(settings)
