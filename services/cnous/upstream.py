"""The cnous upstream backend: the Cnous's scholarship files.

Every request carries an OAuth2 bearer token of the Cnous client (client
credentials sent as HTTP Basic) and the request id in ``X-Correlation-ID``.

- by identity: ``POST <UPSTREAM_BASE_URL>/<UPSTREAM_IDENTITY_PATH>`` with the JSON
  body ``{"lastName", "firstNames" (joined by ", "), "birthDate" (YYYY-MM-DD),
  "birthPlace" (birth commune's COG code, when known), "civility" (M or F, when known),
  "campaignYear" (when asked)}``;
- by INE: ``GET <UPSTREAM_BASE_URL>/<UPSTREAM_INE_PATH>/<ine>``, ``?campaignYear=`` when asked;
- for a FranceConnect user: ``GET <UPSTREAM_BASE_URL>/<UPSTREAM_FRANCE_CONNECT_PATH>``
  with the identity FranceConnect certified as a JSON body, under FranceConnect's
  own claim names: ``{"family_name", "given_name" (first names joined by a space),
  "birthdate" (YYYY-MM-DD), "gender" ("male" or "female"), "birthplace",
  "birthcountry", "campaignYear" (when asked)}`` (the Cnous reads a body on that GET).

``campaignYear`` is the starting year of the campaign asked; without it the
Cnous answers with the most recent valid grant.

The Cnous's own answer is only partly public (its camelCase fields are known,
not how its current API words the removal and regional-grant facts); this
adapter expects the v5 data object::

    {"statut_boursier": {"est_boursier": true, "est_radie": false, "date_radiation": null},
     "echelon_bourse": {"echelon": "5", "echelon_bourse_regionale_provisoire": false},
     "email": "…", "ine": "…",
     "periode_versement_bourse": {"date_rentree": "2026-09-01", "duree": 10},
     "etablissement_etudes": {"nom_commune": "RENNES", "nom_etablissement": "…"},
     "identite": {"nom": "…", "prenoms": ["…"], "date_naissance": "2006-03-21",
                  "nom_commune_naissance": "VANNES", "sexe": "F"}}

``statut_boursier`` must be there; every other block may be null or absent.
Types are checked strictly and dates are ``YYYY-MM-DD``; anything else is an
unknown answer (26999). Fields the adapter does not know are ignored.

Errors, besides the shared ones: 404 is 26003, worded after how the student was
designated; 400 is the Cnous refusing the INE (00360) or the identity (00366).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
from google.protobuf import json_format

from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from runtime.caller import Caller
from runtime.errors import ApiError, FieldViolation, invalid_civility, invalid_ine
from runtime.providers import CNOUS
from runtime.upstream import TokenSource, UpstreamClient
from services.cnous.backend import student_not_found
from services.cnous.settings import CnousSettings
from services.common.answer_shape import AnswerShape, IsoDate
from services.common.caller_headers import CallerHeaders
from services.common.pivot import birth_date

_GENDERS = {"M": "male", "F": "female"}
_CALLER_HEADERS = CallerHeaders()


class _StatutBoursier(AnswerShape):
    est_boursier: bool
    est_radie: bool
    date_radiation: IsoDate | None = None


class _EchelonBourse(AnswerShape):
    echelon: str
    echelon_bourse_regionale_provisoire: bool


class _PeriodeVersement(AnswerShape):
    date_rentree: IsoDate
    duree: int


class _EtablissementEtudes(AnswerShape):
    nom_commune: str
    nom_etablissement: str


class _Identite(AnswerShape):
    nom: str
    prenoms: list[str]
    date_naissance: IsoDate
    nom_commune_naissance: str | None = None
    sexe: str | None = None


class EtudiantBoursierAnswer(AnswerShape):
    """The answer this adapter expects (see the module's docstring)."""

    statut_boursier: _StatutBoursier
    echelon_bourse: _EchelonBourse | None = None
    email: str | None = None
    ine: str | None = None
    periode_versement_bourse: _PeriodeVersement | None = None
    etablissement_etudes: _EtablissementEtudes | None = None
    identite: _Identite | None = None


class UpstreamCnousBackend:
    """Asks the Cnous, one OAuth2 client and one HTTP pool for every kind of search."""

    def __init__(
        self,
        http: UpstreamClient,
        tokens: TokenSource,
        *,
        identity_path: str,
        ine_path: str,
        france_connect_path: str,
    ) -> None:
        """Ask through ``http`` with tokens from ``tokens``, on each search's path."""
        self._http = http
        self._tokens = tokens
        self._identity_path = identity_path
        self._ine_path = ine_path.rstrip("/")
        self._france_connect_path = france_connect_path

    @classmethod
    def from_settings(cls, settings: CnousSettings) -> UpstreamCnousBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(CNOUS)
        return cls(
            http,
            settings.upstream_tokens(http),
            identity_path=settings.upstream_identity_path,
            ine_path=settings.upstream_ine_path,
            france_connect_path=settings.upstream_france_connect_path,
        )

    async def _ask(
        self,
        method: str,
        path: str,
        caller: Caller,
        subject: SubjectKind.ValueType,
        *,
        body: dict[str, str | int] | None = None,
        params: dict[str, str] | None = None,
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        response = await self._http.send(
            method,
            path,
            caller,
            headers=_CALLER_HEADERS.for_caller(caller),
            json=body,
            params=params,
            token_source=self._tokens,
        )
        if response.status_code != httpx.codes.OK:
            raise self._error(response, subject)
        answer = self._http.decode(response, EtudiantBoursierAnswer)
        return json_format.ParseDict(answer.model_dump(exclude_none=True), cnous_pb2.EtudiantBoursierV5Data())

    def _error(self, response: httpx.Response, subject: SubjectKind.ValueType) -> ApiError:
        if response.status_code == httpx.codes.NOT_FOUND:
            return student_not_found(subject)
        if response.status_code == httpx.codes.BAD_REQUEST:
            if subject is SUBJECT_KIND_INE:
                return invalid_ine([FieldViolation("ine", "refused as badly formed by the Cnous")])
            return invalid_civility([FieldViolation("identite", "refused as badly formed by the Cnous")])
        return self._http.error_for_status(response)

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The scholarship status of the student with this pivot, in the campaign asked."""
        body: dict[str, str | int] = {
            "lastName": identity.nom_naissance,
            "firstNames": ", ".join(identity.prenoms),
            "birthDate": birth_date(identity),
        }
        if identity.code_cog_insee_commune_naissance:
            body["birthPlace"] = identity.code_cog_insee_commune_naissance
        if identity.sexe_etat_civil:
            body["civility"] = identity.sexe_etat_civil.upper()
        if campaign is not None:
            body["campaignYear"] = campaign
        return await self._ask("POST", self._identity_path, caller, SUBJECT_KIND_IDENTITY_PIVOT, body=body)

    async def by_ine(
        self, ine: str, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The scholarship status of the student with this INE, in the campaign asked."""
        return await self._ask(
            "GET",
            f"{self._ine_path}/{quote(ine, safe='')}",
            caller,
            SUBJECT_KIND_INE,
            params=None if campaign is None else {"campaignYear": str(campaign)},
        )

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        """The scholarship status of a FranceConnect user, from the certified pivot, in the campaign asked."""
        body: dict[str, str | int] = {
            "family_name": identity.nom_naissance,
            "given_name": " ".join(identity.prenoms),
            "birthdate": birth_date(identity),
            "gender": _GENDERS.get(identity.sexe_etat_civil.upper(), ""),
            "birthplace": identity.code_cog_insee_commune_naissance,
            "birthcountry": identity.code_cog_insee_pays_naissance,
        }
        return await self._ask(
            "GET",
            self._france_connect_path,
            caller,
            SUBJECT_KIND_FRANCE_CONNECT,
            body={k: v for k, v in body.items() if v}
            | ({} if campaign is None else {"campaignYear": campaign}),
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
