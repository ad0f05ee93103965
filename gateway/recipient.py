"""The recipient of a call: the SIRET of the public body that receives the data.

Every call must name it in the ``x-recipient`` metadata (00203 when missing) and
it must be a SIRET (00210 otherwise): 14 digits passing the Luhn check, except
La Poste's establishments (SIREN 356000000), numbered beyond what Luhn allows,
whose rule is that the sum of the 14 digits is a multiple of 5. La Poste's head
office, 356 000 000 00048, was numbered before that rule and passes Luhn: it is
accepted too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from runtime.caller import RECIPIENT_KEY
from runtime.errors import invalid_recipient, missing_recipient

LA_POSTE_SIREN = "356000000"
_DIGITS = frozenset("0123456789")


def is_valid_siret(siret: str) -> bool:
    """Whether ``siret`` is a well-formed SIRET (Luhn, or La Poste's own rule)."""
    return len(siret) == 14 and _DIGITS.issuperset(siret) and _passes_checksum(siret)


# Callers name the same few recipients call after call: each is summed once.
@functools.lru_cache(maxsize=4096)
def _passes_checksum(siret: str) -> bool:
    digits = [ord(c) - 48 for c in siret]
    if siret.startswith(LA_POSTE_SIREN) and sum(digits) % 5 == 0:
        return True
    return _luhn(digits)


def _luhn(digits: list[int]) -> bool:
    # Luhn from the right: every second digit is doubled; with 14 digits, those at even positions.
    doubled = (2 * d - 9 if d > 4 else 2 * d for d in digits[0::2])
    return (sum(doubled) + sum(digits[1::2])) % 10 == 0


def recipient_from(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The recipient SIRET named by the call's metadata.

    Raises:
        ApiError: 00203 when no recipient is given, 00210 when it is not a valid
            SIRET or when several are given.
    """
    found: list[str | bytes] = [value for key, value in metadata or () if key == RECIPIENT_KEY]
    if not found or found == [""]:
        raise missing_recipient()
    if len(found) > 1:
        raise invalid_recipient()
    value = found[0]
    if not isinstance(value, str) or not is_valid_siret(value):
        raise invalid_recipient()
    return value
