"""Settings of the france_travail service process."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ProviderSettings


class FranceTravailSettings(ProviderSettings):
    """The france_travail service's settings; see `ProviderSettings` for the common ones."""

    grpc_port: int = Field(default=50063, ge=0, le=65535, description="gRPC port (GRPC_PORT).")
