"""The c2s upstream backend: the C2S status from the Sécurité sociale gateway (API-SECU).

The same gateway as the cnaf service's, asked the same way (see
`services.cnaf.upstream` for the query parameters and headers): ``GET
<UPSTREAM_BASE_URL>/<UPSTREAM_PATH>`` with an OAuth2 bearer token of the C2S
client, the recipient SIRET in ``X-APIPART-FSFINAL`` and the request id in
``X-Correlation-ID``. The RNCPS answers (``X-APISECU-FD: 99430000``).

The real answer's JSON is not public; this adapter expects the v3 data object::

    {"est_beneficiaire": true, "avec_participation": false, "date_debut_droit": "2024-01-01"}

with ``avec_participation`` and ``date_debut_droit`` null or absent when the
person is not covered. Types are checked strictly; anything else is 37999.

A 404 that names an API-SECU error code (40406, 40409, 40412) or the organisation
that answered is the RNCPS's "no file" (40003); any other 404 (a wrong URL) is an
unknown answer. A 400 is the API's 00366.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import pydantic

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.oauth2 import ClientCredentialsTokenSource
from runtime.providers import CNAV
from runtime.upstream import TokenSource, UpstreamClient
from services.c2s.backend import file_not_found
from services.c2s.settings import C2sSettings
from services.cnaf.upstream import FD_HEADER, caller_headers, identity_query, refused_identity

_Date = Annotated[str, pydantic.StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class C2sAnswer(pydantic.BaseModel):
    """The answer this adapter expects (see the module's docstring)."""

    model_config = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)

    est_beneficiaire: bool
    avec_participation: bool | None = None
    date_debut_droit: _Date | None = None


class _ErrorAnswer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    error_code: str | int | None = pydantic.Field(default=None, alias="errorCode")


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
        tokens = ClientCredentialsTokenSource(
            http, settings.upstream_token_url or "", settings.upstream_oauth2_client()
        )
        return cls(http, tokens, settings.upstream_path)

    async def complementaire_sante_solidaire(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> c2s_pb2.ComplementaireSanteSolidaireData:
        """Whether the person is covered by the C2S, as its v3 data object."""
        response = await self._http.send(
            "GET",
            self._path,
            caller,
            params=identity_query(identity),
            headers=caller_headers(caller),
            token_source=self._tokens,
        )
        if response.status_code == httpx.codes.NOT_FOUND:
            try:
                code = _ErrorAnswer.model_validate_json(response.content).error_code
            except pydantic.ValidationError:
                code = None
            if code is not None or FD_HEADER in response.headers:
                raise file_not_found()
            raise self._http.unknown_answer(response, "unrecognised_not_found")
        if response.status_code == httpx.codes.BAD_REQUEST:
            raise refused_identity()
        if response.status_code != httpx.codes.OK:
            raise self._http.error_for_status(response)
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
