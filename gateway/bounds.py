"""The range of every number a token or a setting carries to the rate limiter and the registry.

The admin CLI refuses to issue a value outside these ranges, the settings refuse to
start with one, and the token verifier refuses (00101) a token that carries one, so
no value the gateway accepts can make the rate-limit script or a date conversion
fail. Each bound is far beyond any real use.
"""

from __future__ import annotations

import math

RATE_LIMIT_MAX_PER_SECOND = 10_000
"""Highest rate a token or ``RATE_LIMIT_PER_SECOND`` may set, in requests per second.

Ten times what one gateway process serves. It keeps the GCRA's interval between two
calls (100 µs at this rate) far above the precision of the theoretical arrival time,
a float of microseconds since 1970 that Redis's Lua rounds to 0.25 µs today: at
about 8,000,000 per second the interval vanishes in the rounding and the script's
SET gets an expiry of 0.
"""

RATE_LIMIT_BURST_MAX = 100_000
"""Most calls a token's bucket may hold (``RATE_LIMIT_BURST``)."""

TOKEN_LIFETIME_MAX_DAYS = 3653
"""Longest lifetime of a token, ``exp`` minus ``iat``, in days: ten years, against 18 months by default."""

TOKEN_LIFETIME_MAX_SECONDS = TOKEN_LIFETIME_MAX_DAYS * 86_400

NUMERIC_DATE_MAX = 253_402_300_799
"""Latest ``exp``, ``nbf`` or ``iat``: 9999-12-31T23:59:59Z, the last second a date can hold."""


def is_rate_limit(value: object) -> bool:
    """Whether ``value`` is a token's rate limit: a whole number from 1 to `RATE_LIMIT_MAX_PER_SECOND`."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= RATE_LIMIT_MAX_PER_SECOND


def is_numeric_date(value: object) -> bool:
    """Whether ``value`` is a JWT NumericDate the gateway accepts: a finite number of seconds.

    Whole or fractional (RFC 7519 §2), from 0 to `NUMERIC_DATE_MAX`; a boolean, a
    string of digits, NaN or an infinity is not one.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= NUMERIC_DATE_MAX
