"""What the gip_mds service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gip_mds.v1 import gip_mds_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, api_error, provider_not_found
from runtime.providers import GIP_MDS


def person_not_found() -> ApiError:
    """The GIP-MDS knows nobody with this identity (31003)."""
    return provider_not_found(GIP_MDS)


def identity_ambiguous() -> ApiError:
    """The identity matches several persons of the GIP-MDS (00391): the caller must say more."""
    return api_error("00391")


class GipMdsBackend(Protocol):
    """A source of service civique statuses. Raises `runtime.errors.ApiError` for every failure."""

    async def service_civique(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> gip_mds_pb2.ServiceCiviqueData:
        """The person's current and past service civique contract.

        Args:
            identity: The validated identity pivot, with a full birth date.
            caller: Who asks, to forward upstream (correlation id, deadline).

        Returns:
            The v3 data object: both statuses set, at most one with a contract;
            a person with no contract has both without one.

        Raises:
            ApiError: 31003 when the GIP-MDS knows nobody with this identity; 00391
                when it knows several; 31xxx when it fails or answers something unknown.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
