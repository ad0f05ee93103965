"""Settings of the admin API process (``python -m gateway.admin_api``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from gateway.settings import GatewaySettings
from runtime.settings import ServerSettings

_GATEWAY = GatewaySettings.model_fields


class AdminSettings(ServerSettings):
    """The admin API's settings; see `ServerSettings` for the common ones (its gRPC port is ``GRPC_PORT``)."""

    grpc_port: int = Field(
        default=50090,
        ge=0,
        le=65535,
        description="gRPC port of the admin API: a port of its own, never one of the gateway's (GRPC_PORT).",
    )
    admin_rest_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the admin API's REST front for the console; unset: none (ADMIN_REST_PORT).",
    )
    admin_rest_host: str = Field(
        default="127.0.0.1",
        description="Address the admin REST front binds: loopback unless an operator network is meant "
        "(ADMIN_REST_HOST).",
    )
    registry_database_url: SecretStr = Field(
        default=SecretStr(""),
        description="postgresql:// URL of the registry's database; required (REGISTRY_DATABASE_URL).",
    )
    admin_operators_file: Path | None = Field(
        default=None,
        description="JSON file of the operators: name, role (viewer, admin, or console: the web console, "
        "acting for a holder) and the SHA-256 of their secret; required (ADMIN_OPERATORS_FILE).",
    )
    keys_dir: Path | None = Field(
        default=None,
        description="Directory of the token signing keys, <kid>.private.pem (KEYS_DIR).",
    )
    token_signing_kid: str = Field(
        default="", description="The kid of the key that signs new tokens; required (TOKEN_SIGNING_KID)."
    )
    token_issuer: str = Field(
        default=str(_GATEWAY["token_issuer"].default), description="`iss` (TOKEN_ISSUER)."
    )
    token_audience: str = Field(
        default=str(_GATEWAY["token_audience"].default), description="`aud` (TOKEN_AUDIENCE)."
    )
    redis_url: str = Field(
        default=str(_GATEWAY["redis_url"].default),
        description="The gateways' Redis: a revocation is written there too, so that it holds from the "
        "next call on every gateway (REDIS_URL).",
    )
    registry_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest a registry read or write may take (REGISTRY_TIMEOUT_SECONDS)."
    )
    smtp_host: str = Field(
        default="",
        description="SMTP server of the expiry notices (gateway/registry/notices.py); empty: none "
        "(SMTP_HOST).",
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Its port (SMTP_PORT).")
    smtp_starttls: bool = Field(default=False, description="Upgrade to TLS with STARTTLS (SMTP_STARTTLS).")
    notice_from: str = Field(
        default="api-particulier@localhost", description="Sender of the expiry notices (NOTICE_FROM)."
    )
    notice_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the notices due are sent (NOTICE_INTERVAL_SECONDS)."
    )
