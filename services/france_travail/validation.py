"""The rule of a France Travail request (VALIDATION.md §7): the identifiant, the person's username, given.

France Travail lets people choose their username, so the real API checks no format: it is
required, nothing more (00380). The violation never repeats the value.
"""

from __future__ import annotations

from runtime.errors import FieldViolation, invalid_parameters


def checked_identifiant(identifiant: str, field: str = "identifiant") -> str:
    """The identifiant, once not blank.

    Raises:
        ApiError: INVALID_ARGUMENT 00380.
    """
    if identifiant.strip():
        return identifiant
    raise invalid_parameters([FieldViolation(field, "required: the France Travail username", "00380")])
