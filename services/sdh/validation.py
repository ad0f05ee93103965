"""Validation of the PSQS identifiant: the digits the sports ministry's portal gives a sportsperson."""

from __future__ import annotations

import re

from runtime.errors import FieldViolation, api_error

_IDENTIFIANT = re.compile(r"[0-9]{1,20}")


def checked_identifiant(identifiant: str, field: str = "identifiant") -> str:
    """The identifiant, once made of 1 to 20 digits.

    Raises:
        ApiError: INVALID_ARGUMENT 00380, the real API's one code for a missing or
            malformed identifiant; the violation never repeats the value.
    """
    if _IDENTIFIANT.fullmatch(identifiant):
        return identifiant
    raise api_error(
        "00380", violations=[FieldViolation(field, "required: the PSQS identifiant, 1 to 20 digits")]
    )
