"""The rules of a schooling search (VALIDATION.md §6.3), one chain for every version of the MEN API.

Besides the identity (the civility rules and the sex), a search names a school year and its
geography: one establishment by its UAI, or one perimeter (BCN codes of départements, or of
académie regions) with the establishments' degree. The geography is decided as the real API
decides it: an establishment and a perimeter together (00419), an establishment alone (00410),
a perimeter (00412 for its degree, then 00413, 00414, 00416 or 00417), or nothing (00415).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from apiparticulier.men.v1 import men_pb2
from runtime.errors import FieldViolation
from services.common.validation import CIVILITY, Subject, required_sex
from services.men.backend import Perimetre, PerimetreKind, ScolariteQuery

DEGRES = frozenset({"1D", "2D"})
"""BCN degree codes, case-sensitive: 1D for primary schools, 2D for collèges and lycées."""

_SCHOOL_YEAR = re.compile(r"([0-9]{4})(?:-[0-9]{4})?")
_UAI = re.compile(r"[0-9]{7}[A-Za-z0-9_]")
DEPARTEMENTS = frozenset(
    [f"{n:03d}" for n in range(1, 96) if n != 20]
    + ["02A", "02B"]
    + [f"{n}" for n in range(971, 979)]
    + ["986", "987", "988"]
)
"""The BCN list of départements (``codes_bcn_departements.yml``): 107 codes, no ``020``."""
REGIONS = frozenset(f"{n:02d}" for n in range(1, 19))
"""The BCN list of académie regions: ``01`` to ``18``."""

_CODE_ETABLISSEMENT = "codeEtablissement"
_DEPARTEMENTS = "codesBcnDepartements"
_REGIONS = "codesBcnRegions"


def _perimeter(codes: Sequence[str], known: frozenset[str], field: str, code: str) -> list[FieldViolation]:
    if all(value.strip() for value in codes):
        if all(value in known for value in codes):
            return []
        return [FieldViolation(field, "codes of the BCN list", code)]
    return [FieldViolation(field, "a list of codes, none empty", "00414")]


def geography(subject: Subject) -> list[FieldViolation]:
    """The search's geography, decided as the real API does (the module's docstring)."""
    request: men_pb2.GetScolariteByIdentityRequest = subject.request
    uai = request.code_etablissement
    departements, regions = list(request.codes_bcn_departements), list(request.codes_bcn_regions)
    if uai and (departements or regions):
        return [FieldViolation(_CODE_ETABLISSEMENT, "an establishment or a perimeter, not both", "00419")]
    if uai:
        if _UAI.fullmatch(uai):
            return []
        return [FieldViolation(_CODE_ETABLISSEMENT, "a UAI: 7 digits and 1 letter", "00410")]
    if not (departements or regions):
        return [FieldViolation(_CODE_ETABLISSEMENT, "an establishment or a perimeter", "00415")]
    found = []
    if request.degre_etablissement not in DEGRES:
        found.append(FieldViolation("degreEtablissement", "required with a perimeter: 1D or 2D", "00412"))
    if departements and regions:
        found.append(FieldViolation(_REGIONS, "one perimeter type", "00413"))
    elif departements:
        found += _perimeter(departements, DEPARTEMENTS, _DEPARTEMENTS, "00416")
    else:
        found += _perimeter(regions, REGIONS, _REGIONS, "00417")
    return found


def school_year(subject: Subject) -> list[FieldViolation]:
    """00411: ``anneeScolaire``, required: YYYY or YYYY-YYYY (the format only)."""
    if _SCHOOL_YEAR.fullmatch(subject.request.annee_scolaire):
        return []
    return [FieldViolation("anneeScolaire", "required: YYYY or YYYY-YYYY", "00411")]


SCOLARITE = CIVILITY.then(required_sex, geography, school_year)
"""A schooling search, every version: civility, sex, geography, school year."""


def scolarite_query(request: men_pb2.GetScolariteByIdentityRequest, today: dt.date) -> ScolariteQuery:
    """The search a schooling request asks for, once it meets `SCOLARITE`.

    Args:
        request: The request as received.
        today: The current date.

    Returns:
        The search: the school year's first year, codes upper-cased, perimeter codes deduplicated.

    Raises:
        ApiError: INVALID_ARGUMENT, one violation per broken rule (`SCOLARITE`).
    """
    identity = SCOLARITE.check(Subject(request.identite, today, request=request))
    first_year = int(request.annee_scolaire[:4])
    departements = tuple(dict.fromkeys(request.codes_bcn_departements))
    regions = tuple(dict.fromkeys(request.codes_bcn_regions))
    code = request.code_etablissement.upper()
    perimetre = None
    if departements:
        perimetre = Perimetre(PerimetreKind.DEPARTEMENT, departements)
    elif regions:
        perimetre = Perimetre(PerimetreKind.REGION, regions)
    return ScolariteQuery(
        identity=identity,
        first_year=first_year,
        code_etablissement=code or None,
        degre_etablissement=None if code else request.degre_etablissement,
        perimetre=perimetre,
    )
