"""The revocation list each gateway process mirrors, for the rate limiter's degrade mode.

The admin CLI, as it revokes a token registered in Redis, writes its revocation key
(`gateway.rate_script.revoked_key`), adds its jti to the set `REVOKED_SET` and publishes it on the
channel `REVOCATIONS_CHANNEL`; the admin API does the same. While Redis answers, the limiter reads
the key in its script; the set and the channel are read here only, so that when Redis cannot be
reached (``REDIS_FAILURE_MODE=degrade``) a token revoked just before the outage stays refused through
it (`gateway.ratelimit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from runtime.tasks import BackgroundTask

REVOKED_SET = "revoked"
"""The set of revoked jtis, mirrored locally for the degrade mode."""
REVOCATIONS_CHANNEL = "revocations"
"""Pub/sub channel on which the admin CLI publishes each revoked jti as it revokes it."""

_LOG = structlog.get_logger(__name__)


class RevocationMirror:
    """A local copy of the revoked set, kept current off the request path while Redis answers.

    Each revocation comes as it is published on `REVOCATIONS_CHANNEL`; the whole set is read
    after each (re)subscription, so that nothing published while the subscription was broken
    is missed, and every ``refresh_seconds``.

    Args:
        redis: The Redis client; the caller owns it and closes it.
        timeout_seconds: The longest one read of the whole set may take.
        refresh_seconds: Seconds between two reads of the whole set (``REVOCATION_REFRESH_SECONDS``).
        retry_seconds: Seconds before subscribing again after Redis failed (``REDIS_RETRY_SECONDS``).
        clock: Monotonic clock in seconds (tests).
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        timeout_seconds: float,
        refresh_seconds: float,
        retry_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._redis = redis
        self._timeout, self._refresh, self._retry = timeout_seconds, refresh_seconds, retry_seconds
        self._clock = clock
        self.revoked: frozenset[str] | None = None
        """The revoked jtis; None until the set was read once."""
        self._read_at: float | None = None
        self._follower = BackgroundTask(self._follow, "revocation-follower")

    @property
    def age(self) -> float | None:
        """Seconds since the copy was last read whole; None if never."""
        if self._read_at is None:
            return None
        return self._clock() - self._read_at

    def start(self) -> None:
        """Follow the list from now on, in a task of its own (once)."""
        self._follower.start()

    async def close(self) -> None:
        """Stop following the list."""
        await self._follower.close()

    async def _follow(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(REVOCATIONS_CHANNEL)
                while True:
                    await self._read_set()
                    await self._take_published(pubsub, self._refresh)
            except (RedisError, OSError, TimeoutError) as exc:
                _LOG.debug("revocation_refresh_failed", error=type(exc).__name__)
            finally:
                await pubsub.aclose()
            await asyncio.sleep(self._retry)

    async def _read_set(self) -> None:
        async with asyncio.timeout(self._timeout):
            members = await self._redis.smembers(REVOKED_SET)
        self.revoked = frozenset(_text(member) for member in members)
        self._read_at = self._clock()

    async def _take_published(self, pubsub: redis.asyncio.client.PubSub, seconds: float) -> None:
        """Add the revocations published in the next ``seconds`` to the local copy."""
        until = self._clock() + seconds
        while (left := until - self._clock()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None and message["type"] == "message" and self.revoked is not None:
                self.revoked = self.revoked | {_text(message["data"])}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
