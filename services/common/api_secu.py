"""How the cnaf and c2s services ask the Sécurité sociale gateway (API-SECU, operated by the CNAV).

API-SECU identifies the person (SNGI), finds the organisation that pays them
(RNCPS) and asks it; the answer's `FD_HEADER` names the organisation that
answered. Each prestation has its own URL and OAuth2 client.

Request: ``GET <prestation URL>`` with an OAuth2 bearer token of the
prestation's client, and

- query (`identity_query`): ``nomNaissance``, ``nomUsage`` (when given),
  ``listePrenoms`` (first names joined by one space), ``dateNaissance``
  (``YYYY-MM-DD``, or ``YYYY-MM`` / ``YYYY`` when the day or month is unknown),
  ``genre`` (M or F), ``codePaysNaissance``, ``codeLieuNaissance`` (the commune's
  COG code, only for people born in France, 99100), ``villeNaissance`` and
  ``depNaissance`` (the commune's name and département, when given instead of
  its code). In the names and first names, typographic apostrophes (U+2019,
  U+2018, U+02BC…) and dashes (U+2010, U+2011, U+2013, U+2014…) are sent as
  their ASCII look-alikes ``'`` and ``-``, as the real backend sends them;
- headers (`CALLER_HEADERS`): ``X-APIPART-FSFINAL`` (the SIRET of the public body
  that receives the data) and ``X-Correlation-ID`` (the request id).

Answers other than 200, besides the shared ones of `runtime.upstream`: a 400 is
the gateway refusing the identity as badly formed (00366); a 404 means
something only with an ``errorCode`` in its JSON body or `FD_HEADER`, which each
service reads its own way.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pydantic

from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, FieldViolation, invalid_civility
from runtime.upstream import TokenSource, UpstreamClient
from services.common.caller_headers import CallerHeaders
from services.common.pivot import ascii_look_alikes, birth_date

FD_HEADER = "X-APISECU-FD"
"""The answer's header naming the organisation that answered (00810011 CNAF, 00171001 MSA, 99430000 RNCPS)."""
CALLER_HEADERS = CallerHeaders(recipient="X-APIPART-FSFINAL")
"""The recipient's SIRET and the correlation id, on every request."""

_FRANCE = "99100"

NotFoundAnswer = Callable[[httpx.Response], ApiError | None]
"""What a 404 answer stands for, None when the service does not recognise it."""


class _ErrorAnswer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    error_code: str | int | None = pydantic.Field(default=None, alias="errorCode")


def identity_query(identity: identity_pb2.IdentityPivot) -> dict[str, str]:
    """The query parameters that identify a person, from a validated pivot; unknown ones left out."""
    query = {
        "nomNaissance": ascii_look_alikes(identity.nom_naissance),
        "nomUsage": ascii_look_alikes(identity.nom_usage),
        "listePrenoms": ascii_look_alikes(" ".join(identity.prenoms)),
        "dateNaissance": birth_date(identity),
        "genre": identity.sexe_etat_civil.upper(),
        "codePaysNaissance": identity.code_cog_insee_pays_naissance,
    }
    if identity.code_cog_insee_pays_naissance == _FRANCE:
        if identity.code_cog_insee_commune_naissance:
            query["codeLieuNaissance"] = identity.code_cog_insee_commune_naissance
        elif identity.nom_commune_naissance:
            query["villeNaissance"] = identity.nom_commune_naissance
            query["depNaissance"] = identity.code_cog_insee_departement_naissance
    return {key: value for key, value in query.items() if value}


def error_code(response: httpx.Response) -> str | None:
    """The ``errorCode`` of an error answer's JSON body; None when there is none."""
    try:
        code = _ErrorAnswer.model_validate_json(response.content).error_code
    except pydantic.ValidationError:
        return None
    return None if code is None else str(code)


def refused_identity() -> ApiError:
    """The gateway refused the identity as badly formed (00366)."""
    return invalid_civility(
        [FieldViolation("identite", "refused as badly formed by the Sécurité sociale gateway")]
    )


async def ask(
    http: UpstreamClient,
    path: str,
    query: dict[str, str],
    caller: Caller,
    *,
    tokens: TokenSource,
    not_found: NotFoundAnswer,
) -> httpx.Response:
    """Ask one prestation about a person.

    Args:
        http: The client to the gateway.
        path: The prestation's URL, relative to the gateway's base URL.
        query: `identity_query` and what the prestation adds.
        caller: Who asks: recipient, request id and deadline.
        tokens: The prestation's OAuth2 tokens.
        not_found: What a 404 stands for.

    Returns:
        The 200 answer, body read.

    Raises:
        ApiError: ``not_found``'s error on a 404 it recognises, an unknown answer
            on another 404 (a wrong URL must not pass for "nobody"), 00366 on a
            400, the shared upstream errors otherwise.
    """
    response = await http.send(
        "GET", path, caller, params=query, headers=CALLER_HEADERS.for_caller(caller), token_source=tokens
    )
    if response.status_code == httpx.codes.OK:
        return response
    if response.status_code == httpx.codes.BAD_REQUEST:
        raise refused_identity()
    if response.status_code != httpx.codes.NOT_FOUND:
        raise http.error_for_status(response)
    error = not_found(response)
    if error is None:
        raise http.unknown_answer(response, "unrecognised_not_found")
    raise error
