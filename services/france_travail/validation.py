"""Validation of the France Travail identifiant (the username of the person's account).

The contract only requires the identifiant; France Travail lets people choose it,
so its format is not checked beyond what no username can be: blank, longer than
100 characters, or holding control or other invisible characters. Violations
never repeat the value.
"""

from __future__ import annotations

import unicodedata

from runtime.errors import FieldViolation, api_error

MAX_IDENTIFIANT_LENGTH = 100
"""Longer is no username but a mistake or an attack; refused before it travels upstream."""


def validate_identifiant(identifiant: str, field: str = "identifiant") -> list[FieldViolation]:
    """Check a France Travail identifiant.

    Args:
        identifiant: The identifiant as received.
        field: Its JSON path in the request.

    Returns:
        One violation when the identifiant is missing or malformed; empty when acceptable.
    """
    if not identifiant.strip():
        return [FieldViolation(field, "required: the username of the person's France Travail account")]
    if len(identifiant) > MAX_IDENTIFIANT_LENGTH:
        return [FieldViolation(field, f"at most {MAX_IDENTIFIANT_LENGTH} characters")]
    if any(unicodedata.category(ch).startswith("C") for ch in identifiant):
        return [FieldViolation(field, "must not contain control or invisible characters")]
    return []


def checked_identifiant(identifiant: str, field: str = "identifiant") -> str:
    """The identifiant, once acceptable.

    Args:
        identifiant: The identifiant as received.
        field: Its JSON path in the request.

    Returns:
        The identifiant unchanged.

    Raises:
        ApiError: INVALID_ARGUMENT 00380, the contract's only identifiant code, with
            the real API's text when it is missing and a format text otherwise.
    """
    violations = validate_identifiant(identifiant, field)
    if not violations:
        return identifiant
    if not identifiant.strip():
        raise api_error("00380", violations=violations)
    raise api_error("00380", detail="L'identifiant n'est pas correctement formaté", violations=violations)
