"""The DSNJ's own rule on the person asked about: the service national concerns ages 16 to 25."""

from __future__ import annotations

import datetime as dt

from apiparticulier.common.v1 import identity_pb2
from runtime.errors import FieldViolation, api_error
from runtime.providers import DSNJ

YOUNGEST = 16
"""Age of the recensement, from which the DSNJ answers."""
OLDEST = 25
"""Last age at which the obligations (the JDC) can still be met."""


def age_on(birth: dt.date, today: dt.date) -> int:
    """Completed years between a birth date and ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def checked_age(
    identity: identity_pb2.IdentityPivot, today: dt.date, prefix: str
) -> identity_pb2.IdentityPivot:
    """The identity, once its holder is 16 to 25 years old today (both included).

    Args:
        identity: A validated pivot with a full birth date.
        today: The current date.
        prefix: The pivot's JSON path in the request, for the violation.

    Raises:
        ApiError: INVALID_ARGUMENT 39400 (DSNJ), asked before any call to the DSNJ.
    """
    birth = dt.date(identity.annee_date_naissance, identity.mois_date_naissance, identity.jour_date_naissance)
    if YOUNGEST <= age_on(birth, today) <= OLDEST:
        return identity
    raise api_error(
        "39400",
        source=DSNJ,
        violations=[
            FieldViolation(
                f"{prefix}.anneeDateNaissance", f"the person must be {YOUNGEST} to {OLDEST} years old today"
            )
        ],
    )
