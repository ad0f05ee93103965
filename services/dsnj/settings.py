"""Settings of the dsnj service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from services.common.settings import ProviderSettings, grpc_port_field


class DsnjSettings(ProviderSettings):
    """The dsnj service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the DSNJ's API takes a static bearer token it issued
    (no OAuth2 exchange) and a fixed User-Agent its gateway filters on.
    """

    upstream_required: ClassVar[tuple[str, ...]] = ("upstream_base_url", "upstream_bearer_token")

    grpc_port: int = grpc_port_field("dsnj")
    upstream_path: str = Field(
        default="service_national",
        description="URL of the service national search (POST), relative to UPSTREAM_BASE_URL "
        "(UPSTREAM_PATH).",
    )
    upstream_bearer_token: SecretStr | None = Field(
        default=None,
        description="The bearer token the DSNJ issued to API Particulier (UPSTREAM_BEARER_TOKEN).",
    )
    upstream_user_agent: str = Field(
        default="curl/8.15.0",
        min_length=1,
        description="User-Agent sent to the DSNJ, whose gateway refuses unknown clients "
        "(UPSTREAM_USER_AGENT).",
    )
