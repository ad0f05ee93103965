"""Settings of the gip_mds service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common.settings import OAUTH2_UPSTREAM, ProviderSettings, grpc_port_field


class GipMdsSettings(ProviderSettings):
    """The gip_mds service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the GIP-MDS's API takes an OAuth2 bearer token of one
    client-credentials registration, whose id and secret go in the token request's
    form body.
    """

    upstream_required: ClassVar[tuple[str, ...]] = OAUTH2_UPSTREAM

    grpc_port: int = grpc_port_field("gip_mds")
    upstream_path: str = Field(
        default="contrats-generique",
        description="URL of the contract search (GET), relative to UPSTREAM_BASE_URL (UPSTREAM_PATH).",
    )
