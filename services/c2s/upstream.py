"""The c2s upstream backend: the C2S status from the Sécurité sociale gateway (API-SECU).

The same gateway as the cnaf service's, asked the same way (see
`services.common.api_secu` for the query parameters and headers): ``GET
<UPSTREAM_BASE_URL>/<UPSTREAM_PATH>`` with an OAuth2 bearer token of the C2S
client. The RNCPS answers (``X-APISECU-FD: 99430000``).

The real answer's JSON is not public; this adapter expects the v3 data object::

    {"est_beneficiaire": true, "avec_participation": false, "date_debut_droit": "2024-01-01"}

with ``avec_participation`` and ``date_debut_droit`` null or absent when the
person is not covered. Types are checked strictly; anything else is 37999.

A 404 that names an API-SECU error code (40406, 40409, 40412) or the organisation
that answered is the RNCPS's "no file" (40003); any other 404 (a wrong URL) is an
unknown answer. A 400 is the API's 00366.
"""

from __future__ import annotations

import httpx

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError
from runtime.providers import CNAV
from runtime.upstream import TokenSource, UpstreamClient
from services.c2s.backend import file_not_found
from services.c2s.settings import C2sSettings
from services.common.answer_shape import AnswerShape, IsoDate
from services.common.api_secu import FD_HEADER, ask, error_code, identity_query


class C2sAnswer(AnswerShape):
    """The answer this adapter expects (see the module's docstring)."""

    est_beneficiaire: bool
    avec_participation: bool | None = None
    date_debut_droit: IsoDate | None = None


def _no_file(response: httpx.Response) -> ApiError | None:
    """A 404 that names an error code or the answering organisation: the RNCPS has no file."""
    if error_code(response) is not None or FD_HEADER in response.headers:
        return file_not_found()
    return None


class UpstreamC2sBackend:
    """Asks the Sécurité sociale gateway for the C2S status."""

    def __init__(self, http: UpstreamClient, tokens: TokenSource, path: str) -> None:
        """Ask through ``http`` on ``path`` with tokens from ``tokens``."""
        self._http = http
        self._tokens = tokens
        self._path = path

    @classmethod
    def from_settings(cls, settings: C2sSettings) -> UpstreamC2sBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(CNAV)
        return cls(http, settings.upstream_tokens(http), settings.upstream_path)

    async def complementaire_sante_solidaire(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> c2s_pb2.ComplementaireSanteSolidaireData:
        """Whether the person is covered by the C2S, as its v3 data object."""
        response = await ask(
            self._http, self._path, identity_query(identity), caller, tokens=self._tokens, not_found=_no_file
        )
        answer = self._http.decode(response, C2sAnswer)
        # A None leaves its field unset: the v3 null of a person not covered.
        return c2s_pb2.ComplementaireSanteSolidaireData(
            est_beneficiaire=answer.est_beneficiaire,
            avec_participation=answer.avec_participation,
            date_debut_droit=answer.date_debut_droit,
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
