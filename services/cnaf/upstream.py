"""The cnaf upstream backend: the Sécurité sociale gateway (API-SECU, operated by the CNAV).

API-SECU identifies the person (SNGI), finds the caisse that pays them (RNCPS)
and asks it, CNAF or MSA; the answer's ``X-APISECU-FD`` header names the
organisation that answered (00810011 CNAF, 00171001 MSA, 99430000 RNCPS).

Request: ``GET <UPSTREAM_BASE_URL>/<prestation>`` (or the prestation's ``path``)
with an OAuth2 bearer token of that prestation's own client, and

- query: ``nomNaissance``, ``nomUsage`` (when given), ``listePrenoms`` (first
  names joined by one space), ``dateNaissance`` (``YYYY-MM-DD``, or ``YYYY-MM`` /
  ``YYYY`` when the day or month is unknown), ``genre`` (M or F),
  ``codePaysNaissance``, ``codeLieuNaissance`` (the commune's COG code, only for
  people born in France, 99100), ``villeNaissance`` and ``depNaissance`` (the
  commune's name and département, when given instead of its code); for the
  quotient familial, ``anneeDemandee`` and ``moisDemande``;
- headers: ``Authorization: Bearer …``, ``X-APIPART-FSFINAL`` (the SIRET of the
  public body that receives the data), ``X-Correlation-ID`` (the request id).

The real answer's JSON is not public; this adapter expects the v3 data object
of each API, without what the mesh adds itself (``quotient_familial.fournisseur``
comes from ``X-APISECU-FD``). Quotient familial::

    {"allocataires": [{"nom_naissance": "DUBOIS", "nom_usage": null, "prenoms": "MARC",
                       "date_naissance": "1980-03-02", "sexe": "M"}],
     "enfants": [ …same shape… ],
     "adresse": {"destinataire": "…", "complement_information": null,
                 "complement_information_geographique": null, "numero_libelle_voie": "…",
                 "lieu_dit": null, "code_postal_ville": "…", "pays": "…"} | null,
     "quotient_familial": {"valeur": 2550, "annee": 2026, "mois": 3,
                           "annee_calcul": 2026, "mois_calcul": 1}}

RSA and prime d'activité::

    {"est_beneficiaire": true, "avec_majoration": false, "date_debut_droit": "2021-04-01"}

AAH and ASF: the same without ``avec_majoration``. Types are checked strictly
and required fields must be there; anything else is an unknown answer (37999).
Fields the adapter does not know are ignored, so that the provider adding one
does not stop the service.

Errors, besides the shared ones of `runtime.upstream`:

- 404 with ``errorCode`` 40406 or 40412: registered with no eligible caisse, 35003;
- 404 with ``errorCode`` 40409: SNGI could not identify the person. The real API
  answers 422 there; the mesh has no such refusal for a valid identity, so it
  is NOT_FOUND 35003 as well, with a detail that says so;
- 404 with ``X-APISECU-FD``: no file at that caisse: 23003 CNAF, 10003 MSA, 40003 RNCPS;
- any other 404: an unknown answer (a wrong URL must not pass for "nobody");
- 400: the gateway refused the identity as badly formed, 00366.
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
import pydantic
from google.protobuf import json_format

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, ErrorSource, FieldViolation, invalid_civility, provider_not_found
from runtime.oauth2 import ClientCredentialsTokenSource
from runtime.providers import CNAF, CNAF_MSA, CNAV, MSA, RNCPS
from runtime.upstream import TokenSource, UpstreamClient
from services.cnaf.backend import Benefit, BenefitData
from services.cnaf.settings import PRESTATIONS, QUOTIENT_FAMILIAL, CnafSettings

FRANCE = "99100"
"""COG code of France as a birth country."""

FD_HEADER = "X-APISECU-FD"
ORGANISATIONS: dict[str, tuple[str, ErrorSource]] = {
    "00810011": ("CNAF", CNAF),
    "00171001": ("MSA", MSA),
    "99430000": ("RNCPS", RNCPS),
}
"""X-APISECU-FD value → the organisation's name and the provider of its not-found code."""

_NOT_REGISTERED_CODES = frozenset({"40406", "40412"})
_NOT_IDENTIFIED_CODE = "40409"

_Date = Annotated[str, pydantic.StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class _Shape(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)


class _Member(_Shape):
    nom_naissance: str
    nom_usage: str | None = None
    prenoms: str
    date_naissance: _Date
    sexe: Literal["M", "F"]


class _Address(_Shape):
    destinataire: str
    complement_information: str | None = None
    complement_information_geographique: str | None = None
    numero_libelle_voie: str | None = None
    lieu_dit: str | None = None
    code_postal_ville: str
    pays: str


class _QuotientFamilial(_Shape):
    valeur: int
    annee: int
    mois: int
    annee_calcul: int
    mois_calcul: int


class QuotientFamilialAnswer(_Shape):
    """The quotient familial answer this adapter expects (see the module's docstring)."""

    allocataires: list[_Member]
    enfants: list[_Member]
    adresse: _Address | None = None
    quotient_familial: _QuotientFamilial


class BenefitAnswer(_Shape):
    """A yes/no benefit answer this adapter expects (see the module's docstring)."""

    est_beneficiaire: bool
    avec_majoration: bool | None = None
    date_debut_droit: _Date | None = None


class _ErrorAnswer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    error_code: str | int | None = pydantic.Field(default=None, alias="errorCode")


def identity_query(identity: identity_pb2.IdentityPivot) -> dict[str, str]:
    """The query parameters that identify a person at the Sécurité sociale gateway."""
    query = {
        "nomNaissance": identity.nom_naissance,
        "listePrenoms": " ".join(identity.prenoms),
        "genre": identity.sexe_etat_civil,
        "codePaysNaissance": identity.code_cog_insee_pays_naissance,
    }
    if identity.nom_usage:
        query["nomUsage"] = identity.nom_usage
    if identity.HasField("annee_date_naissance"):
        date = f"{identity.annee_date_naissance:04d}"
        if identity.HasField("mois_date_naissance"):
            date += f"-{identity.mois_date_naissance:02d}"
            if identity.HasField("jour_date_naissance"):
                date += f"-{identity.jour_date_naissance:02d}"
        query["dateNaissance"] = date
    if identity.code_cog_insee_pays_naissance == FRANCE:
        if identity.code_cog_insee_commune_naissance:
            query["codeLieuNaissance"] = identity.code_cog_insee_commune_naissance
        elif identity.nom_commune_naissance:
            query["villeNaissance"] = identity.nom_commune_naissance
            query["depNaissance"] = identity.code_cog_insee_departement_naissance
    return {key: value for key, value in query.items() if value}


def caller_headers(caller: Caller) -> dict[str, str]:
    """The headers that tell the gateway who receives the data and which call this is."""
    headers = {"Accept": "application/json", "X-Correlation-ID": caller.request_id}
    if caller.recipient:
        headers["X-APIPART-FSFINAL"] = caller.recipient
    return headers


def not_registered() -> ApiError:
    """The person is registered with no eligible caisse (35003)."""
    return provider_not_found(
        CNAF_MSA,
        "L'allocataire n'est pas référencé auprès des caisses éligibles",
        title="Allocataire non référencé",
    )


def not_identified() -> ApiError:
    """The Sécurité sociale could not identify the person (SNGI), refused as not found (35003)."""
    return provider_not_found(
        CNAF_MSA,
        "La personne n'a pas pu être identifiée à partir des paramètres de civilité fournis",
        title="Personne non identifiée",
    )


def no_file_at(organisation: str, provider: ErrorSource) -> ApiError:
    """The caisse that answered has no file for the person (23003, 10003, 40003)."""
    return provider_not_found(
        provider,
        f"Le dossier allocataire n'a pas été trouvé auprès de la {organisation}",
        title=f"Dossier allocataire absent {organisation}",
    )


def refused_identity() -> ApiError:
    """The gateway refused the identity as badly formed (00366)."""
    return invalid_civility(
        [FieldViolation("identite", "refused as badly formed by the Sécurité sociale gateway")]
    )


def error_for(http: UpstreamClient, response: httpx.Response) -> ApiError:
    """The error for a non-200 answer of the Sécurité sociale gateway."""
    if response.status_code == httpx.codes.BAD_REQUEST:
        return refused_identity()
    if response.status_code != httpx.codes.NOT_FOUND:
        return http.error_for_status(response)
    try:
        code = _ErrorAnswer.model_validate_json(response.content).error_code
    except pydantic.ValidationError:
        code = None
    if code is not None and str(code) in _NOT_REGISTERED_CODES:
        return not_registered()
    if code is not None and str(code) == _NOT_IDENTIFIED_CODE:
        return not_identified()
    organisation = ORGANISATIONS.get(response.headers.get(FD_HEADER, ""))
    if organisation is not None:
        return no_file_at(*organisation)
    return http.unknown_answer(response, "unrecognised_not_found")


class UpstreamCnafBackend:
    """Asks the Sécurité sociale gateway, one OAuth2 client per prestation, one HTTP pool."""

    def __init__(self, http: UpstreamClient, tokens: dict[str, TokenSource], paths: dict[str, str]) -> None:
        """Ask through ``http``, with each prestation's token source and URL path."""
        self._http = http
        self._tokens = tokens
        self._paths = paths

    @classmethod
    def from_settings(cls, settings: CnafSettings) -> UpstreamCnafBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(CNAV)
        token_url = settings.upstream_token_url or ""
        tokens: dict[str, TokenSource] = {}
        paths: dict[str, str] = {}
        for name in PRESTATIONS:
            client = settings.upstream_clients[name]
            tokens[name] = ClientCredentialsTokenSource(http, token_url, client)
            paths[name] = client.path or name
        return cls(http, tokens, paths)

    async def _ask(self, prestation: str, query: dict[str, str], caller: Caller) -> httpx.Response:
        response = await self._http.send(
            "GET",
            self._paths[prestation],
            caller,
            params=query,
            headers=caller_headers(caller),
            token_source=self._tokens[prestation],
        )
        if response.status_code != httpx.codes.OK:
            raise error_for(self._http, response)
        return response

    async def quotient_familial(
        self, identity: identity_pb2.IdentityPivot, year: int, month: int, caller: Caller
    ) -> cnaf_pb2.QuotientFamilialData:
        """The household's quotient familial for the month, from the caisse that pays it."""
        query = identity_query(identity)
        query.update(anneeDemandee=f"{year:04d}", moisDemande=f"{month:02d}")
        response = await self._ask(QUOTIENT_FAMILIAL, query, caller)
        answer = self._http.decode(response, QuotientFamilialAnswer)
        organisation = ORGANISATIONS.get(response.headers.get(FD_HEADER, ""))
        if organisation is None or organisation[0] == "RNCPS":
            # Only a caisse computes a quotient familial: without one, the answer is not understood.
            raise self._http.unknown_answer(response, "unknown_organisation")
        data = json_format.ParseDict(answer.model_dump(exclude_none=True), cnaf_pb2.QuotientFamilialData())
        data.quotient_familial.fournisseur = organisation[0]
        return data

    async def benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> BenefitData:
        """Whether the person receives the benefit, as its v3 data object."""
        response = await self._ask(benefit.value, identity_query(identity), caller)
        answer = self._http.decode(response, BenefitAnswer)
        fields = answer.model_dump(exclude_none=True)
        if "avec_majoration" not in data_type.DESCRIPTOR.fields_by_name:
            fields.pop("avec_majoration", None)
        return json_format.ParseDict(fields, data_type())

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
