"""Settings of the france_travail service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.oauth2 import OAuth2Client
from services.common.settings import OAUTH2_UPSTREAM, ProviderSettings, grpc_port_field

_SCOPES = "api_statutaugmentev1 api_liste-paiementsv1 individuStatutAugmente"
"""The scopes France Travail grants for the status and payments APIs (its application scope is added)."""


class FranceTravailSettings(ProviderSettings):
    """The france_travail service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, France Travail gives one OAuth2 client for both
    APIs; its token endpoint takes the client id and secret in the form body.
    """

    upstream_required: ClassVar[tuple[str, ...]] = OAUTH2_UPSTREAM

    grpc_port: int = grpc_port_field("france_travail")
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

    def upstream_oauth2_client(self) -> OAuth2Client:
        """The OAuth2 client, asking for UPSTREAM_SCOPE, or else the scopes of both APIs and its application.

        Raises:
            ValueError: UPSTREAM_CLIENT_ID or UPSTREAM_CLIENT_SECRET is unset.
        """
        client = super().upstream_oauth2_client()
        if client.scope:
            return client
        return client.model_copy(update={"scope": f"{_SCOPES} application_{client.client_id}"})
