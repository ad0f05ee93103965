"""What provider services read off a validated identity pivot, the same way for every provider."""

from __future__ import annotations

import unicodedata

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


_ASCII_LOOK_ALIKES = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201b\u02bc\u2032\uff07", "'"),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d", "-"),
    }
)
_LIGATURES = str.maketrans({"Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ß": "ss"})


def ascii_look_alikes(name: str) -> str:
    """The name with typographic apostrophes and dashes made ``'`` and ``-``, all else unchanged."""
    return name.translate(_ASCII_LOOK_ALIKES)


def ascii_folded(name: str) -> str:
    """The name in plain ASCII, as directories that know no accent hold it.

    Accents are dropped (``Zoé`` gives ``Zoe``), ligatures spelt out (``Œ`` gives
    ``OE``), typographic apostrophes and dashes made ``'`` and ``-``, and any other
    character ASCII lacks is dropped.
    """
    decomposed = unicodedata.normalize("NFKD", ascii_look_alikes(name).translate(_LIGATURES))
    unaccented = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unaccented.encode("ascii", "ignore").decode()
