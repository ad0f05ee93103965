"""What the france_travail service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.france_travail.v1 import france_travail_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import FRANCE_TRAVAIL


def situation_not_found() -> ApiError:
    """France Travail knows no situation for the identifiant (24003), as the v3 API words it.

    Upstream, this is also the answer to an empty payment list: the v3 contract
    promises at least one payment, so a person never paid is not found.
    """
    return provider_not_found(
        FRANCE_TRAVAIL,
        "Aucune situation France Travail n'a pu être trouvée avec les critères de recherche fournis.",
    )


class FranceTravailBackend(Protocol):
    """A source of France Travail data. Raises `runtime.errors.ApiError` for every failure."""

    async def statut(self, identifiant: str, caller: Caller) -> france_travail_pb2.StatutData:
        """The job-seeker status of the account holder.

        Args:
            identifiant: The validated France Travail username.
            caller: Who asks, to forward upstream (correlation id, deadline).

        Returns:
            The v3 data object, ``identifiant`` as asked.

        Raises:
            ApiError: 24003 when France Travail knows no such account; 24xxx when it fails.
        """

    async def indemnites(self, identifiant: str, caller: Caller) -> france_travail_pb2.IndemnitesData:
        """The payments France Travail made to the account holder, most recent first.

        Args:
            identifiant: The validated France Travail username.
            caller: Who asks, to forward upstream (correlation id, deadline).

        Returns:
            The v3 data object with at least one payment, ``identifiant`` as asked.

        Raises:
            ApiError: 24003 when France Travail knows no such account or no payment
                to it; 24xxx when it fails.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
