"""The request rules of the provider routes, as the real API checks them.

Source: ``shared/reference/api-particulier/VALIDATION.md`` (the real backend's validators,
newest version where the notes establish one). A route's rules are a `Chain` of steps,
declared once per route family: the identity chains below, the MEN search
(`services.men.validation`), the DSNJ one (`services.dsnj.validation`). A step checks one
parameter, or a group that the real API checks together, and reports each broken rule as one
`FieldViolation` carrying the rule's code (its texts in `runtime.error_catalogue`). A chain
runs every step and refuses the request with all the violations, in chain order, which is
the order of the real API's ``errors`` body (`runtime.errors.invalid_parameters`). Violations
name the field by its proto3 JSON path and never repeat its value, which may be personal data.

To give a new route its rules: compose its chain from the steps here (or new ones, each
returning the violations of one code), then call ``chain.check(Subject(...))`` in its
servicer method before the backend.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apiparticulier.common.v1 import identity_pb2
from runtime.context import call_of_context
from runtime.errors import ErrorSource, FieldViolation, invalid_civility, invalid_parameters

# -- what the rules read -------------------------------------------------------------------------


def refused_request_id() -> bool:
    """Whether the current call's caller sent a request id the CNAV routes refuse (00401)."""
    call = call_of_context()
    return call is not None and call.request_id_refused


@dataclass(frozen=True, slots=True)
class Subject:
    """What a chain checks: the identity pivot and the rest of the request."""

    identity: identity_pb2.IdentityPivot
    """The pivot as received, or as the gateway resolved it from FranceConnect."""
    today: dt.date
    """The current date, for the rules on dates."""
    prefix: str = "identite"
    """The pivot's JSON path in the request."""
    request: Any = None
    """The request message, for the route's parameters outside the pivot."""
    request_id_refused: bool = field(default_factory=refused_request_id)
    """The caller sent an ``x-request-id`` that is no UUID (`runtime.interceptors`)."""

    def path(self, name: str) -> str:
        """The JSON path of a pivot field."""
        return f"{self.prefix}.{name}"


Step = Callable[[Subject], list[FieldViolation]]
"""One step of a chain: the violations of the rules it checks, each with its code."""


@dataclass(frozen=True, slots=True)
class Chain:
    """The ordered rules of a route, every broken one reported.

    ``replacing`` holds the steps whose failure discards the violations found before them:
    the real CNAV birthplace step overwrites the errors collected so far (VALIDATION.md §2, A1).
    """

    steps: tuple[Step, ...]
    replacing: frozenset[Step] = frozenset()
    source: ErrorSource | None = None
    """The provider a refusal names, for chains holding a provider's own code (39400)."""

    def then(self, *steps: Step) -> Chain:
        """This chain followed by ``steps``."""
        return Chain((*self.steps, *steps), self.replacing, self.source)

    def violations(self, subject: Subject) -> list[FieldViolation]:
        """Every broken rule, in chain order."""
        found: list[FieldViolation] = []
        for step in self.steps:
            broken = step(subject)
            if broken and step in self.replacing:
                found = []
            found.extend(broken)
        return found

    def check(self, subject: Subject) -> identity_pb2.IdentityPivot:
        """The pivot, once every rule holds.

        Raises:
            ApiError: INVALID_ARGUMENT (HTTP 422) with one violation per broken rule; its code
                is the first violation's.
        """
        broken = self.violations(subject)
        if broken:
            named = self.source is not None and any(v.code[:2] == self.source.code for v in broken)
            raise invalid_parameters(broken, self.source if named else None)
        return subject.identity


# -- names ---------------------------------------------------------------------------------------

# "CNAV letters": ASCII letters, Latin-1 letters (not the multiplication and division signs),
# apostrophe, space, hyphen.
_NAME = re.compile(r"[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF' -]+")
_TYPOGRAPHIC_APOSTROPHE = "\u2019"


def is_cnav_name(value: str, *, typographic_apostrophe: bool = False) -> bool:
    """Whether a name is non-blank and of "CNAV letters" only (VALIDATION.md §5.1).

    Args:
        value: The name.
        typographic_apostrophe: U+2019 is read as ``'`` first, as the CNAV routes do.
    """
    if typographic_apostrophe:
        value = value.replace(_TYPOGRAPHIC_APOSTROPHE, "'")
    return bool(value.strip()) and _NAME.fullmatch(value) is not None


def _birth_name(code: str, *, typographic_apostrophe: bool = False) -> Step:
    def step(subject: Subject) -> list[FieldViolation]:
        name = subject.identity.nom_naissance
        if is_cnav_name(name, typographic_apostrophe=typographic_apostrophe):
            return []
        return [FieldViolation(subject.path("nomNaissance"), "required: letters, spaces, ' and -", code)]

    return step


def cnav_usage_name(subject: Subject) -> list[FieldViolation]:
    """00426: the usage name, when given, of CNAV letters (U+2019 read as ``'``)."""
    name = subject.identity.nom_usage
    if not name or is_cnav_name(name, typographic_apostrophe=True):
        return []
    return [FieldViolation(subject.path("nomUsage"), "letters, spaces, ' and -", "00426")]


def cnav_first_names(subject: Subject) -> list[FieldViolation]:
    """00367: first names optional; each given one of CNAV letters (U+2019 read as ``'``), none empty."""
    if all(is_cnav_name(name, typographic_apostrophe=True) for name in subject.identity.prenoms):
        return []
    return [FieldViolation(subject.path("prenoms"), "each first name: letters, spaces, ' and -", "00367")]


def civility_first_names(subject: Subject) -> list[FieldViolation]:
    """00421: at least one first name, none blank; any count, no character check."""
    names = subject.identity.prenoms
    if names and all(name.strip() for name in names):
        return []
    return [FieldViolation(subject.path("prenoms"), "required: one or more first names", "00421")]


def dsnj_first_names(subject: Subject) -> list[FieldViolation]:
    """00421 (DSNJ): at least one first name, each of CNAV letters."""
    names = subject.identity.prenoms
    if names and all(is_cnav_name(name) for name in names):
        return []
    return [FieldViolation(subject.path("prenoms"), "required: first names of letters, ' and -", "00421")]


cnav_birth_name = _birth_name("00420", typographic_apostrophe=True)
"""00420 (CNAV): the birth name, required, of CNAV letters (U+2019 read as ``'``)."""
civility_birth_name = _birth_name("00420")
"""00420: the birth name, required, of CNAV letters."""

# -- sex, places ---------------------------------------------------------------------------------


def optional_sex(subject: Subject) -> list[FieldViolation]:
    """00427 (CNAV): the sex, when given, M or F in any case."""
    sex = subject.identity.sexe_etat_civil
    if not sex or sex.upper() in ("M", "F"):
        return []
    return [FieldViolation(subject.path("sexeEtatCivil"), "M or F", "00427")]


def required_sex(subject: Subject) -> list[FieldViolation]:
    """00427: the sex, required, M or F in any case."""
    if subject.identity.sexe_etat_civil.upper() in ("M", "F"):
        return []
    return [FieldViolation(subject.path("sexeEtatCivil"), "required: M or F", "00427")]


_COUNTRY = re.compile(r"99[0-9]{3}|92352")
# A département part (01 to 19, 21 to 99, 2A, 2B: never 00 or 20) and 3 digits.
_COMMUNE = re.compile(r"(?:0[1-9]|1[0-9]|2[1-9AB]|[3-9][0-9])[0-9]{3}")
_TRANSCOGAGE_DEPARTEMENT = re.compile(r"2[AB]|97[1-46]|0[1-9]|[1-8][0-9]|9[0-5]")


def birth_country(subject: Subject) -> list[FieldViolation]:
    """00400: the birth country, required: a foreign COG code ``99xxx`` (France 99100) or 92352."""
    if _COUNTRY.fullmatch(subject.identity.code_cog_insee_pays_naissance):
        return []
    return [FieldViolation(subject.path("codeCogInseePaysNaissance"), "required: 99xxx or 92352", "00400")]


def birth_commune(subject: Subject) -> list[FieldViolation]:
    """00365: the birth commune's COG code, when given, 5 characters (département part and 3 digits)."""
    code = subject.identity.code_cog_insee_commune_naissance
    if not code or _COMMUNE.fullmatch(code):
        return []
    return [FieldViolation(subject.path("codeCogInseeCommuneNaissance"), "a COG commune code", "00365")]


def cnav_birthplace(subject: Subject) -> list[FieldViolation]:
    """The CNAV birthplace: the commune code decides when given (00365), else the full triple.

    With no commune code and all of ``nomCommuneNaissance``, ``codeCogInseeDepartementNaissance``
    and the birth year, the year must be 1900 to this year (00422) and the département a COG
    one (00428); otherwise nothing is required, born in France or not (the newest rule).
    """
    identity = subject.identity
    if identity.code_cog_insee_commune_naissance:
        return birth_commune(subject)
    departement = identity.code_cog_insee_departement_naissance
    if not (
        identity.nom_commune_naissance.strip()
        and departement.strip()
        and identity.HasField("annee_date_naissance")
    ):
        return []
    found = []
    if not 1900 <= identity.annee_date_naissance <= subject.today.year:
        found.append(FieldViolation(subject.path("anneeDateNaissance"), "1900 to this year", "00422"))
    if not _TRANSCOGAGE_DEPARTEMENT.fullmatch(departement):
        found.append(
            FieldViolation(subject.path("codeCogInseeDepartementNaissance"), "a COG département", "00428")
        )
    return found


# -- birth dates ---------------------------------------------------------------------------------

_OLDEST_BIRTH = dt.date(1900, 1, 1)


def cnav_birth_date(subject: Subject) -> list[FieldViolation]:
    """00363, once: parts optional; year > 0, month 1-12, day 1-31; all three a date, 1900 to yesterday."""
    identity = subject.identity
    year = identity.annee_date_naissance if identity.HasField("annee_date_naissance") else None
    month = identity.mois_date_naissance if identity.HasField("mois_date_naissance") else None
    day = identity.jour_date_naissance if identity.HasField("jour_date_naissance") else None
    valid = (
        (year is None or year > 0) and (month is None or 1 <= month <= 12) and (day is None or 1 <= day <= 31)
    )
    if valid and year is not None and month is not None and day is not None:
        try:
            valid = _OLDEST_BIRTH <= dt.date(year, month, day) < subject.today
        except ValueError:
            valid = False
    if valid:
        return []
    return [FieldViolation(subject.path("anneeDateNaissance"), "a birth date, 1900 to yesterday", "00363")]


def civility_birth_date(subject: Subject) -> list[FieldViolation]:
    """The first of 00422 (year), 00423 (month 1-12), 00424 (day 1-31), 00425 (no such date); all required."""
    identity = subject.identity
    year, month, day = (
        identity.annee_date_naissance if identity.HasField("annee_date_naissance") else 0,
        identity.mois_date_naissance if identity.HasField("mois_date_naissance") else 0,
        identity.jour_date_naissance if identity.HasField("jour_date_naissance") else 0,
    )
    if year <= 0:
        return [FieldViolation(subject.path("anneeDateNaissance"), "required: a year", "00422")]
    if not 1 <= month <= 12:
        return [FieldViolation(subject.path("moisDateNaissance"), "required: 1 to 12", "00423")]
    if not 1 <= day <= 31:
        return [FieldViolation(subject.path("jourDateNaissance"), "required: 1 to 31", "00424")]
    try:
        dt.date(year, month, day)
    except ValueError:
        return [FieldViolation(subject.path("jourDateNaissance"), "a calendar date", "00425")]
    return []


# -- the call ------------------------------------------------------------------------------------


def request_id(subject: Subject) -> list[FieldViolation]:
    """00401: the caller's ``x-request-id``, when given, is a UUID (CNAV routes)."""
    if not subject.request_id_refused:
        return []
    return [FieldViolation("x-request-id", "a UUID: 8-4-4-4-12 hexadecimal digits", "00401")]


# -- quotient familial ---------------------------------------------------------------------------

QF_MONTHS = 24
"""The quotient familial's window: the current month and the 23 before it (00355)."""


def _asked(subject: Subject, name: str) -> int | None:
    request = subject.request
    return getattr(request, name) if request is not None and request.HasField(name) else None


def qf_year(subject: Subject) -> list[FieldViolation]:
    """00356: ``annee``, when given, is this year, the one before or the one before that."""
    year = _asked(subject, "annee")
    if year is None or subject.today.year - 2 <= year <= subject.today.year:
        return []
    return [FieldViolation("annee", "this year, N-1 or N-2", "00356")]


def qf_month(subject: Subject) -> list[FieldViolation]:
    """00354: ``mois``, when given, 1 to 12 and, in this year or later, not past this month.

    A month out of range in this year is reported twice, as the real API does (VALIDATION.md §2, A2).
    """
    month = _asked(subject, "mois")
    if month is None:
        return []
    year = _asked(subject, "annee")
    found = []
    if year is not None and year >= subject.today.year and month > subject.today.month:
        found.append(FieldViolation("mois", "not in the future", "00354"))
    if not 1 <= month <= 12:
        found.append(FieldViolation("mois", "1 to 12", "00354"))
    return found


def qf_period(subject: Subject) -> list[FieldViolation]:
    """00355: the month asked (``annee``/``mois``, each this one by default) within `QF_MONTHS`.

    Skipped when ``annee`` or ``mois`` is refused already.
    """
    if qf_year(subject) or qf_month(subject):
        return []
    today = subject.today
    year = _asked(subject, "annee") or today.year
    month = _asked(subject, "mois") or today.month
    if (today.year * 12 + today.month) - (year * 12 + month) < QF_MONTHS:
        return []
    return [FieldViolation("annee", f"within the last {QF_MONTHS} months", "00355")]


def reference_month(request: Any, today: dt.date) -> tuple[int, int]:
    """The month a quotient familial is asked for, checked: ``annee`` and ``mois``, today's by default."""
    year = request.annee if request.HasField("annee") else today.year
    month = request.mois if request.HasField("mois") else today.month
    return year, month


# -- the chains ----------------------------------------------------------------------------------

CNAV = Chain(
    (
        optional_sex,
        cnav_birthplace,
        birth_country,
        cnav_birth_date,
        request_id,
        cnav_first_names,
        cnav_birth_name,
        cnav_usage_name,
    ),
    replacing=frozenset({cnav_birthplace}),
)
"""CNAV/DSS identity routes (CNAF and MSA benefits, C2S), by identity or FranceConnect (§5)."""
QUOTIENT_FAMILIAL = Chain((qf_year, qf_month, qf_period), CNAV.replacing).then(*CNAV.steps)
"""The quotient familial: ``annee``, ``mois`` and their window, then the CNAV chain (§5.2)."""
CIVILITY = Chain((civility_birth_name, civility_first_names, civility_birth_date))
"""The generic civility rules (§6.1): Cnous and GIP-MDS identities."""
MESRI = CIVILITY.then(required_sex, birth_commune)
"""MESRI statut étudiant by identity (§6.1): civility, sex, commune code."""
ANTS_IDENTITY = Chain((civility_first_names, civility_birth_name, civility_birth_date))
"""The FranceConnect identity of an ANTS call, after its registration number (§7)."""


# -- INE -----------------------------------------------------------------------------------------

_INE = re.compile(
    r"[0-9]{9}[A-HJK]{2}|[0-9]{10}[A-HJ-NPR-Z]|[0-9A-Z]{10}[0-9]|[0-9]{4}A[0-9]{5}[A-HJ-NPR-Z]",
    re.IGNORECASE,
)


def checked_ine(ine: str, field: str = "ine") -> str:
    """The INE in upper case, once of one of its four formats (VALIDATION.md §6.2).

    Raises:
        ApiError: INVALID_ARGUMENT 00360, alone.
    """
    if _INE.fullmatch(ine):
        return ine.upper()
    raise invalid_parameters([FieldViolation(field, "an INE of one of its four formats", "00360")])


# -- FranceConnect -------------------------------------------------------------------------------

FRANCE_CONNECT_PREFIX = "franceConnect.identitePivot"
"""The JSON path of the identity the gateway resolved from a FranceConnect token."""


def resolved_france_connect_identity(
    subject: identity_pb2.FranceConnectSubject,
) -> identity_pb2.IdentityPivot:
    """The identity the gateway resolved from a FranceConnect token.

    Provider services never see FranceConnect themselves: the gateway introspects
    the token and fills ``identite_pivot``. A subject without it did not come
    through the gateway.

    Raises:
        ApiError: INVALID_ARGUMENT 00366 when the identity was not resolved.
    """
    if not subject.HasField("identite_pivot"):
        raise invalid_civility(
            [
                FieldViolation(
                    FRANCE_CONNECT_PREFIX,
                    "required: resolved by the gateway from the FranceConnect access token",
                )
            ]
        )
    return subject.identite_pivot


def france_connect_subject(
    subject: identity_pb2.FranceConnectSubject, today: dt.date, request: Any = None
) -> Subject:
    """What a chain checks on a FranceConnect route: the identity the gateway resolved.

    Raises:
        ApiError: INVALID_ARGUMENT 00366 when it was not (`resolved_france_connect_identity`).
    """
    return Subject(resolved_france_connect_identity(subject), today, FRANCE_CONNECT_PREFIX, request)
