"""Settings of the c2s service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.common.settings import OAUTH2_UPSTREAM, ProviderSettings, grpc_port_field


class C2sSettings(ProviderSettings):
    """The c2s service's settings; see `ProviderSettings` for the common ones."""

    upstream_required: ClassVar[tuple[str, ...]] = OAUTH2_UPSTREAM

    grpc_port: int = grpc_port_field("c2s")
    upstream_path: str = Field(
        default="complementaire_sante_solidaire",
        description="URL of the C2S prestation, relative to UPSTREAM_BASE_URL (UPSTREAM_PATH).",
    )
