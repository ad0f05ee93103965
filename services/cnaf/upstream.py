"""The cnaf upstream backend: the Sécurité sociale gateway (API-SECU, operated by the CNAV).

The gateway finds the caisse that pays the person, CNAF or MSA, and asks it;
`services.common.api_secu` says how it is asked (query parameters, headers,
400). Request: ``GET <UPSTREAM_BASE_URL>/<prestation>`` (or the prestation's
``path``) with a token of that prestation's own OAuth2 client; for the quotient
familial, the query adds ``anneeDemandee`` and ``moisDemande``.

For the quotient familial and the yes/no benefits the real answer's JSON is not
public; this adapter expects the v3 data object of each API, without what the
mesh adds itself (``quotient_familial.fournisseur`` comes from
``X-APISECU-FD``). Quotient familial::

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

AAH and ASF: the same without ``avec_majoration``.

The AEEH, ARS and EAJE answers are known: the adapter reads them under the
gateway's own names and maps them. AEEH and ARS: the person's indicator and its date; the list of
prestations beside them is not read::

    {"indicateur": "ALLOCATAIRE" | "OUVRANT_DROIT" | "NON_BENEFICIAIRE",
     "dateIndicateur": "2023-09-01" | "" | null, "listePrestation": [ … ]}

``status`` is the indicator in lower case; ``date_debut_droit`` the date's day,
null for a non-beneficiary; another indicator is an unknown answer. EAJE: the
household, its address and what the fee is computed from (``annee``, a number or a four-digit string)::

    {"allocataires": [{"nomNaissance": "ROCHEFORT", "nomUsage": null, "listePrenoms": "ANNE",
                       "dateNaissance": "1991-04-12", "genre": "F", "cogNaissance": "17299"}],
     "enfants": [ …same shape… ],
     "adresse": {"identite": "…", "complementInformation": null, "complementInformationGeo": null,
                 "numeroLibelleVoie": "…", "lieuDit": null, "codePostalVille": "…", "pays": "…"},
     "nombreEnfantACharge": 2, "nombreBeneficiaireAEH": 0, "montantRessources": 31250, "annee": 2024}

Anything else is an unknown answer (37999), as `services.common.answer_shape`
decodes it.

A 404 means, besides the shared errors:

- with ``errorCode`` 40406 or 40412: registered with no eligible caisse, 35003;
- with ``errorCode`` 40409: SNGI could not identify the person. The real API
  answers 422 there; the mesh has no such refusal for a valid identity, so it
  is NOT_FOUND 35003 as well, with a detail that says so;
- with ``X-APISECU-FD``: no file at that caisse: 23003 CNAF, 10003 MSA, 40003 RNCPS;
- otherwise: an unknown answer (a wrong URL must not pass for "nobody").
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
import pydantic
from google.protobuf import json_format

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, ErrorSource, provider_not_found
from runtime.providers import CNAF, CNAF_MSA, CNAV, MSA, RNCPS
from runtime.upstream import TokenSource, UpstreamClient
from services.cnaf.backend import Benefit, BenefitData, Indicator, IndicatorData, not_registered
from services.cnaf.settings import (
    PARTICIPATION_FAMILIALE_EAJE,
    PRESTATIONS,
    QUOTIENT_FAMILIAL,
    CnafSettings,
)
from services.common.answer_shape import AnswerShape, IsoDate, IsoDateOrDateTime
from services.common.api_secu import FD_HEADER, ask, error_code, identity_query

ORGANISATIONS: dict[str, tuple[str, ErrorSource]] = {
    "00810011": ("CNAF", CNAF),
    "00171001": ("MSA", MSA),
    "99430000": ("RNCPS", RNCPS),
}
"""X-APISECU-FD value → the organisation's name and the provider of its not-found code."""

_NOT_REGISTERED_CODES = frozenset({"40406", "40412"})
_NOT_IDENTIFIED_CODE = "40409"


class _Member(AnswerShape):
    nom_naissance: str
    nom_usage: str | None = None
    prenoms: str
    date_naissance: IsoDate
    sexe: Literal["M", "F"]


class _Address(AnswerShape):
    destinataire: str
    complement_information: str | None = None
    complement_information_geographique: str | None = None
    numero_libelle_voie: str | None = None
    lieu_dit: str | None = None
    code_postal_ville: str
    pays: str


class _QuotientFamilial(AnswerShape):
    valeur: int
    annee: int
    mois: int
    annee_calcul: int
    mois_calcul: int


class QuotientFamilialAnswer(AnswerShape):
    """The quotient familial answer this adapter expects (see the module's docstring)."""

    allocataires: list[_Member]
    enfants: list[_Member]
    adresse: _Address | None = None
    quotient_familial: _QuotientFamilial


class BenefitAnswer(AnswerShape):
    """A yes/no benefit answer this adapter expects (see the module's docstring)."""

    est_beneficiaire: bool
    avec_majoration: bool | None = None
    date_debut_droit: IsoDate | None = None


class IndicatorAnswer(AnswerShape):
    """The gateway's AEEH or ARS answer (see the module's docstring)."""

    indicateur: Literal["ALLOCATAIRE", "OUVRANT_DROIT", "NON_BENEFICIAIRE"]
    date_indicateur: IsoDateOrDateTime | Literal[""] | None = pydantic.Field(
        default=None, alias="dateIndicateur"
    )


class _EajeMember(AnswerShape):
    nom_naissance: str = pydantic.Field(alias="nomNaissance")
    nom_usage: str | None = pydantic.Field(default=None, alias="nomUsage")
    prenoms: str = pydantic.Field(alias="listePrenoms")
    date_naissance: IsoDate = pydantic.Field(alias="dateNaissance")
    sexe: Literal["M", "F"] = pydantic.Field(alias="genre")
    code_cog_insee_commune_naissance: str | None = pydantic.Field(default=None, alias="cogNaissance")


class _EajeAddress(AnswerShape):
    destinataire: str = pydantic.Field(alias="identite")
    complement_information: str | None = pydantic.Field(default=None, alias="complementInformation")
    complement_information_geographique: str | None = pydantic.Field(
        default=None, alias="complementInformationGeo"
    )
    numero_libelle_voie: str | None = pydantic.Field(default=None, alias="numeroLibelleVoie")
    lieu_dit: str | None = pydantic.Field(default=None, alias="lieuDit")
    code_postal_ville: str = pydantic.Field(alias="codePostalVille")
    pays: str


class ParticipationFamilialeEajeAnswer(AnswerShape):
    """The gateway's EAJE answer (see the module's docstring)."""

    allocataires: list[_EajeMember]
    enfants: list[_EajeMember] = pydantic.Field(default_factory=list)
    adresse: _EajeAddress
    nombre_enfants_a_charge: int = pydantic.Field(alias="nombreEnfantACharge")
    nombre_enfants_beneficiaire_aeeh: int = pydantic.Field(alias="nombreBeneficiaireAEH")
    montant_ressources: int = pydantic.Field(alias="montantRessources")
    annee: int | Annotated[str, pydantic.StringConstraints(pattern=r"^\d{4}$")]


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


def _refusal(response: httpx.Response) -> ApiError | None:
    """What a 404 of the gateway says of the person; None when it says nothing recognisable."""
    code = error_code(response)
    if code in _NOT_REGISTERED_CODES:
        return not_registered()
    if code == _NOT_IDENTIFIED_CODE:
        return not_identified()
    organisation = ORGANISATIONS.get(response.headers.get(FD_HEADER, ""))
    return None if organisation is None else no_file_at(*organisation)


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
        tokens: dict[str, TokenSource] = {}
        paths: dict[str, str] = {}
        for name in PRESTATIONS:
            client = settings.upstream_clients[name]
            tokens[name] = settings.upstream_tokens(http, client)
            paths[name] = client.path or name
        return cls(http, tokens, paths)

    async def _ask(self, prestation: str, query: dict[str, str], caller: Caller) -> httpx.Response:
        return await ask(
            self._http,
            self._paths[prestation],
            query,
            caller,
            tokens=self._tokens[prestation],
            not_found=_refusal,
        )

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

    async def indicator(
        self,
        indicator: Indicator,
        data_type: type[IndicatorData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> IndicatorData:
        """The person's indicator for the benefit (AEEH, ARS), as its v3 data object."""
        response = await self._ask(indicator.value, identity_query(identity), caller)
        answer = self._http.decode(response, IndicatorAnswer)
        data = data_type(status=answer.indicateur.lower())
        if answer.indicateur != "NON_BENEFICIAIRE" and answer.date_indicateur:
            data.date_debut_droit = answer.date_indicateur[:10]
        return data

    async def participation_familiale_eaje(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> cnaf_pb2.ParticipationFamilialeEajeData:
        """The person's household, as its v3 data object, eligible or not."""
        response = await self._ask(PARTICIPATION_FAMILIALE_EAJE, identity_query(identity), caller)
        answer = self._http.decode(response, ParticipationFamilialeEajeAnswer)
        fields = answer.model_dump(include={"allocataires", "enfants", "adresse"}, exclude_none=True)
        fields["parametres_calcul_participation_familiale"] = {
            "nombre_enfants_a_charge": answer.nombre_enfants_a_charge,
            "nombre_enfants_beneficiaire_aeeh": answer.nombre_enfants_beneficiaire_aeeh,
            "base_ressources_annuelles": {
                "valeur": answer.montant_ressources,
                "annee_calcul": int(answer.annee),
            },
        }
        return json_format.ParseDict(fields, cnaf_pb2.ParticipationFamilialeEajeData())

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
