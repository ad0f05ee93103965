"""Settings of the mesr service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from services.common.settings import ProviderSettings, grpc_port_field


class MesrSettings(ProviderSettings):
    """The mesr service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the ministry's student directory takes an API key,
    a different one for searches by INE and for searches by identity (which
    FranceConnect searches use as well).
    """

    upstream_required: ClassVar[tuple[str, ...]] = (
        "upstream_base_url",
        "upstream_ine_api_key",
        "upstream_identity_api_key",
    )

    grpc_port: int = grpc_port_field("mesr")
    upstream_path: str = Field(
        default="etudiants",
        description="URL of the student status API, relative to UPSTREAM_BASE_URL (UPSTREAM_PATH).",
    )
    upstream_ine_api_key: SecretStr | None = Field(
        default=None,
        description="API key of searches by INE, sent as X-API-Key (UPSTREAM_INE_API_KEY).",
    )
    upstream_identity_api_key: SecretStr | None = Field(
        default=None,
        description="API key of searches by identity and FranceConnect, sent as X-API-Key "
        "(UPSTREAM_IDENTITY_API_KEY).",
    )
    upstream_consumer_name: str = Field(
        default="DINUM",
        min_length=1,
        description="Who calls the ministry, sent as X-Caller: '<name> - <token id>' "
        "(UPSTREAM_CONSUMER_NAME).",
    )
