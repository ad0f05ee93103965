"""Settings of the ants service process."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.common.settings import ProviderSettings, grpc_port_field


class AntsSettings(ProviderSettings):
    """The ants service's settings; see `ProviderSettings` for the common ones.

    On the upstream backend, the SIV is a SOAP 1.2 service behind mutual TLS: the
    service presents its client certificate, and signs with the same key the SAML
    assertion that vouches for each request, in the name of its identity provider
    and the partner codes the ANTS assigned.
    """

    upstream_required: ClassVar[tuple[str, ...]] = (
        "upstream_base_url",
        "upstream_client_cert_file",
        "upstream_client_key_file",
        "upstream_idp_name",
        "upstream_code_partenaire",
        "upstream_code_miat",
        "upstream_code_concentrateur",
    )

    grpc_port: int = grpc_port_field("ants")
    upstream_path: str = Field(
        default="",
        description="Path of the SIV's SOAP endpoint, relative to UPSTREAM_BASE_URL; empty: "
        "UPSTREAM_BASE_URL itself (UPSTREAM_PATH).",
    )
    upstream_client_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (chain) presented to the SIV and embedded in the signed SAML "
        "assertion (UPSTREAM_CLIENT_CERT_FILE).",
    )
    upstream_client_key_file: Path | None = Field(
        default=None,
        description="PEM RSA private key of that certificate: TLS client key and SAML signing key "
        "(UPSTREAM_CLIENT_KEY_FILE).",
    )
    upstream_idp_name: str | None = Field(
        default=None, description="Issuer and subject of the SAML assertion (UPSTREAM_IDP_NAME)."
    )
    upstream_code_partenaire: str | None = Field(
        default=None,
        description="Partner code the ANTS assigned, in each request (UPSTREAM_CODE_PARTENAIRE).",
    )
    upstream_code_miat: str | None = Field(
        default=None, description="MIAT code the ANTS assigned, in each request (UPSTREAM_CODE_MIAT)."
    )
    upstream_code_concentrateur: str | None = Field(
        default=None,
        description="Concentrator code, the CodePartenaire attribute of the SAML assertion "
        "(UPSTREAM_CODE_CONCENTRATEUR).",
    )
