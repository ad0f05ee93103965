"""The mesr upstream backend: the student directory of the Ministère de l'Enseignement supérieur.

The directory takes an API key in ``X-API-Key``, one key for searches by INE
and another for searches by identity, and two more headers:

- ``X-Caller: <UPSTREAM_CONSUMER_NAME> - <token id>``: who asks, the consumer
  name followed by the id (jti) of the caller's token, as the ministry requires
  (the name alone when the call did not come through the gateway);
- ``X-Correlation-ID``: the request id.

Requests, on ``<UPSTREAM_BASE_URL>/<UPSTREAM_PATH>``:

- by INE: ``GET ?INE=<ine>``;
- by identity, and for FranceConnect users with the pivot the gateway resolved:
  ``POST`` with the JSON body ``{"nomFamille", "prenom1", "dateNaissance"
  (YYYY-MM-DD), "sexe" ("1" male, "2" female), "lieuNaissance"}``, the last one
  (the birth commune's COG code) only when known.

The answer, as the directory gives it (dates ``YYYY-MM-DD`` or ISO date-times,
of which the date is kept)::

    {"ine": "…", "nomFamille": "BERNARD", "prenom": "CAMILLE", "dateNaissance": "2005-05-17",
     "inscriptions": [{"dateDebutInscription": "2026-09-01", "dateFinInscription": "2027-08-31",
                       "statut": "inscrit" | "admis", "regime": "formation initiale",
                       "codeCommune": "29019",
                       "etablissement": {"uai": "0290346U", "nomEtablissement": "…"}}]}

``nomFamille`` must be there (a 200 without it is an unknown answer, 25999);
each registration becomes one v3 admission, ``est_inscrit`` when its status is
"inscrit", its training regime coded RF1 to RF7 from the ministry's label (an
unknown label has a null code and is logged, label only). What the directory
does not send is null in the v3 object. Types are checked strictly; anything
else is 25999. A 404 is 25003, worded after how the student was designated.
"""

from __future__ import annotations

import httpx
import pydantic
import structlog

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.common.v1.options_pb2 import (
    SUBJECT_KIND_FRANCE_CONNECT,
    SUBJECT_KIND_IDENTITY_PIVOT,
    SUBJECT_KIND_INE,
    SubjectKind,
)
from apiparticulier.mesr.v1 import mesr_pb2
from runtime.caller import Caller
from runtime.providers import MESRI
from runtime.upstream import UpstreamClient
from services.common.answer_shape import AnswerShape, IsoDateOrDateTime
from services.common.caller_headers import CallerHeaders
from services.common.pivot import birth_date
from services.mesr.backend import student_not_found
from services.mesr.settings import MesrSettings

log = structlog.get_logger(__name__)

CALLER_HEADER = "X-Caller"
API_KEY_HEADER = "X-API-Key"

REGIME_CODES: dict[str, str] = {
    "formation initiale": "RF1",
    "formation initiale hors apprentissage": "RF2",
    "reprise d'études non financée sans convention": "RF3",
    "contrat d'apprentissage": "RF4",
    "formation continue": "RF5",
    "formation continue hors contrat professionnel": "RF6",
    "contrat de professionnalisation": "RF7",
}
"""The ministry's training regime labels and their v3 codes."""

_ENROLLED = "inscrit"
_SEXES = {"M": "1", "F": "2"}


class _Etablissement(AnswerShape):
    uai: str
    nom_etablissement: str = pydantic.Field(alias="nomEtablissement")


class _Inscription(AnswerShape):
    date_debut: IsoDateOrDateTime = pydantic.Field(alias="dateDebutInscription")
    date_fin: IsoDateOrDateTime = pydantic.Field(alias="dateFinInscription")
    statut: str
    regime: str
    code_commune: str | None = pydantic.Field(default=None, alias="codeCommune")
    etablissement: _Etablissement


class StudentAnswer(AnswerShape):
    """The answer this adapter expects (see the module's docstring)."""

    nom_famille: str = pydantic.Field(alias="nomFamille", min_length=1)
    prenom: str | None = None
    date_naissance: IsoDateOrDateTime | None = pydantic.Field(default=None, alias="dateNaissance")
    inscriptions: list[_Inscription] = pydantic.Field(default_factory=list)


def statut_etudiant(answer: StudentAnswer) -> mesr_pb2.StatutEtudiantData:
    """The v3 data object of an answer."""
    data = mesr_pb2.StatutEtudiantData(
        identite=mesr_pb2.Identite(
            nom_naissance=answer.nom_famille,
            prenom=answer.prenom,
            date_naissance=answer.date_naissance[:10] if answer.date_naissance else None,
        )
    )
    for inscription in answer.inscriptions:
        code = REGIME_CODES.get(inscription.regime)
        if code is None:
            # A new label needs a code here; the label is the ministry's, no personal data.
            log.warning("unknown_regime_formation", provider=MESRI.name, regime=inscription.regime)
        data.admissions.append(
            mesr_pb2.Admission(
                date_debut=inscription.date_debut[:10],
                date_fin=inscription.date_fin[:10],
                est_inscrit=inscription.statut == _ENROLLED,
                regime_formation=mesr_pb2.RegimeFormation(libelle=inscription.regime, code=code),
                code_cog_insee_commune=inscription.code_commune,
                etablissement_etudes=mesr_pb2.EtablissementEtudes(
                    uai=inscription.etablissement.uai, nom=inscription.etablissement.nom_etablissement
                ),
            )
        )
    return data


class UpstreamMesrBackend:
    """Asks the ministry's student directory, with the API key of each kind of search."""

    def __init__(
        self, http: UpstreamClient, path: str, *, ine_api_key: str, identity_api_key: str, consumer_name: str
    ) -> None:
        """Ask through ``http`` on ``path``, naming ``consumer_name`` as the caller."""
        self._http = http
        self._path = path
        self._ine_api_key = ine_api_key
        self._identity_api_key = identity_api_key
        self._caller_headers = CallerHeaders(consumer=CALLER_HEADER, consumer_name=consumer_name)

    @classmethod
    def from_settings(cls, settings: MesrSettings) -> UpstreamMesrBackend:
        """The backend the settings describe (they were checked complete at start)."""

        def secret(value: pydantic.SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        return cls(
            settings.upstream_client(MESRI),
            settings.upstream_path,
            ine_api_key=secret(settings.upstream_ine_api_key),
            identity_api_key=secret(settings.upstream_identity_api_key),
            consumer_name=settings.upstream_consumer_name,
        )

    def _headers(self, caller: Caller, api_key: str) -> dict[str, str]:
        headers = self._caller_headers.for_caller(caller)
        headers[API_KEY_HEADER] = api_key
        return headers

    def _answer(
        self, response: httpx.Response, subject: SubjectKind.ValueType
    ) -> mesr_pb2.StatutEtudiantData:
        if response.status_code == httpx.codes.NOT_FOUND:
            raise student_not_found(subject)
        if response.status_code != httpx.codes.OK:
            raise self._http.error_for_status(response)
        return statut_etudiant(self._http.decode(response, StudentAnswer))

    async def _by_civility(
        self, identity: identity_pb2.IdentityPivot, caller: Caller, subject: SubjectKind.ValueType
    ) -> mesr_pb2.StatutEtudiantData:
        body = {
            "nomFamille": identity.nom_naissance,
            "prenom1": identity.prenoms[0] if identity.prenoms else "",
            "dateNaissance": birth_date(identity),
            "sexe": _SEXES.get(identity.sexe_etat_civil.upper(), ""),
        }
        if identity.code_cog_insee_commune_naissance:
            body["lieuNaissance"] = identity.code_cog_insee_commune_naissance
        response = await self._http.send(
            "POST", self._path, caller, headers=self._headers(caller, self._identity_api_key), json=body
        )
        return self._answer(response, subject)

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> mesr_pb2.StatutEtudiantData:
        """The admissions and identity of the student with this pivot."""
        return await self._by_civility(identity, caller, SUBJECT_KIND_IDENTITY_PIVOT)

    async def by_ine(self, ine: str, caller: Caller) -> mesr_pb2.StatutEtudiantData:
        """The admissions and identity of the student with this INE."""
        response = await self._http.send(
            "GET", self._path, caller, params={"INE": ine}, headers=self._headers(caller, self._ine_api_key)
        )
        return self._answer(response, SUBJECT_KIND_INE)

    async def by_france_connect(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> mesr_pb2.StatutEtudiantData:
        """The admissions of a FranceConnect user: the directory is searched with the certified pivot."""
        return await self._by_civility(identity, caller, SUBJECT_KIND_FRANCE_CONNECT)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
