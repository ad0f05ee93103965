"""What provider services read off a validated identity pivot, the same way for every provider."""

from __future__ import annotations

from apiparticulier.common.v1 import identity_pb2


def birth_date(identity: identity_pb2.IdentityPivot) -> str:
    """The birth date as far as it is known.

    Returns:
        ``YYYY-MM-DD``; ``YYYY-MM`` or ``YYYY`` when the day, or the month and
        day, are unknown; empty when the year is. A part counts only when the
        ones before it are known.
    """
    if not identity.HasField("annee_date_naissance"):
        return ""
    date = f"{identity.annee_date_naissance:04d}"
    if identity.HasField("mois_date_naissance"):
        date += f"-{identity.mois_date_naissance:02d}"
        if identity.HasField("jour_date_naissance"):
            date += f"-{identity.jour_date_naissance:02d}"
    return date
