"""Settings every provider service adds to the runtime's."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from runtime.errors import ErrorSource
from runtime.oauth2 import ClientCredentialsTokenSource, OAuth2Client
from runtime.providers import BY_NAME
from runtime.settings import ServerSettings
from runtime.upstream import UpstreamClient

OAUTH2_UPSTREAM: tuple[str, ...] = (
    "upstream_base_url",
    "upstream_token_url",
    "upstream_client_id",
    "upstream_client_secret",
)
"""The `ProviderSettings.upstream_required` of a provider asked with one OAuth2 client-credentials client."""


def grpc_port_field(provider: str) -> Any:
    """The ``grpc_port`` field of a provider service's settings, its default the registry's port.

    Args:
        provider: The service's name in `runtime.providers.BY_NAME`.
    """
    return Field(default=BY_NAME[provider].grpc_port, ge=0, le=65535, description="gRPC port (GRPC_PORT).")


class BackendKind(StrEnum):
    """Where a provider service gets its answers."""

    SANDBOX = "sandbox"
    """The built-in fictitious population (the default)."""
    UPSTREAM = "upstream"
    """The real provider's HTTP API (see `runtime.upstream`)."""


class ProviderSettings(ServerSettings):
    """Settings of a provider service process.

    The ``upstream_*`` fields matter only with ``BACKEND=upstream``. Each service
    names in `upstream_required` the ones it cannot work without, so that a
    process started on the upstream backend without them stops at once with a
    message naming the missing environment variables, instead of failing on the
    first call.
    """

    # The input may hold client secrets and API keys: a refused setting must not print them.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    upstream_required: ClassVar[tuple[str, ...]] = ("upstream_base_url",)
    """Fields that must be set when the backend is upstream (the service's settings may add to it)."""

    backend: BackendKind = Field(
        default=BackendKind.SANDBOX,
        description="sandbox: the built-in fictitious population; upstream: the real provider API (BACKEND).",
    )
    upstream_base_url: str | None = Field(
        default=None,
        description="Base URL of the provider's API, e.g. https://api.example.gouv.fr/v1 "
        "(UPSTREAM_BASE_URL).",
    )
    upstream_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for one upstream call, further bounded by the caller's deadline "
        "(UPSTREAM_TIMEOUT_SECONDS).",
    )
    upstream_token_url: str | None = Field(
        default=None,
        description="OAuth2 token endpoint of the provider, for client-credentials grants "
        "(UPSTREAM_TOKEN_URL).",
    )
    upstream_client_id: str | None = Field(
        default=None, description="OAuth2 client id at the provider (UPSTREAM_CLIENT_ID)."
    )
    upstream_client_secret: SecretStr | None = Field(
        default=None, description="OAuth2 client secret at the provider (UPSTREAM_CLIENT_SECRET)."
    )
    upstream_scope: str | None = Field(
        default=None,
        description="OAuth2 scopes asked for, space-separated; the service's default if unset "
        "(UPSTREAM_SCOPE).",
    )
    upstream_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle that signs the provider's certificate; the system store if unset "
        "(UPSTREAM_CA_FILE).",
    )
    upstream_max_connections: int = Field(
        default=100,
        ge=1,
        description="Most HTTP connections open to the provider at once (UPSTREAM_MAX_CONNECTIONS).",
    )

    @model_validator(mode="after")
    def _upstream_is_configured(self) -> ProviderSettings:
        if self.backend is BackendKind.UPSTREAM:
            missing = [
                name.upper() for name in self.upstream_required if getattr(self, name) in (None, "", {})
            ]
            if missing:
                raise ValueError(f"BACKEND=upstream needs {', '.join(missing)} to be set")
        return self

    def upstream_oauth2_client(self) -> OAuth2Client:
        """The single OAuth2 client of UPSTREAM_CLIENT_ID and UPSTREAM_CLIENT_SECRET.

        Raises:
            ValueError: either is unset.
        """
        if not self.upstream_client_id or self.upstream_client_secret is None:
            raise ValueError("BACKEND=upstream needs UPSTREAM_CLIENT_ID and UPSTREAM_CLIENT_SECRET to be set")
        return OAuth2Client(
            client_id=self.upstream_client_id,
            client_secret=self.upstream_client_secret,
            scope=self.upstream_scope,
        )

    def upstream_tokens(
        self, http: UpstreamClient, client: OAuth2Client | None = None, *, credentials_in_body: bool = False
    ) -> ClientCredentialsTokenSource:
        """Access tokens from UPSTREAM_TOKEN_URL, asked through the provider's own client.

        Args:
            http: The client to the provider; the token endpoint's failures are the provider's.
            client: The OAuth2 client; `upstream_oauth2_client` when None.
            credentials_in_body: Send the client id and secret in the form body rather than as HTTP Basic.

        Raises:
            ValueError: no client is given and UPSTREAM_CLIENT_ID or UPSTREAM_CLIENT_SECRET is unset.
        """
        return ClientCredentialsTokenSource(
            http,
            self.upstream_token_url or "",
            client or self.upstream_oauth2_client(),
            credentials_in_body=credentials_in_body,
        )

    def upstream_client(
        self,
        source: ErrorSource,
        *,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        client_certificate: tuple[Path, Path] | None = None,
    ) -> UpstreamClient:
        """The HTTP client to the provider these settings describe (base URL, timeout, CA bundle, pool).

        Args:
            source: Named in every error the client raises.
            base_url: Overrides UPSTREAM_BASE_URL (for a second host of the same provider).
            headers: Headers sent with every request.
            client_certificate: PEM certificate (chain) and key files to present, for a
                provider behind mutual TLS.
        """
        verify: ssl.SSLContext | bool = True
        if self.upstream_ca_file is not None or client_certificate is not None:
            cafile = None if self.upstream_ca_file is None else str(self.upstream_ca_file)
            verify = ssl.create_default_context(cafile=cafile)
            if client_certificate is not None:
                verify.load_cert_chain(*client_certificate)
        return UpstreamClient(
            source,
            base_url or self.upstream_base_url or "",
            timeout_seconds=self.upstream_timeout_seconds,
            verify=verify,
            max_connections=self.upstream_max_connections,
            headers=headers,
        )
