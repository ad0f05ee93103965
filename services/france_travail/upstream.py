"""The france_travail upstream backend: France Travail's status and payments APIs.

Both APIs take an OAuth2 bearer token of one client-credentials registration,
whose id and secret France Travail wants in the token request's form body, with
the scopes ``api_statutaugmentev1 api_liste-paiementsv1 individuStatutAugmente
application_<client id>`` (UPSTREAM_SCOPE overrides them). Every request carries

- ``X-pe-consommateur: <UPSTREAM_CONSUMER_NAME> - <token id>``: who asks, the
  consumer name followed by the id (jti) of the caller's token, as France
  Travail requires (the name alone when the call did not come through the gateway);
- ``X-Correlation-ID``: the request id.

Status: ``POST <UPSTREAM_BASE_URL>/<UPSTREAM_STATUT_PATH>``, the body being the
identifiant itself (``Content-Type: application/json``, as France Travail takes
it). The answer, as France Travail documents it (flat, dates ``YYYY-MM-DD`` or
ISO date-times, of which the date is kept)::

    {"civilite": "M.", "nom": "DUPONT", "nomUsage": null, "prenom": "JEAN", "sexe": "Masculin",
     "dateNaissance": "1990-01-01", "email": "…", "telephone": "…", "telephone2": null,
     "adresse": {"INSEECommune": "75107", "codePostal": "75007", "localite": "75007 PARIS",
                 "ligneVoie": "…", "ligneComplementDestinataire": null,
                 "ligneComplementAdresse": null, "ligneComplementDistribution": null,
                 "ligneNom": "…"},
     "dateInscription": "2020-01-01", "dateCessationInscription": null,
     "codeCertificationCNAV": "VC", "categorieInscription": "1",
     "libellecategorieInscription": "PERSONNE SANS EMPLOI …"}

``categorieInscription`` (a number, or its digits as a string) and
``dateInscription`` must be there; the other fields may be null, "" or absent,
which the v3 object says with null.

Payments: ``GET <UPSTREAM_BASE_URL>/<UPSTREAM_INDEMNITES_PATH>?loginMnemotechnique=<identifiant>``::

    {"statutInscription": true,
     "listePaiement": [{"datePaiement": "2026-10-05", "montantPaiement": 1321.75,
                        "allocations": 1180.5, "aides": 150.0, "autresPaiements": 20.0}]}

``statutInscription`` must be there; a null part of a payment counts as 0 (the
v3 amounts are numbers, never null), and a 0 is kept as the amount it is.

Types are checked strictly; any other shape is an unknown answer (24999).
Fields the adapter does not know are ignored. Errors, besides the shared ones:

- 404, 206 on the status, 204 on the payments, or an empty payment list: 24003;
- 500 whose ``messageLog`` names ``java.util.concurrent.TimeoutException``:
  France Travail timed out behind its gateway, 24002.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pydantic
import structlog
from google.protobuf import json_format

from apiparticulier.france_travail.v1 import france_travail_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_timeout
from runtime.providers import FRANCE_TRAVAIL
from runtime.upstream import TokenSource, UpstreamClient
from services.common.answer_shape import AnswerShape, IsoDateOrDateTime
from services.common.caller_headers import CallerHeaders
from services.france_travail.backend import situation_not_found
from services.france_travail.settings import FranceTravailSettings

log = structlog.get_logger(__name__)

CONSUMER_HEADER = "X-pe-consommateur"
_TIMEOUT_MARK = "java.util.concurrent.TimeoutException"

_Category = Annotated[str, pydantic.StringConstraints(pattern=r"^\d{1,3}$")] | int


class _Address(AnswerShape):
    insee_commune: str | None = pydantic.Field(default=None, alias="INSEECommune")
    code_postal: str | None = pydantic.Field(default=None, alias="codePostal")
    localite: str | None = None
    ligne_voie: str | None = pydantic.Field(default=None, alias="ligneVoie")
    ligne_complement_destinataire: str | None = pydantic.Field(
        default=None, alias="ligneComplementDestinataire"
    )
    ligne_complement_adresse: str | None = pydantic.Field(default=None, alias="ligneComplementAdresse")
    ligne_complement_distribution: str | None = pydantic.Field(
        default=None, alias="ligneComplementDistribution"
    )
    ligne_nom: str | None = pydantic.Field(default=None, alias="ligneNom")


class StatutAnswer(AnswerShape):
    """The status answer this adapter expects (see the module's docstring)."""

    civilite: str | None = None
    nom: str | None = None
    nom_usage: str | None = pydantic.Field(default=None, alias="nomUsage")
    prenom: str | None = None
    sexe: str | None = None
    date_naissance: IsoDateOrDateTime | None = pydantic.Field(default=None, alias="dateNaissance")
    email: str | None = None
    telephone: str | None = None
    telephone2: str | None = None
    adresse: _Address | None = None
    date_inscription: IsoDateOrDateTime = pydantic.Field(alias="dateInscription")
    date_cessation_inscription: IsoDateOrDateTime | None = pydantic.Field(
        default=None, alias="dateCessationInscription"
    )
    code_certification_cnav: str | None = pydantic.Field(default=None, alias="codeCertificationCNAV")
    categorie_inscription: _Category = pydantic.Field(alias="categorieInscription")
    libelle_categorie_inscription: str | None = pydantic.Field(
        default=None, alias="libellecategorieInscription"
    )


class _Payment(AnswerShape):
    date_paiement: IsoDateOrDateTime = pydantic.Field(alias="datePaiement")
    montant_paiement: float = pydantic.Field(alias="montantPaiement")
    allocations: float | None = None
    aides: float | None = None
    autres_paiements: float | None = pydantic.Field(default=None, alias="autresPaiements")


class IndemnitesAnswer(AnswerShape):
    """The payments answer this adapter expects (see the module's docstring)."""

    statut_inscription: bool = pydantic.Field(alias="statutInscription")
    liste_paiement: list[_Payment] | None = pydantic.Field(default=None, alias="listePaiement")


class _ErrorAnswer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    message_log: str | None = pydantic.Field(default=None, alias="messageLog")


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def _known(value: str | None) -> str | None:
    """The value, or None (the v3 null) where France Travail sends null or "" for what it does not know."""
    return value or None


def statut_data(answer: StatutAnswer) -> france_travail_pb2.StatutData:
    """The v3 status data object of an answer, without ``identifiant`` (the caller's own).

    Every block is an object, as the v3 API sends it, whose unknown fields are
    null (`json_format.ParseDict` leaves a None unset); only a missing address is null.
    """
    fields: dict[str, Any] = {
        "identite": {
            "civilite": _known(answer.civilite),
            "nom_naissance": _known(answer.nom),
            "nom_usage": _known(answer.nom_usage),
            "prenom": _known(answer.prenom),
            "sexe": _known(answer.sexe),
            "date_naissance": _day(answer.date_naissance),
        },
        "contact": {
            "telephone": _known(answer.telephone),
            "telephone2": _known(answer.telephone2),
            "email": _known(answer.email),
        },
        "inscription": {
            "date_debut": _day(answer.date_inscription),
            "date_fin": _day(answer.date_cessation_inscription),
            "categorie": {
                "code": int(answer.categorie_inscription),
                "libelle": _known(answer.libelle_categorie_inscription),
            },
            "code_certification_cnav": _known(answer.code_certification_cnav),
        },
        "adresse": None,
    }
    if answer.adresse is not None:
        address = answer.adresse
        fields["adresse"] = {
            "code_postal": _known(address.code_postal),
            "code_cog_insee_commune": _known(address.insee_commune),
            "localite": _known(address.localite),
            "ligne_voie": _known(address.ligne_voie),
            "ligne_complement_destinataire": _known(address.ligne_complement_destinataire),
            "ligne_complement_adresse": _known(address.ligne_complement_adresse),
            "ligne_complement_distribution": _known(address.ligne_complement_distribution),
            "ligne_nom": _known(address.ligne_nom),
        }
    return json_format.ParseDict(fields, france_travail_pb2.StatutData())


def paiements(answer: IndemnitesAnswer) -> list[france_travail_pb2.Paiement]:
    """The payments of an answer as v3 objects, most recent first."""
    found = [
        france_travail_pb2.Paiement(
            date_versement=payment.date_paiement[:10],
            montant_total=payment.montant_paiement,
            montant_allocations=payment.allocations or 0.0,
            montant_aides=payment.aides or 0.0,
            montant_autres=payment.autres_paiements or 0.0,
        )
        for payment in answer.liste_paiement or ()
    ]
    return sorted(found, key=lambda payment: payment.date_versement, reverse=True)


class UpstreamFranceTravailBackend:
    """Asks France Travail's APIs, one OAuth2 client and one HTTP pool for both."""

    def __init__(
        self,
        http: UpstreamClient,
        tokens: TokenSource,
        *,
        statut_path: str,
        indemnites_path: str,
        consumer_name: str,
    ) -> None:
        """Ask through ``http`` with tokens from ``tokens``, naming ``consumer_name`` as the consumer."""
        self._http = http
        self._tokens = tokens
        self._statut_path = statut_path
        self._indemnites_path = indemnites_path
        self._headers = CallerHeaders(consumer=CONSUMER_HEADER, consumer_name=consumer_name)

    @classmethod
    def from_settings(cls, settings: FranceTravailSettings) -> UpstreamFranceTravailBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(FRANCE_TRAVAIL)
        return cls(
            http,
            settings.upstream_tokens(http, credentials_in_body=True),
            statut_path=settings.upstream_statut_path,
            indemnites_path=settings.upstream_indemnites_path,
            consumer_name=settings.upstream_consumer_name,
        )

    def _error(self, response: httpx.Response, not_found: int) -> ApiError:
        if response.status_code in (httpx.codes.NOT_FOUND, not_found):
            return situation_not_found()
        if response.status_code == httpx.codes.INTERNAL_SERVER_ERROR:
            try:
                message = _ErrorAnswer.model_validate_json(response.content).message_log
            except pydantic.ValidationError:
                message = None
            if message is not None and _TIMEOUT_MARK in message:
                log.warning(
                    "upstream_failure",
                    provider=FRANCE_TRAVAIL.name,
                    status=500,
                    error_kind="upstream_timeout",
                )
                return provider_timeout(FRANCE_TRAVAIL)
        return self._http.error_for_status(response)

    async def statut(self, identifiant: str, caller: Caller) -> france_travail_pb2.StatutData:
        """The job-seeker status of the account holder, as its v3 data object."""
        headers = self._headers.for_caller(caller)
        headers["Content-Type"] = "application/json"
        response = await self._http.send(
            "POST",
            self._statut_path,
            caller,
            headers=headers,
            content=identifiant.encode(),
            token_source=self._tokens,
        )
        if response.status_code != httpx.codes.OK:
            raise self._error(response, httpx.codes.PARTIAL_CONTENT)
        data = statut_data(self._http.decode(response, StatutAnswer))
        data.identifiant = identifiant
        return data

    async def indemnites(self, identifiant: str, caller: Caller) -> france_travail_pb2.IndemnitesData:
        """The payments France Travail made to the account holder, most recent first."""
        response = await self._http.send(
            "GET",
            self._indemnites_path,
            caller,
            params={"loginMnemotechnique": identifiant},
            headers=self._headers.for_caller(caller),
            token_source=self._tokens,
        )
        if response.status_code != httpx.codes.OK:
            raise self._error(response, httpx.codes.NO_CONTENT)
        found = paiements(self._http.decode(response, IndemnitesAnswer))
        if not found:
            raise situation_not_found()
        return france_travail_pb2.IndemnitesData(identifiant=identifiant, paiements=found)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
