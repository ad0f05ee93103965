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

    async def scolarite(self, query: ScolariteQuery, caller: Caller) -> men_pb2.ScolariteData:
        """The pupil's schooling in the school year, within the query's establishment or perimeter."""

    async def close(self) -> None:
        """Release the backend's connections."""
