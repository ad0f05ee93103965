"""The sdh upstream backend: the sports ministry's register of sportspeople.

Request: ``GET <UPSTREAM_BASE_URL>/<UPSTREAM_PATH>/<identifiant>`` with an OAuth2
bearer token (client id and secret in the token request's form body). The answer,
as the ministry gives it (fields the adapter does not read left out)::

    {"nom": "…", "prenom": "…", "nomUsage": "…" | null, "dateNaissance": "1990-06-15T00:00:00",
     "genre": "M" | "F",
     "fichesHN": [{"fiche": 879034, "debutDroits": "2026-01-01T00:00:00", "finDroits": "…",
                   "federation": 68, "nomFederation": "…", "nomCourtFederation": "…",
                   "categorie": 4, "libCategorie": "Elite", "valeur": 128, "hautNiveau": true}],
     "fichesSportif": [{"active": true, "etablissement": 980, "nomEtablissement": "…",
                        "region": 76, "nomRegion": "…"}]}

Today's status is the first list record (``fichesHN``) whose rights period holds
today; every other record, past or to come, is a previous status. The
establishment and region are those of the first active training record
(``fichesSportif``), for today's status and the others alike, as the real API
reads them: the ministry keeps no history of them. Codes and values, integers
upstream, are strings in the v3 API.

404 is 41003; any other status but 200 is 41999, save the transport statuses
(429, 502, 503, 504); an answer of another shape is 41999.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pydantic

from apiparticulier.sdh.v1 import sdh_pb2
from runtime.caller import Caller
from runtime.providers import SDH
from runtime.upstream import TokenSource, UpstreamClient
from services.common.answer_shape import AnswerShape, IsoDateOrDateTime
from services.common.caller_headers import CallerHeaders
from services.sdh.backend import sportif_not_found
from services.sdh.settings import SdhSettings

_CALLER_HEADERS = CallerHeaders()


class _FicheHN(AnswerShape):
    fiche: int
    debut: IsoDateOrDateTime = pydantic.Field(alias="debutDroits")
    fin: IsoDateOrDateTime = pydantic.Field(alias="finDroits")
    federation: int | None = None
    nom_federation: str | None = pydantic.Field(default=None, alias="nomFederation")
    nom_court_federation: str | None = pydantic.Field(default=None, alias="nomCourtFederation")
    categorie: int | None = None
    lib_categorie: str | None = pydantic.Field(default=None, alias="libCategorie")
    valeur: int | None = None
    haut_niveau: bool = pydantic.Field(alias="hautNiveau")

    def holds(self, day: dt.date) -> bool:
        """Whether the rights period holds ``day``, both ends included."""
        return self.debut[:10] <= day.isoformat() <= self.fin[:10]


class _FicheSportif(AnswerShape):
    active: bool
    etablissement: int | None = None
    nom_etablissement: str | None = pydantic.Field(default=None, alias="nomEtablissement")
    region: int | None = None
    nom_region: str | None = pydantic.Field(default=None, alias="nomRegion")


class SportifAnswer(AnswerShape):
    """The answer this adapter expects (see the module's docstring)."""

    nom: str
    prenom: str | None = None
    nom_usage: str | None = pydantic.Field(default=None, alias="nomUsage")
    date_naissance: IsoDateOrDateTime | None = pydantic.Field(default=None, alias="dateNaissance")
    genre: str | None = None
    fiches_hn: tuple[_FicheHN, ...] = pydantic.Field(default=(), alias="fichesHN")
    fiches_sportif: tuple[_FicheSportif, ...] = pydantic.Field(default=(), alias="fichesSportif")


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _federation(fiche: _FicheHN) -> sdh_pb2.Federation:
    return sdh_pb2.Federation(
        code_federation=_text(fiche.federation),
        nom_federation=fiche.nom_federation,
        nom_court_federation=fiche.nom_court_federation,
    )


def _categorie(fiche: _FicheHN) -> sdh_pb2.Categorie:
    return sdh_pb2.Categorie(
        code_categorie=_text(fiche.categorie), nom_categorie=fiche.lib_categorie, valeur=_text(fiche.valeur)
    )


def _periode(fiche: _FicheHN) -> sdh_pb2.Periode:
    return sdh_pb2.Periode(date_debut_statut=fiche.debut[:10], date_fin_statut=fiche.fin[:10])


def _statut(
    fiche: _FicheHN, etablissement: sdh_pb2.Etablissement | None, region: sdh_pb2.Region | None
) -> dict[str, Any]:
    """The fields a list record gives today's status and the others alike."""
    return {
        "periode": _periode(fiche),
        "federation": _federation(fiche),
        "etablissement": etablissement,
        "region": region,
        "categorie": _categorie(fiche),
        "sportif_de_haut_niveau": fiche.haut_niveau,
    }


def statut_sportif(answer: SportifAnswer, today: dt.date) -> sdh_pb2.StatutSportifData:
    """The v3 data object of the ministry's answer, as it stands on ``today``."""
    current = next((fiche for fiche in answer.fiches_hn if fiche.holds(today)), None)
    active = next((fiche for fiche in answer.fiches_sportif if fiche.active), None)
    etablissement = region = None
    if active is not None:
        etablissement = sdh_pb2.Etablissement(
            code_etablissement=_text(active.etablissement), nom_etablissement=active.nom_etablissement
        )
        region = sdh_pb2.Region(code_region=_text(active.region), nom_region=active.nom_region)
    data = sdh_pb2.StatutSportifData(
        identite=sdh_pb2.Identite(
            nom_naissance=answer.nom,
            nom_usage=answer.nom_usage,
            prenoms=answer.prenom,
            date_naissance=answer.date_naissance[:10] if answer.date_naissance else None,
            sexe=answer.genre,
        ),
        est_sportif_de_haut_niveau=current is not None and current.haut_niveau,
        a_ete_sportif_de_haut_niveau=any(fiche.haut_niveau for fiche in answer.fiches_hn),
        informations_statuts_precedents=[
            sdh_pb2.StatutPrecedent(fiche=fiche.fiche, **_statut(fiche, etablissement, region))
            for fiche in answer.fiches_hn
            if fiche is not current
        ],
    )
    if current is not None:
        data.informations_statut.CopyFrom(
            sdh_pb2.InformationsStatut(**_statut(current, etablissement, region))
        )
    return data


class UpstreamSdhBackend:
    """Asks the sports ministry's register."""

    def __init__(
        self,
        http: UpstreamClient,
        tokens: TokenSource,
        path: str,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        """Ask through ``http`` on ``path`` with tokens from ``tokens``; ``today`` dates the statuses."""
        self._http = http
        self._tokens = tokens
        self._path = path.rstrip("/")
        self._today = today

    @classmethod
    def from_settings(cls, settings: SdhSettings) -> UpstreamSdhBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(SDH)
        return cls(http, settings.upstream_tokens(http, credentials_in_body=True), settings.upstream_path)

    async def statut_sportif(self, identifiant: str, caller: Caller) -> sdh_pb2.StatutSportifData:
        """The sportsperson's statuses, as the v3 data object."""
        response = await self._http.send(
            "GET",
            f"{self._path}/{quote(identifiant, safe='')}",
            caller,
            headers=_CALLER_HEADERS.for_caller(caller),
            token_source=self._tokens,
        )
        if response.status_code == httpx.codes.NOT_FOUND:
            raise sportif_not_found()
        if response.status_code != httpx.codes.OK:
            raise self._http.error_for_status(response)
        return statut_sportif(self._http.decode(response, SportifAnswer), self._today())

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
