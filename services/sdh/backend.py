"""What the sdh service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.sdh.v1 import sdh_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import SDH


def sportif_not_found() -> ApiError:
    """The ministry knows no sportsperson with this identifiant (41003)."""
    return provider_not_found(SDH)


class SdhBackend(Protocol):
    """A source of sports statuses. Raises `runtime.errors.ApiError` for every failure."""

    async def statut_sportif(self, identifiant: str, caller: Caller) -> sdh_pb2.StatutSportifData:
        """The sportsperson's status today and their other statuses.

        Args:
            identifiant: The validated PSQS identifiant (digits).
            caller: Who asks, to forward upstream (correlation id, deadline).

        Returns:
            The v3 data object; ``informations_statut`` unset when the person has
            no status today.

        Raises:
            ApiError: 41003 when the ministry knows no such identifiant; 41xxx when
                it fails or answers something unknown.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
