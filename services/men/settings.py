"""Settings of the men service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common.settings import OAUTH2_UPSTREAM, ProviderSettings, grpc_port_field


class MenSettings(ProviderSettings):
    """The men service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the ministry's schooling API takes an OAuth2 bearer
    token of one client-credentials registration (credentials sent as HTTP Basic).
    """

    upstream_required: ClassVar[tuple[str, ...]] = OAUTH2_UPSTREAM

    grpc_port: int = grpc_port_field("men")
    upstream_path: str = Field(
        default="perimetre",
        description="URL of the schooling search (POST), relative to UPSTREAM_BASE_URL (UPSTREAM_PATH).",
    )
