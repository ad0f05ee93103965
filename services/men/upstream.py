"""The men upstream backend: the Éducation nationale's schooling directory.

Request: ``POST <UPSTREAM_BASE_URL>/<UPSTREAM_PATH>`` with an OAuth2 bearer token
(client credentials sent as HTTP Basic), the SIRET of the public body that
receives the data in ``X-Siret-Partenaire``, the request id in
``X-Correlation-ID``, and the JSON body::

    {"nom": "…", "prenom": "<first first name>", "sexe": 1 (male) | 2 (female),
     "date-naissance": "YYYY-MM-DD", "annee-scolaire": "2026-2027",
     "scope": "men_statut_scolarite", "degre-etablissement": "1D" | "2D" (when asked),
     "type-perimetre": "departement" | "region", "valeurs-perimetre": ["075", …]}

A search in one establishment sends ``"code-uai": "<UAI>"`` instead of the
perimeter, as the ministry's search by establishment takes it.

The answer, as the ministry gives it::

    {"identification": {"nom": "…", "prenom": "…", "sexe": 1 | 2, "date-naissance": "YYYY-MM-DD",
                        "annee-scolaire": "2026-2027",
                        "etablissement": {"code-uai": "0130001A", "ministere-tutelle": "06"}},
     "info-scolarite": {"est-scolarise": true, "statut-eleve": {"code": "ST", "libelle": "SCOLAIRE"},
                        "code-mef-stat": "…", "libelle-long_mef": "…", "code-regime": "2" | null},
     "info-bourse": {"est-boursier": true, "niveau-bourse": 3} | null}

An answer holding neither ``identification`` nor ``info-scolarite`` (such as
``{}``) is the ministry finding no schooling: 30003, like a 404. Types are
checked strictly; any other shape, one block without the other included, is an
unknown answer (30999). Fields the adapter does not know are ignored.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import pydantic

from apiparticulier.men.v1 import men_pb2
from runtime.caller import Caller
from runtime.providers import MEN
from runtime.upstream import TokenSource, UpstreamClient
from services.common.answer_shape import AnswerShape, IsoDate
from services.common.caller_headers import CallerHeaders
from services.common.pivot import birth_date
from services.men.backend import ScolariteQuery, pupil_not_found, regime_pensionnat
from services.men.settings import MenSettings

PARTNER_HEADER = "X-Siret-Partenaire"
_CALLER_HEADERS = CallerHeaders(recipient=PARTNER_HEADER)
_SCOPE = "men_statut_scolarite"
_SEXES = {"M": 1, "F": 2}
_SEXE_LETTERS = {1: "M", 2: "F"}


class _Etablissement(AnswerShape):
    code_uai: str = pydantic.Field(alias="code-uai")
    ministere_tutelle: str | None = pydantic.Field(default=None, alias="ministere-tutelle")


class _Identification(AnswerShape):
    nom: str
    prenom: str
    sexe: Literal[1, 2]
    date_naissance: IsoDate = pydantic.Field(alias="date-naissance")
    annee_scolaire: str | None = pydantic.Field(
        default=None, alias="annee-scolaire", pattern=r"^\d{4}-\d{4}$"
    )
    etablissement: _Etablissement


class _StatutEleve(AnswerShape):
    code: str
    libelle: str


class _InfoScolarite(AnswerShape):
    est_scolarise: bool = pydantic.Field(alias="est-scolarise")
    statut_eleve: _StatutEleve = pydantic.Field(alias="statut-eleve")
    code_mef_stat: str | None = pydantic.Field(default=None, alias="code-mef-stat")
    libelle_mef: str | None = pydantic.Field(default=None, alias="libelle-long_mef")
    code_regime: str | None = pydantic.Field(default=None, alias="code-regime")


class _InfoBourse(AnswerShape):
    est_boursier: bool = pydantic.Field(alias="est-boursier")
    niveau_bourse: int | None = pydantic.Field(default=None, alias="niveau-bourse", ge=0, le=10)


class ScolariteAnswer(AnswerShape):
    """The answer this adapter expects (see the module's docstring)."""

    identification: _Identification | None = None
    info_scolarite: _InfoScolarite | None = pydantic.Field(default=None, alias="info-scolarite")
    info_bourse: _InfoBourse | None = pydantic.Field(default=None, alias="info-bourse")


def request_body(query: ScolariteQuery) -> dict[str, Any]:
    """The JSON body of a search."""
    identity = query.identity
    body: dict[str, Any] = {
        "nom": identity.nom_naissance,
        "prenom": identity.prenoms[0] if identity.prenoms else "",
        "sexe": _SEXES.get(identity.sexe_etat_civil.upper(), 0),
        "date-naissance": birth_date(identity),
        "annee-scolaire": query.annee_scolaire,
        "scope": _SCOPE,
    }
    if query.degre_etablissement is not None:
        body["degre-etablissement"] = query.degre_etablissement
    if query.code_etablissement is not None:
        body["code-uai"] = query.code_etablissement
    elif query.perimetre is not None:
        body["type-perimetre"] = query.perimetre.kind.value
        body["valeurs-perimetre"] = list(query.perimetre.codes)
    return body


def scolarite_data(
    identification: _Identification, info: _InfoScolarite, bourse: _InfoBourse | None, annee_scolaire: str
) -> men_pb2.ScolariteV5Data:
    """The v5 data object of a found schooling; what the ministry does not send is null.

    Without ``info-bourse`` the scholarship is unknown, not refused: ``est_boursier``
    and ``echelon_bourse`` are null, as the real API sends them. Without
    ``code-regime`` the boarding regime is null (`regime_pensionnat`).
    """
    return men_pb2.ScolariteV5Data(
        identite=men_pb2.Identite(
            nom=identification.nom,
            prenom=identification.prenom,
            sexe=_SEXE_LETTERS[identification.sexe],
            date_naissance=identification.date_naissance,
        ),
        module_elementaire_formation=men_pb2.ModuleElementaireFormation(
            code_mef_stat=info.code_mef_stat, libelle=info.libelle_mef
        ),
        etablissement=men_pb2.Etablissement(
            code_uai=identification.etablissement.code_uai,
            code_ministere_tutelle=identification.etablissement.ministere_tutelle,
        ),
        annee_scolaire=identification.annee_scolaire or annee_scolaire,
        est_scolarise=info.est_scolarise,
        statut_eleve=men_pb2.StatutEleve(code=info.statut_eleve.code, libelle=info.statut_eleve.libelle),
        est_boursier=bourse.est_boursier if bourse is not None else None,
        echelon_bourse=bourse.niveau_bourse if bourse is not None else None,
        regime_pensionnat=regime_pensionnat(info.code_regime),
    )


class UpstreamMenBackend:
    """Asks the ministry's schooling directory."""

    def __init__(self, http: UpstreamClient, tokens: TokenSource, path: str) -> None:
        """Ask through ``http`` on ``path`` with tokens from ``tokens``."""
        self._http = http
        self._tokens = tokens
        self._path = path

    @classmethod
    def from_settings(cls, settings: MenSettings) -> UpstreamMenBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(MEN)
        return cls(http, settings.upstream_tokens(http), settings.upstream_path)

    async def scolarite(self, query: ScolariteQuery, caller: Caller) -> men_pb2.ScolariteV5Data:
        """The pupil's schooling in the school year, within the query's establishment or perimeter."""
        response = await self._http.send(
            "POST",
            self._path,
            caller,
            headers=_CALLER_HEADERS.for_caller(caller),
            json=request_body(query),
            token_source=self._tokens,
        )
        if response.status_code == httpx.codes.NOT_FOUND:
            raise pupil_not_found()
        if response.status_code != httpx.codes.OK:
            raise self._http.error_for_status(response)
        answer = self._http.decode(response, ScolariteAnswer)
        if answer.identification is None and answer.info_scolarite is None:
            raise pupil_not_found()
        if answer.identification is None or answer.info_scolarite is None:
            raise self._http.unknown_answer(response, "partial_schooling")
        return scolarite_data(
            answer.identification, answer.info_scolarite, answer.info_bourse, query.annee_scolaire
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
