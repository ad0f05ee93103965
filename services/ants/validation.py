"""The rules of a registration extract request (VALIDATION.md §7): the number, then the user's identity."""

from __future__ import annotations

from runtime.errors import FieldViolation
from services.common.validation import ANTS_IDENTITY, Chain, Subject


def immatriculation(subject: Subject) -> list[FieldViolation]:
    """00430: the registration number, required, in any format (the SIV answers for the rest)."""
    if subject.request.immatriculation.strip():
        return []
    return [FieldViolation("immatriculation", "required: the registration number", "00430")]


EXTRAIT = Chain((immatriculation,)).then(*ANTS_IDENTITY.steps)
"""The registration number, then the FranceConnect identity: first names, birth name, birth date."""
