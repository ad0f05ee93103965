"""Settings of the cnous service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common.settings import OAUTH2_UPSTREAM, ProviderSettings, grpc_port_field


class CnousSettings(ProviderSettings):
    """The cnous service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the Cnous takes an OAuth2 bearer token of one
    client-credentials registration (credentials sent as HTTP Basic), and has
    one URL per kind of search.
    """

    upstream_required: ClassVar[tuple[str, ...]] = OAUTH2_UPSTREAM

    grpc_port: int = grpc_port_field("cnous")
    upstream_identity_path: str = Field(
        default="civility",
        description="URL of searches by identity (POST), relative to UPSTREAM_BASE_URL "
        "(UPSTREAM_IDENTITY_PATH).",
    )
    upstream_ine_path: str = Field(
        default="ine",
        description="URL of searches by INE, relative to UPSTREAM_BASE_URL; the INE is appended as a "
        "path segment (UPSTREAM_INE_PATH).",
    )
    upstream_france_connect_path: str = Field(
        default="france_connect",
        description="URL of searches for FranceConnect users, relative to UPSTREAM_BASE_URL "
        "(UPSTREAM_FRANCE_CONNECT_PATH).",
    )
