"""Validation of a schooling search, per the v4 contract of the MEN API.

Besides the identity pivot (full birth date and sex), a search names a school
year and exactly one search criterion: one establishment by its UAI, or one
perimeter type (BCN codes of départements, or of académie regions), optionally
narrowed to one degree. Every bad field is reported at once, one violation
each, without its value; the error code is that of the first kind of mistake in
the order the real API checks them (identity first).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence

from apiparticulier.men.v1 import men_pb2
from runtime.errors import ApiError, FieldViolation, api_error, invalid_civility
from services.common.validation import MEN_IDENTITY, validate_identity
from services.men.backend import Perimetre, PerimetreKind, ScolariteQuery

DEGRES = frozenset({"1D", "2D"})
"""BCN degree codes: 1D for primary schools, 2D for collèges and lycées."""
YEARS_BACK = 10
"""How many school years back a search may go; the ministry keeps the current ones."""

_SCHOOL_YEAR = re.compile(r"([0-9]{4})(?:-([0-9]{4}))?")
_UAI = re.compile(r"[0-9]{7}[A-Z]")
# BCN N_DEPARTEMENT codes have three characters: 001 to 095, with 02A and 02B for
# Corsica, and 97x/98x overseas. Any code of that shape passes, so a département
# the table gains later is not refused here; the ministry answers for the rest.
_DEPARTEMENT = re.compile(r"0(?:0[1-9]|[1-9][0-9]|2[AB])|9[78][0-9]")
_MAX_DEPARTEMENTS = 110
# BCN N_REGION_ACADEMIQUE codes: two digits, 01 to 18.
_REGION = re.compile(r"[0-9]{2}")
_REGION_COUNT = 18

_CODE_ETABLISSEMENT = "codeEtablissement"
_DEPARTEMENTS = "codesBcnDepartements"
_REGIONS = "codesBcnRegions"

_Refusal = Callable[[Sequence[FieldViolation]], ApiError]


def _refusal(code: str) -> _Refusal:
    """The refusal of a MEN parameter code; its texts are the catalogue's (`runtime.error_catalogue`)."""

    def refuse(violations: Sequence[FieldViolation]) -> ApiError:
        return api_error(code, violations=violations)

    return refuse


_EXCLUSIVE_FILTERS = _refusal("00419")
_BAD_SCHOOL_YEAR = _refusal("00411")
_BAD_CODE_ETABLISSEMENT = _refusal("00410")
_BAD_DEGRE = _refusal("00412")
_SEVERAL_PERIMETERS = _refusal("00413")
_MISSING_CRITERION = _refusal("00415")
_BAD_DEPARTEMENTS = _refusal("00416")
_BAD_REGIONS = _refusal("00417")


def validate_annee_scolaire(value: str, today: dt.date) -> tuple[int | None, list[FieldViolation]]:
    """Check a school year: "YYYY-YYYY" with consecutive years, or "YYYY" for the year it starts.

    Args:
        value: The school year as received.
        today: The current date; a search goes at most `YEARS_BACK` years back
            and at most one year ahead.

    Returns:
        The year the school year starts, or None with the violation.
    """
    match = _SCHOOL_YEAR.fullmatch(value)
    if match is None:
        expected = "YYYY-YYYY (two consecutive years) or YYYY (the year it starts)"
        description = f"required: {expected}" if not value else f"must be {expected}"
        return None, [FieldViolation("anneeScolaire", description)]
    first = int(match[1])
    if match[2] is not None and int(match[2]) != first + 1:
        return None, [FieldViolation("anneeScolaire", "the two years must be consecutive")]
    if not today.year - YEARS_BACK <= first <= today.year + 1:
        return None, [
            FieldViolation(
                "anneeScolaire", f"must start at most {YEARS_BACK} years ago and at the latest next year"
            )
        ]
    return first, []


def _codes(values: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased codes without duplicates, in the caller's order."""
    return tuple(dict.fromkeys(value.upper() for value in values))


def validate_departements(codes: Sequence[str]) -> list[FieldViolation]:
    """Check a list of BCN département codes (3 characters, e.g. 075, 02A, 971)."""
    if len(codes) > _MAX_DEPARTEMENTS:
        return [FieldViolation(_DEPARTEMENTS, f"at most {_MAX_DEPARTEMENTS} codes")]
    if not all(_DEPARTEMENT.fullmatch(code) for code in codes):
        return [FieldViolation(_DEPARTEMENTS, "each a BCN département code of 3 characters, e.g. 075 or 02A")]
    return []


def validate_regions(codes: Sequence[str]) -> list[FieldViolation]:
    """Check a list of BCN académie region codes (2 digits, 01 to 18)."""
    if len(codes) > _REGION_COUNT or not all(
        _REGION.fullmatch(code) and 1 <= int(code) <= _REGION_COUNT for code in codes
    ):
        return [FieldViolation(_REGIONS, f"each a BCN académie region code, 01 to {_REGION_COUNT}")]
    return []


def scolarite_query(request: men_pb2.GetScolariteByIdentityRequest, today: dt.date) -> ScolariteQuery:
    """The validated search a schooling request asks for.

    Args:
        request: The request as received.
        today: The current date, for birth dates and school years.

    Returns:
        The search, with codes upper-cased and perimeter codes deduplicated.

    Raises:
        ApiError: INVALID_ARGUMENT with one violation per bad field: 00366 when the
            identity is bad, else 00419 when an establishment and a perimeter are
            both given, else the code of the first bad MEN parameter.
    """
    identity_violations = validate_identity(request.identite, MEN_IDENTITY, today, "identite")
    first_year, year_violations = validate_annee_scolaire(request.annee_scolaire, today)
    code = request.code_etablissement.upper()
    departements = _codes(request.codes_bcn_departements)
    regions = _codes(request.codes_bcn_regions)
    degre = request.degre_etablissement.upper() or None

    exclusive: list[FieldViolation] = []
    missing: list[FieldViolation] = []
    several: list[FieldViolation] = []
    bad_code: list[FieldViolation] = []
    bad_departements: list[FieldViolation] = []
    bad_regions: list[FieldViolation] = []
    perimeter_fields = [name for name, given in ((_DEPARTEMENTS, departements), (_REGIONS, regions)) if given]
    if code and perimeter_fields:
        exclusive = [
            FieldViolation(name, "codeEtablissement and the perimeter lists exclude each other")
            for name in (_CODE_ETABLISSEMENT, *perimeter_fields)
        ]
    elif len(perimeter_fields) > 1:
        several = [
            FieldViolation(name, "give one perimeter type: codesBcnDepartements or codesBcnRegions")
            for name in perimeter_fields
        ]
    elif code:
        if not _UAI.fullmatch(code):
            bad_code = [FieldViolation(_CODE_ETABLISSEMENT, "must be a UAI: 7 digits and 1 letter")]
    elif departements:
        bad_departements = validate_departements(departements)
    elif regions:
        bad_regions = validate_regions(regions)
    else:
        missing = [
            FieldViolation(
                _CODE_ETABLISSEMENT,
                "required: codeEtablissement, or one perimeter list (codesBcnDepartements or "
                "codesBcnRegions)",
            )
        ]
    bad_degre = (
        [FieldViolation("degreEtablissement", "must be 1D or 2D")]
        if degre is not None and degre not in DEGRES
        else []
    )

    checks: list[tuple[_Refusal, list[FieldViolation]]] = [
        (invalid_civility, identity_violations),
        (_EXCLUSIVE_FILTERS, exclusive),
        (_BAD_SCHOOL_YEAR, year_violations),
        (_MISSING_CRITERION, missing),
        (_BAD_CODE_ETABLISSEMENT, bad_code),
        (_BAD_DEGRE, bad_degre),
        (_SEVERAL_PERIMETERS, several),
        (_BAD_DEPARTEMENTS, bad_departements),
        (_BAD_REGIONS, bad_regions),
    ]
    violations = [violation for _, found in checks for violation in found]
    if violations or first_year is None:  # no year means a year violation: for the type checker
        refuse = next((refusal for refusal, found in checks if found), _BAD_SCHOOL_YEAR)
        raise refuse(violations)
    perimetre = None
    if departements:
        perimetre = Perimetre(PerimetreKind.DEPARTEMENT, departements)
    elif regions:
        perimetre = Perimetre(PerimetreKind.REGION, regions)
    return ScolariteQuery(
        identity=request.identite,
        first_year=first_year,
        code_etablissement=code or None,
        degre_etablissement=degre,
        perimetre=perimetre,
    )
