"""What the dsnj service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from typing import Protocol

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.dsnj.v1 import dsnj_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import DSNJ


def person_not_found() -> ApiError:
    """The DSNJ knows nobody with this identity (39003)."""
    return provider_not_found(DSNJ)


class DsnjBackend(Protocol):
    """A source of service national statuses. Raises `runtime.errors.ApiError` for every failure."""

    async def service_national(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> dsnj_pb2.ServiceNationalData:
        """The person's service national status.

        Args:
            identity: The validated identity pivot of a person aged 16 to 25: full
                birth date, sex, birth country (and commune when born in France).
            caller: Who asks, to forward upstream (correlation id, deadline).

        Returns:
            The v3 data object; ``commentaires`` unset when the DSNJ has none.

        Raises:
            ApiError: 39003 when the DSNJ knows nobody with this identity; 39xxx
                when the DSNJ fails or answers something unknown.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
