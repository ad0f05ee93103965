"""The EAJE participation familiale's own rule: a household with a child under 7.

The API serves the crèches (établissements d'accueil du jeune enfant) that set a
family's fee. The real API refuses the household's data when no child of it is
under 7, so that a habilitation for crèche fees does not read every household:
NOT_FOUND 37003, "Allocataire non éligible", from the CNAV. The rule applies to
whatever the backend answered, sandbox or upstream, after it answered.
"""

from __future__ import annotations

import datetime as dt

from apiparticulier.cnaf.v1 import cnaf_pb2
from runtime.errors import ApiError, provider_not_found, provider_unknown_answer
from runtime.providers import CNAV

AGE_LIMIT = 7
"""A household is eligible when one of its children is younger than this, in years completed."""


def not_eligible() -> ApiError:
    """The household was found but has no child under 7 (37003)."""
    return provider_not_found(
        CNAV,
        "Le dossier allocataire a été trouvé mais n'est pas éligible à la participation familiale EAJE",
        title="Allocataire non éligible",
    )


def age(birth: dt.date, today: dt.date) -> int:
    """Years completed on ``today`` by someone born on ``birth``; a 29 February birthday counts on 1 March."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def checked_eligible(
    data: cnaf_pb2.ParticipationFamilialeEajeData, today: dt.date
) -> cnaf_pb2.ParticipationFamilialeEajeData:
    """The household's data, once one of its children is under 7 on ``today``.

    Raises:
        ApiError: NOT_FOUND 37003 when no child is under 7 (or there is none);
            UNKNOWN 37999 when a child's birth date is not a date.
    """
    for child in data.enfants:
        try:
            birth = dt.date.fromisoformat(child.date_naissance)
        except ValueError:
            raise provider_unknown_answer(CNAV) from None
        if age(birth, today) < AGE_LIMIT:
            return data
    raise not_eligible()
