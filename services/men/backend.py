"""What the men service asks of a backend, whichever one answers (sandbox or upstream)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.men.v1 import men_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, provider_not_found
from runtime.providers import MEN


def pupil_not_found() -> ApiError:
    """No pupil matches the identity, school year and search criterion (30003)."""
    # The v4 API's own text, unaccented as it is published.
    return provider_not_found(MEN, "Aucun eleve n'a pu etre trouve avec les criteres de recherche fournis")


REGIMES_PENSIONNAT: dict[str, str] = {
    "0": "Externe libre",
    "1": "Externe surveillé",
    "2": "Demi-pensionnaire dans l'établissement",
    "3": "Interne dans l'établissement",
    "4": "Interne externé",
    "5": "Interne hébergé",
    "6": "Demi-pensionnaire hors l'établissement",
}
"""The BCN's boarding regimes, by code, with the labels the real API gives them (NEWER-ENDPOINTS §1)."""


def regime_pensionnat(code: str | None) -> men_pb2.RegimePensionnat | None:
    """The v5 ``regime_pensionnat`` of the ministry's regime code.

    None (the object null) without a code; the code passed through and a null label
    for a code outside the BCN table, as the real API does.
    """
    if code is None:
        return None
    return men_pb2.RegimePensionnat(code=code, libelle=REGIMES_PENSIONNAT.get(code))


def v4_of(data: men_pb2.ScolariteV5Data) -> men_pb2.ScolariteData:
    """The v4 data object from the v5 one: every field under its number, without the boarding regime.

    The regime is cleared before the bytes change type: left in, it would travel on as an
    unknown field of the v4 answer, past the masking.
    """
    shared = men_pb2.ScolariteV5Data()
    shared.CopyFrom(data)
    shared.ClearField("regime_pensionnat")
    return men_pb2.ScolariteData.FromString(shared.SerializeToString())


class PerimetreKind(StrEnum):
    """The kinds of search perimeter, named as the ministry's API names them."""

    DEPARTEMENT = "departement"
    REGION = "region"


@dataclass(frozen=True, slots=True)
class Perimetre:
    """A search perimeter: BCN codes of départements or of académie regions."""

    kind: PerimetreKind
    codes: tuple[str, ...]
    """Upper-cased BCN codes, in the caller's order, without duplicates."""


@dataclass(frozen=True, slots=True)
class ScolariteQuery:
    """A validated schooling search: whom, which school year, and where to look.

    Exactly one of ``code_etablissement`` and ``perimetre`` is set.
    """

    identity: identity_pb2.IdentityPivot
    """The pupil: full birth date, sex, 1 to 3 first names."""
    first_year: int
    """Calendar year in which the school year starts (2026 for 2026-2027)."""
    code_etablissement: str | None = None
    """Upper-cased UAI of the one establishment to search."""
    degre_etablissement: str | None = None
    """Degree of the establishments to search: "1D" or "2D"; None for both."""
    perimetre: Perimetre | None = None
    """Départements or regions to search."""

    @property
    def annee_scolaire(self) -> str:
        """The school year as the API writes it, "YYYY-YYYY"."""
        return f"{self.first_year}-{self.first_year + 1}"


class MenBackend(Protocol):
    """A source of pupils' schooling. Raises `runtime.errors.ApiError` for every failure."""

    async def scolarite(self, query: ScolariteQuery, caller: Caller) -> men_pb2.ScolariteV5Data:
        """The pupil's schooling in the school year, within the query's establishment or perimeter (v5)."""

    async def close(self) -> None:
        """Release the backend's connections."""
