"""Settings every provider service adds to the runtime's."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from runtime.settings import ServerSettings


class BackendKind(StrEnum):
    """Where a provider service gets its answers."""

    SANDBOX = "sandbox"
    """The built-in fictitious population (the default)."""


class ProviderSettings(ServerSettings):
    """Settings of a provider service process."""

    backend: BackendKind = Field(
        default=BackendKind.SANDBOX,
        description="sandbox: the built-in fictitious population (BACKEND).",
    )
