"""Settings of the cnaf service process."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from runtime.oauth2 import OAuth2Client
from services.cnaf.backend import Benefit, Indicator
from services.common.settings import BackendKind, ProviderSettings, grpc_port_field

QUOTIENT_FAMILIAL = "quotient_familial"
"""The Sécurité sociale gateway's name of the quotient familial prestation."""
PARTICIPATION_FAMILIALE_EAJE = "participation_familiale_eaje"
"""The Sécurité sociale gateway's name of the EAJE participation familiale prestation."""
PRESTATIONS: tuple[str, ...] = (
    QUOTIENT_FAMILIAL,
    *(benefit.value for benefit in Benefit),
    *(indicator.value for indicator in Indicator),
    PARTICIPATION_FAMILIALE_EAJE,
)
"""Every prestation the cnaf service asks the gateway about, each with its own OAuth2 client."""


class PrestationClient(OAuth2Client):
    """The OAuth2 client of one prestation at the Sécurité sociale gateway, and where to ask."""

    path: str | None = Field(
        default=None,
        description="URL of the prestation, relative to UPSTREAM_BASE_URL; the prestation's name if unset.",
    )


class CnafSettings(ProviderSettings):
    """The cnaf service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the Sécurité sociale gateway (API-SECU) gives one
    OAuth2 client per prestation, so the credentials are one JSON object,
    ``UPSTREAM_CLIENTS``, keyed by prestation name::

        {"quotient_familial": {"client_id": "…", "client_secret": "…", "scope": "…"},
         "revenu_solidarite_active": {…}, "prime_activite": {…},
         "allocation_adulte_handicape": {…}, "allocation_soutien_familial": {…},
         "allocation_enfant_handicape": {…}, "allocation_rentree_scolaire": {…},
         "participation_familiale_eaje": {…}}

    Each entry may add ``"path"`` when the prestation's URL is not
    ``UPSTREAM_BASE_URL/<prestation>``. The token endpoint, UPSTREAM_TOKEN_URL,
    is common to all.
    """

    upstream_required: ClassVar[tuple[str, ...]] = (
        "upstream_base_url",
        "upstream_token_url",
        "upstream_clients",
    )

    grpc_port: int = grpc_port_field("cnaf")
    upstream_clients: dict[str, PrestationClient] = Field(
        default_factory=dict,
        description="JSON object: for each prestation (quotient_familial, revenu_solidarite_active, "
        "prime_activite, allocation_adulte_handicape, allocation_soutien_familial, "
        "allocation_enfant_handicape, allocation_rentree_scolaire, participation_familiale_eaje), its OAuth2 "
        'client {"client_id", "client_secret", "scope", "path"} (UPSTREAM_CLIENTS).',
    )

    @model_validator(mode="after")
    def _every_prestation_has_a_client(self) -> CnafSettings:
        unknown = sorted(set(self.upstream_clients) - set(PRESTATIONS))
        if unknown:
            raise ValueError(f"UPSTREAM_CLIENTS names unknown prestations: {', '.join(unknown)}")
        if self.backend is BackendKind.UPSTREAM and self.upstream_clients:
            missing = [name for name in PRESTATIONS if name not in self.upstream_clients]
            if missing:
                raise ValueError(f"UPSTREAM_CLIENTS lacks a client for: {', '.join(missing)}")
        return self
