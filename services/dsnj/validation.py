"""The rules of a service national request (VALIDATION.md §7): the identity, and the DSNJ's ages 16 to 25."""

from __future__ import annotations

import datetime as dt

from runtime.errors import FieldViolation
from runtime.providers import DSNJ
from services.common.validation import (
    Chain,
    Subject,
    birth_commune,
    birth_country,
    civility_birth_date,
    civility_birth_name,
    dsnj_first_names,
    required_sex,
)

YOUNGEST = 16
"""Age of the recensement, from which the DSNJ answers."""
OLDEST = 25
"""Last age at which the obligations (the JDC) can still be met."""


def age_on(birth: tuple[int, int, int], today: dt.date) -> int:
    """Completed years between a birth date (year, month, day) and ``today``."""
    year, month, day = birth
    return today.year - year - ((today.month, today.day) < (month, day))


def age(subject: Subject) -> list[FieldViolation]:
    """39400: the person is 16 to 25 years old today, both included.

    Checked even when the birth date is refused, a missing part counting as 0, as the real
    API does (VALIDATION.md §2, A3): a missing year gives 00422 and 39400.
    """
    identity = subject.identity
    birth = (identity.annee_date_naissance, identity.mois_date_naissance, identity.jour_date_naissance)
    if YOUNGEST <= age_on(birth, subject.today) <= OLDEST:
        return []
    return [FieldViolation(subject.path("anneeDateNaissance"), f"aged {YOUNGEST} to {OLDEST} today", "39400")]


SERVICE_NATIONAL = Chain(
    (
        dsnj_first_names,
        civility_birth_name,
        civility_birth_date,
        age,
        required_sex,
        birth_commune,
        birth_country,
    ),
    source=DSNJ,
)
"""The service national by identity or FranceConnect, in the real API's order."""
