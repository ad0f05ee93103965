"""What the c2s service asks of a backend, whichever one answers (sandbox or upstream).

The C2S status comes from the Sécurité sociale gateway operated by the CNAV, which
routes the question through the RNCPS to the Assurance maladie. The error model
names two providers accordingly: the RNCPS when it holds no file for the person,
the CNAV for everything that goes wrong on the way (unavailable, timeout, an
answer that does not parse).
"""

from __future__ import annotations

from typing import Protocol

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import RNCPS


def file_not_found() -> ApiError:
    """The RNCPS holds no file for the person (40003), as the v3 API words it."""
    return provider_not_found(
        RNCPS,
        "Le dossier allocataire n'a pas été trouvé auprès du RNCPS.",
        title="Dossier allocataire absent RNCPS",
    )


class C2sBackend(Protocol):
    """A source of C2S statuses. Raises `runtime.errors.ApiError` for every failure."""

    async def complementaire_sante_solidaire(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> c2s_pb2.ComplementaireSanteSolidaireData:
        """Whether the person is covered by the C2S today, with or without participation.

        Args:
            identity: The validated identity pivot (DSS rules).
            caller: Who asks, to forward upstream (recipient SIRET, correlation id, deadline).

        Returns:
            The v3 data object; ``avec_participation`` and ``date_debut_droit`` are
            unset when the person is not covered.

        Raises:
            ApiError: 40003 when the RNCPS holds no file for the person; 37xxx when
                the Sécurité sociale gateway fails.
        """

    async def close(self) -> None:
        """Release the backend's connections."""
