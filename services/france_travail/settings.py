"""Settings of the france_travail service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.providers import BY_NAME
from services.common.settings import ProviderSettings

_SCOPES = "api_statutaugmentev1 api_liste-paiementsv1 individuStatutAugmente"
"""The scopes France Travail grants for the status and payments APIs (its application scope is added)."""


class FranceTravailSettings(ProviderSettings):
    """The france_travail service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, France Travail gives one OAuth2 client for both
    APIs; its token endpoint takes the client id and secret in the form body.
    """

    upstream_required: ClassVar[tuple[str, ...]] = (
        "upstream_base_url",
        "upstream_token_url",
        "upstream_client_id",
        "upstream_client_secret",
    )

    grpc_port: int = Field(
        default=BY_NAME["france_travail"].grpc_port, ge=0, le=65535, description="gRPC port (GRPC_PORT)."
    )
    upstream_statut_path: str = Field(
        default="statut",
        description="URL of the job-seeker status API (POST), relative to UPSTREAM_BASE_URL "
        "(UPSTREAM_STATUT_PATH).",
    )
    upstream_indemnites_path: str = Field(
        default="indemnites",
        description="URL of the payments API (GET), relative to UPSTREAM_BASE_URL "
        "(UPSTREAM_INDEMNITES_PATH).",
    )
    upstream_consumer_name: str = Field(
        default="DINUM",
        min_length=1,
        description="Who calls France Travail, sent as X-pe-consommateur: '<name> - <token id>' "
        "(UPSTREAM_CONSUMER_NAME).",
    )

    def upstream_scopes(self) -> str:
        """The scopes asked for: UPSTREAM_SCOPE, or those of both APIs and the client's application."""
        if self.upstream_scope:
            return self.upstream_scope
        return f"{_SCOPES} application_{self.upstream_client_id or ''}"
