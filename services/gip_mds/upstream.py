"""The gip_mds upstream backend: the GIP-MDS's generic contract search.

Request: ``GET <UPSTREAM_BASE_URL>/<UPSTREAM_PATH>`` with an OAuth2 bearer token
(client id and secret in the token request's form body) and the query::

    nom=<birth name, upper case>&prenom=<first first name>&dateNaissance=DDMMYYYY
    &listeCodeNature=89&comparaisonCertifiee=1

(contracts of nature 89, the service civique; the answer echoes the identity as
the SNGI certifies it). The answer, as the GIP-MDS gives it::

    {"individu": {"nomFamilleSngi": "…", "prenomsSngi": "…", "dateNaissanceSngi": "DDMMYYYY",
                  "entreprise": [{"siren": "…", "raisonSociale": "…", "etablissement": [
                      {"siret": "…", "contrat": [{"dateDebutContrat": "YYYY-MM-DD",
                                                  "dateFinContrat": "YYYY-MM-DD" | null,
                                                  "motifRupture": "01" | "99" | … | null}]}]}]},
     "retour": {"codeRetour": "OK", "message": "…"}}

Only the first contract counts (first entreprise, first établissement, first
contract), as the real API reads it: it runs when it has no end date or its
rupture motive is 99 (not broken) or 100 (end not yet declared), and is over
otherwise. Its host is the établissement's SIRET and the entreprise's name.

Refusals come as ``{"erreurs": [{"code": "…", "message": "…"}]}``: 404
``NOT_FOUND_CONTRAT`` is a person without contract (both statuses empty), 404
``NOT_FOUND_INDIVIDU`` is 31003, 413 ``TOO_MANY_INDIVIDU`` is 00391. Any other
answer is 31999, save the transport statuses (429, 502, 503, 504).
"""

from __future__ import annotations

import httpx
import pydantic

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gip_mds.v1 import gip_mds_pb2
from runtime.caller import Caller
from runtime.providers import GIP_MDS
from runtime.upstream import TokenSource, UpstreamClient
from services.common.answer_shape import AnswerShape, IsoDate
from services.common.caller_headers import CallerHeaders
from services.common.pivot import ascii_look_alikes
from services.gip_mds.backend import identity_ambiguous, person_not_found
from services.gip_mds.settings import GipMdsSettings

_CALLER_HEADERS = CallerHeaders()
_NATURE_SERVICE_CIVIQUE = "89"
_RUNNING_MOTIVES = frozenset({"99", "100"})
"""Rupture motives of a contract that still runs: not broken, end not yet declared."""


class _Contrat(AnswerShape):
    date_debut: IsoDate | None = pydantic.Field(default=None, alias="dateDebutContrat")
    date_fin: IsoDate | None = pydantic.Field(default=None, alias="dateFinContrat")
    motif_rupture: str | None = pydantic.Field(default=None, alias="motifRupture")


class _Etablissement(AnswerShape):
    siret: str | None = None
    contrat: tuple[_Contrat, ...] = ()


class _Entreprise(AnswerShape):
    raison_sociale: str | None = pydantic.Field(default=None, alias="raisonSociale")
    etablissement: tuple[_Etablissement, ...] = ()


class _Individu(AnswerShape):
    entreprise: tuple[_Entreprise, ...] = ()


class ContratsAnswer(AnswerShape):
    """The answer of a search that found the person (see the module's docstring)."""

    individu: _Individu


class _Erreur(AnswerShape):
    code: str


class ErreursAnswer(AnswerShape):
    """The answer of a refused search."""

    erreurs: tuple[_Erreur, ...]


def search_query(identity: identity_pb2.IdentityPivot) -> dict[str, str]:
    """The query of a search for service civique contracts."""
    return {
        "nom": ascii_look_alikes(identity.nom_naissance).upper(),
        "prenom": ascii_look_alikes(identity.prenoms[0]),
        "dateNaissance": f"{identity.jour_date_naissance:02d}{identity.mois_date_naissance:02d}"
        f"{identity.annee_date_naissance:04d}",
        "listeCodeNature": _NATURE_SERVICE_CIVIQUE,
        "comparaisonCertifiee": "1",
    }


def no_contract() -> gip_mds_pb2.StatutContrat:
    """A status without contract: every field null, the host included (an object of nulls)."""
    return gip_mds_pb2.StatutContrat(contrat_trouve=False, organisme_accueil=gip_mds_pb2.OrganismeAccueil())


def service_civique(individu: _Individu) -> gip_mds_pb2.ServiceCiviqueData:
    """The v3 data object of the person's first contract, running or over."""
    entreprise = next(iter(individu.entreprise), None)
    etablissement = next(iter(entreprise.etablissement), None) if entreprise else None
    contrat = next(iter(etablissement.contrat), None) if etablissement else None
    if entreprise is None or etablissement is None or contrat is None:
        return gip_mds_pb2.ServiceCiviqueData(statut_actuel=no_contract(), statut_passe=no_contract())
    found = gip_mds_pb2.StatutContrat(
        contrat_trouve=True,
        organisme_accueil=gip_mds_pb2.OrganismeAccueil(
            siret=etablissement.siret, raison_sociale=entreprise.raison_sociale
        ),
        date_debut_contrat=contrat.date_debut,
        date_fin_contrat=contrat.date_fin,
    )
    if contrat.date_fin is None or contrat.motif_rupture in _RUNNING_MOTIVES:
        return gip_mds_pb2.ServiceCiviqueData(statut_actuel=found, statut_passe=no_contract())
    return gip_mds_pb2.ServiceCiviqueData(statut_actuel=no_contract(), statut_passe=found)


class UpstreamGipMdsBackend:
    """Asks the GIP-MDS's contract search."""

    def __init__(self, http: UpstreamClient, tokens: TokenSource, path: str) -> None:
        """Ask through ``http`` on ``path`` with tokens from ``tokens``."""
        self._http = http
        self._tokens = tokens
        self._path = path

    @classmethod
    def from_settings(cls, settings: GipMdsSettings) -> UpstreamGipMdsBackend:
        """The backend the settings describe (they were checked complete at start)."""
        http = settings.upstream_client(GIP_MDS)
        return cls(http, settings.upstream_tokens(http, credentials_in_body=True), settings.upstream_path)

    async def service_civique(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> gip_mds_pb2.ServiceCiviqueData:
        """The person's current and past service civique contract, as the v3 data object."""
        response = await self._http.send(
            "GET",
            self._path,
            caller,
            params=search_query(identity),
            headers=_CALLER_HEADERS.for_caller(caller),
            token_source=self._tokens,
        )
        if response.status_code == httpx.codes.OK:
            return service_civique(self._http.decode(response, ContratsAnswer).individu)
        if response.status_code not in (httpx.codes.NOT_FOUND, httpx.codes.REQUEST_ENTITY_TOO_LARGE):
            raise self._http.error_for_status(response)
        codes = {erreur.code for erreur in self._http.decode(response, ErreursAnswer).erreurs}
        if response.status_code == httpx.codes.REQUEST_ENTITY_TOO_LARGE and "TOO_MANY_INDIVIDU" in codes:
            raise identity_ambiguous()
        if "NOT_FOUND_INDIVIDU" in codes:
            raise person_not_found()
        if "NOT_FOUND_CONTRAT" in codes:
            return gip_mds_pb2.ServiceCiviqueData(statut_actuel=no_contract(), statut_passe=no_contract())
        raise self._http.unknown_answer(response, "error_code")

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
