"""The duplicate-call lock: a call identical to one of the same token still running is refused (409 00015).

The real API refuses a second call with the same token, operation and parameters while the
first runs (NEWER-ENDPOINTS.md §11, ACCESS-MODEL.md §5 step 12): the lock lives in its
cache, keyed by a digest of the three, for at most a minute, and is cleared when the call ends.
Here the lock is a Redis key taken in the one round trip of revocation and the rate decision
(`gateway.rate_script`, the script's ``KEYS[5]``), only when the call is admitted, for at most the
call's own deadline (``PX``), and deleted right after its answer has left (`RateLimiter.release`).

What makes two calls identical: the token (its ``jti``), the method, the recipient and the
request's bytes (the subject, and its options: a year, a campaign). The key is a keyed digest
(BLAKE2b, a key derived from ``JOURNAL_HMAC_KEY``, the same on every replica), so that nobody
reading Redis can tell, or test a guess of, whom a call asked about. Its hash tag is the
habilitation's (`gateway.auth.Token.rate_key`): one Cluster slot with the call's other keys.
"""

from __future__ import annotations

import hashlib
import math

LOCK_PREFIX = "lock"
_PERSON = b"duplicate-call"
"""Separates this use of the journal's key from the journal's own (BLAKE2b personalisation)."""
_SEPARATOR = b"\x1f"


class CallLocks:
    """The keys of the duplicate-call lock.

    Args:
        secret: The replicas' shared secret (``JOURNAL_HMAC_KEY``); the digest's key is derived from it.
    """

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.blake2b(secret, digest_size=32, person=_PERSON).digest()

    def key(self, rate_key: str, token_id: str, method: str, recipient: str, request: bytes) -> str:
        """The lock key of one call: ``lock:{<rate_key>}:<32 hex digits>``.

        Args:
            rate_key: What the token's counters are keyed by (its habilitation), for the hash tag.
            token_id: The token's ``jti``.
            method: The full gRPC path of the method.
            recipient: The recipient SIRET ("" for none).
            request: The request's serialized bytes.
        """
        digest = hashlib.blake2b(
            _SEPARATOR.join((token_id.encode(), method.encode(), recipient.encode(), request)),
            digest_size=16,
            key=self._key,
        )
        return f"{LOCK_PREFIX}:{{{rate_key}}}:{digest.hexdigest()}"


def lock_milliseconds(seconds: float) -> int:
    """The lock's lifetime for a call with ``seconds`` left: that, in whole milliseconds, at least 1."""
    return max(1, math.ceil(seconds * 1000))
