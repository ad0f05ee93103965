"""Validation of the registration number: SIV plates (AA-123-BB) and older FNI ones (123 ABC 45)."""

from __future__ import annotations

import re

from runtime.errors import FieldViolation, api_error

_IMMATRICULATION = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,18}[A-Z0-9]")


def checked_immatriculation(immatriculation: str, field: str = "immatriculation") -> str:
    """The registration number in upper case, once it can be one.

    Letters, digits, spaces and dashes, 2 to 20 of them, is all the SIV knows;
    anything else is refused before it travels.

    Raises:
        ApiError: INVALID_ARGUMENT 00430, with the real API's text when it is
            missing and a format text otherwise; the violation never repeats the value.
    """
    plate = immatriculation.strip().upper()
    if _IMMATRICULATION.fullmatch(plate):
        return plate
    if not plate:
        raise api_error("00430", violations=[FieldViolation(field, "required: the registration number")])
    raise api_error(
        "00430",
        detail="L'immatriculation du véhicule n'est pas correctement formatée",
        violations=[FieldViolation(field, "letters, digits, spaces and dashes, 2 to 20 of them")],
    )
