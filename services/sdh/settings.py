"""Settings of the sdh service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common.settings import OAUTH2_UPSTREAM, ProviderSettings, grpc_port_field


class SdhSettings(ProviderSettings):
    """The sdh service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the ministry's API takes an OAuth2 bearer token of one
    client-credentials registration, whose id and secret go in the token request's
    form body.
    """

    upstream_required: ClassVar[tuple[str, ...]] = OAUTH2_UPSTREAM

    grpc_port: int = grpc_port_field("sdh")
    upstream_path: str = Field(
        default="sportifs",
        description="URL of the sportspeople, relative to UPSTREAM_BASE_URL; the identifiant is "
        "appended as a path segment (UPSTREAM_PATH).",
    )
