"""The rule of a statut sportif request (VALIDATION.md §7): the PSQS identifiant, digits only."""

from __future__ import annotations

import re

from runtime.errors import FieldViolation, invalid_parameters

_IDENTIFIANT = re.compile(r"[0-9]+")


def checked_identifiant(identifiant: str, field: str = "identifiant") -> str:
    """The identifiant, once made of digits only.

    Raises:
        ApiError: INVALID_ARGUMENT 00380, alone; the violation never repeats the value.
    """
    if _IDENTIFIANT.fullmatch(identifiant):
        return identifiant
    raise invalid_parameters([FieldViolation(field, "required: the PSQS identifiant, digits", "00380")])
