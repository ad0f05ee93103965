"""Settings of the men service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.providers import BY_NAME
from services.common.settings import ProviderSettings


class MenSettings(ProviderSettings):
    """The men service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the ministry's schooling API takes an OAuth2 bearer
    token of one client-credentials registration (credentials sent as HTTP Basic).
    """

    upstream_required: ClassVar[tuple[str, ...]] = (
        "upstream_base_url",
        "upstream_token_url",
        "upstream_client_id",
        "upstream_client_secret",
    )

    grpc_port: int = Field(
        default=BY_NAME["men"].grpc_port, ge=0, le=65535, description="gRPC port (GRPC_PORT)."
    )
    upstream_path: str = Field(
        default="perimetre",
        description="URL of the schooling search (POST), relative to UPSTREAM_BASE_URL (UPSTREAM_PATH).",
    )
