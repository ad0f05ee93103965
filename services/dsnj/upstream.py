"""The dsnj upstream backend: the DSNJ's service national API.

Request: ``POST <UPSTREAM_BASE_URL>/<UPSTREAM_PATH>`` with the static bearer token
the DSNJ issued (``Authorization: Bearer <UPSTREAM_BEARER_TOKEN>``), the fixed
``User-Agent`` its gateway filters on, the request id in ``X-Correlation-ID``, and
a batch of exactly one identity::

    {"identites_pivot": [{"given_name": "Leo", "family_name": "ARMAND", "birthdate": "2008-03-14",
                          "gender": "male" | "female", "birthplace": "35238" | null,
                          "birthcountry": "99100"}]}

``given_name`` is the first first name only, capitalised, and both names are in
plain ASCII; ``birthplace`` is the commune's COG code for people born in France,
null otherwise.

The DSNJ answers HTTP 200 whatever happened, and its body decides::

    {"return_code": "OK" | "ERREUR_TECHNIQUE", "error_msg": "…",
     "results": [{"code": "OK" | "NON_TROUVE" | "ERREUR_FORMAT" | …,
                  "en_regle": "En règle" | "Pas en règle" | "Indéterminé" | "Non concerné",
                  "complement": "free text" | null}]}

``return_code`` other than OK (on any status), other than one result, a result
code other than OK and NON_TROUVE, or a status label outside the four: 39999.
NON_TROUVE: 39003. Only the transport statuses (429, 502, 503, 504) are read
before the body.
"""

from __future__ import annotations

from typing import Any

import httpx

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.dsnj.v1 import dsnj_pb2
from runtime.caller import Caller
from runtime.providers import DSNJ
from runtime.upstream import UpstreamClient
from services.common.answer_shape import AnswerShape
from services.common.caller_headers import CallerHeaders
from services.common.pivot import ascii_folded, birth_date
from services.common.sandbox import normalise_name
from services.dsnj.backend import person_not_found
from services.dsnj.settings import DsnjSettings

_CALLER_HEADERS = CallerHeaders()
_FRANCE = "99100"
_GENDERS = {"M": "male", "F": "female"}
_TRANSPORT_STATUSES = frozenset(
    {
        httpx.codes.TOO_MANY_REQUESTS,
        httpx.codes.BAD_GATEWAY,
        httpx.codes.SERVICE_UNAVAILABLE,
        httpx.codes.GATEWAY_TIMEOUT,
    }
)
_STATUTS = {
    "EN REGLE": "en_regle",
    "PAS EN REGLE": "pas_en_regle",
    "INDETERMINE": "indetermine",
    "NON CONCERNE": "non_concerne",
}
"""The DSNJ's status labels, normalised (`normalise_name`), and the v3 values they stand for."""


class _Result(AnswerShape):
    code: str
    en_regle: str | None = None
    complement: str | None = None


class ServiceNationalAnswer(AnswerShape):
    """The answer this adapter expects (see the module's docstring)."""

    return_code: str
    results: tuple[_Result, ...] = ()


def request_body(identity: identity_pb2.IdentityPivot) -> dict[str, Any]:
    """The JSON body of a search: a batch of one identity."""
    country = identity.code_cog_insee_pays_naissance
    pivot = {
        "given_name": ascii_folded(identity.prenoms[0]).capitalize(),
        "family_name": ascii_folded(identity.nom_naissance).upper(),
        "birthdate": birth_date(identity),
        "gender": _GENDERS[identity.sexe_etat_civil.upper()],
        "birthplace": (identity.code_cog_insee_commune_naissance or None) if country == _FRANCE else None,
        "birthcountry": country,
    }
    return {"identites_pivot": [pivot]}


class UpstreamDsnjBackend:
    """Asks the DSNJ's API."""

    def __init__(self, http: UpstreamClient, path: str) -> None:
        """Ask through ``http`` (which carries the bearer token) on ``path``."""
        self._http = http
        self._path = path

    @classmethod
    def from_settings(cls, settings: DsnjSettings) -> UpstreamDsnjBackend:
        """The backend the settings describe (they were checked complete at start)."""
        token = settings.upstream_bearer_token.get_secret_value() if settings.upstream_bearer_token else ""
        headers = {"Authorization": f"Bearer {token}", "User-Agent": settings.upstream_user_agent}
        return cls(settings.upstream_client(DSNJ, headers=headers), settings.upstream_path)

    async def service_national(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> dsnj_pb2.ServiceNationalData:
        """The person's service national status, as its v3 data object."""
        response = await self._http.send(
            "POST",
            self._path,
            caller,
            headers={**_CALLER_HEADERS.for_caller(caller), "Content-Type": "application/json; charset=utf-8"},
            json=request_body(identity),
        )
        if response.status_code in _TRANSPORT_STATUSES:
            raise self._http.error_for_status(response)
        answer = self._http.decode(response, ServiceNationalAnswer)
        if answer.return_code != "OK" or len(answer.results) != 1:
            raise self._http.unknown_answer(response, "return_code")
        (result,) = answer.results
        if result.code == "NON_TROUVE":
            raise person_not_found()
        statut = _STATUTS.get(normalise_name(result.en_regle or ""))
        if result.code != "OK" or statut is None:
            raise self._http.unknown_answer(response, "result_code")
        return dsnj_pb2.ServiceNationalData(
            statut_service_national=statut, commentaires=result.complement or None
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
