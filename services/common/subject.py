"""How a caller designates the person a provider service is asked about."""

from __future__ import annotations

from enum import StrEnum


class SubjectKind(StrEnum):
    """The kinds of subject; some providers word their not-found answer after it."""

    IDENTITY = "identity"
    """An identity pivot given by the caller."""
    INE = "ine"
    """An identifiant national étudiant."""
    FRANCE_CONNECT = "france_connect"
    """The identity pivot the gateway resolved from a FranceConnect token."""
