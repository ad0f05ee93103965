"""Settings of the c2s service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.providers import BY_NAME
from services.common.settings import ProviderSettings


class C2sSettings(ProviderSettings):
    """The c2s service's settings; see `ProviderSettings` for the common ones."""

    upstream_required: ClassVar[tuple[str, ...]] = (
        "upstream_base_url",
        "upstream_token_url",
        "upstream_client_id",
        "upstream_client_secret",
    )

    grpc_port: int = Field(
        default=BY_NAME["c2s"].grpc_port, ge=0, le=65535, description="gRPC port (GRPC_PORT)."
    )
    upstream_path: str = Field(
        default="complementaire_sante_solidaire",
        description="URL of the C2S prestation, relative to UPSTREAM_BASE_URL (UPSTREAM_PATH).",
    )
