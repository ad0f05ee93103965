"""Assembly of the gateway: what stops it from starting, and its start-up from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.app import build_server
from tests.conftest import run_python
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SigningKey


def test_empty_journal_key_refuses_to_build(keys_dir: tuple[Path, SigningKey, SigningKey]) -> None:
    """Without JOURNAL_HMAC_KEY the gateway is not built, and the message names the variable."""
    settings = gateway_settings(keys_dir[0], "redis://127.0.0.1:1/0", journal_hmac_key="")
    with pytest.raises(ValueError, match="JOURNAL_HMAC_KEY"):
        build_server(settings)


def test_no_verification_keys_refuses_to_build() -> None:
    """Without KEYS_DIR or JWKS_FILE the gateway is not built."""
    settings = gateway_settings(None, "redis://127.0.0.1:1/0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="KEYS_DIR"):
        build_server(settings)


def test_python_m_gateway_says_why_it_does_not_start(keys_dir: tuple[Path, SigningKey, SigningKey]) -> None:
    """``python -m gateway`` with an empty journal key exits non-zero with a one-line reason, no traceback."""
    env = {**os.environ, "KEYS_DIR": str(keys_dir[0]), "JOURNAL_HMAC_KEY": "", "GRPC_PORT": "0"}
    done = run_python("-m", "gateway", env=env)
    assert done.returncode != 0
    assert "JOURNAL_HMAC_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_journal_database_without_its_signing_key_refuses_to_build(
    keys_dir: tuple[Path, SigningKey, SigningKey],
) -> None:
    """JOURNAL_DATABASE_URL needs JOURNAL_SIGNING_KEY_FILE, an Ed25519 key; each refusal says why."""
    url = "postgresql://journal@127.0.0.1:1/journal"
    with pytest.raises(ValueError, match="JOURNAL_SIGNING_KEY_FILE"):
        build_server(gateway_settings(keys_dir[0], "redis://127.0.0.1:1/0", journal_database_url=url))
    not_ed25519 = keys_dir[0] / "es-test.private.pem"
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        build_server(
            gateway_settings(
                keys_dir[0],
                "redis://127.0.0.1:1/0",
                journal_database_url=url,
                journal_signing_key_file=not_ed25519,
            )
        )
