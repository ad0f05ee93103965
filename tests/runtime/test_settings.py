"""Settings are read from the environment, documented, and refuse inconsistent TLS files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from runtime.settings import ServerSettings
from services.cnaf.settings import CnafSettings


def test_environment_sets_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each field comes from the variable of its name in upper case."""
    monkeypatch.setenv("GRPC_PORT", "6000")
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "3.5")
    settings = CnafSettings()
    assert (settings.grpc_port, settings.shutdown_grace_seconds) == (6000, 3.5)


def test_every_field_is_documented() -> None:
    """Every field of every settings class has a description naming its environment variable."""
    for cls in (ServerSettings, CnafSettings, GatewaySettings):
        for name, field in cls.model_fields.items():
            assert field.description and f"({name.upper()})" in field.description, name


@pytest.mark.parametrize(
    "files",
    [
        {"tls_cert_file": Path("cert.pem")},
        {"tls_key_file": Path("key.pem")},
        {"tls_client_ca_file": Path("ca.pem")},
    ],
)
def test_tls_files_must_be_consistent(files: dict[str, Path]) -> None:
    """A certificate without its key, or a client CA without a server certificate, is refused."""
    with pytest.raises(ValidationError):
        ServerSettings(**files)  # type: ignore[arg-type]
