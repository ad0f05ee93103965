"""What the ants service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.ants.v1 import ants_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, api_error, provider_not_found
from runtime.providers import ANTS

Extrait = ants_pb2.GetExtraitImmatriculationVehiculeByFranceConnectResponse
"""An extract: the v3 data object and the v3 meta object (the identity check)."""


def registration_not_found() -> ApiError:
    """The SIV holds no file under this registration number (42003)."""
    return provider_not_found(ANTS)


def identity_not_found() -> ApiError:
    """The file exists but none of its natural persons is the FranceConnect user (42005)."""
    return api_error("42005", source=ANTS)


class AntsBackend(Protocol):
    """A source of registration extracts. Raises `runtime.errors.ApiError` for every failure."""

    async def extrait(
        self, immatriculation: str, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> Extrait:
        """The extract of a vehicle's file, for the person of the file who is the FranceConnect user.

        Args:
            immatriculation: The validated, upper-cased registration number.
            identity: The identity FranceConnect certified, validated (full birth date).
            caller: Who asks (correlation id, deadline).

        Returns:
            The extract, ``withheld`` left empty.

        Raises:
            ApiError: 42003 when the SIV has no such file; 42005 when none of its
                natural persons bears the user's birth name and a first name of theirs;
                42xxx when the SIV fails or answers something unknown.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
