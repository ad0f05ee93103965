"""Usage statistics: calls per token, API, day and outcome, written in batches.

The request path only adds to counters in memory (`UsageRecorder.count`); a
background task writes them to Redis every ``USAGE_FLUSH_SECONDS``, one MULTI/EXEC
transaction per hash slot (a token's counters; the proofs counters), so that it works
on Redis Cluster as on a single Redis. A transaction that fails puts its counts back,
so nothing is lost while Redis is briefly away, and none is counted twice.

Redis keys (kept 62 days, the "2 months" of statistics; days are UTC):

- ``usage:{<jti>}:<YYYY-MM-DD>``: hash, field ``<api>|<outcome>``, value the calls.
  The hash tag keeps a token's days in one Cluster slot.
- ``usage:{habilitation:<id>}:<YYYY-MM-DD>``: the same, for every token of a habilitation of
  the registry together (`habilitation_counter`).
- ``proofs:{proofs}:<YYYY-MM-DD>``: successful calls of the day, all tokens together:
  the public figure of proofs avoided (paper proofs nobody had to send). One hash tag
  for every day, so the 30-day sum is one MGET on Cluster too.
- ``proofs:{proofs}:<YYYY-MM-DD>:api``: hash, field ``<api>``, value the successful calls of
  the day to that API: the public statistics' proofs avoided per API and day
  (`proofs_by_api`); written in the proofs' transaction, same slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections import Counter
from collections.abc import Callable

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from runtime.errors import FieldViolation, bad_request, store_unavailable

RETENTION_DAYS = 62
"""How many days of usage are kept (the "2 months" of statistics), and asked for when none is said."""
RETENTION_SECONDS = RETENTION_DAYS * 24 * 3600
"""How long a day's counters are kept."""
PROOFS_DAYS = 30
"""The window of the public figure of proofs avoided."""

SUCCESS = "OK"
"""The outcome of a successful call; only those count as proofs avoided."""

_LOG = structlog.get_logger(__name__)

_Key = tuple[str, str, str, str]  # token id, day, api, outcome


HABILITATION_PREFIX = "habilitation:"


def habilitation_counter(habilitation_id: str) -> str:
    """What a habilitation's calls are counted under, beside its tokens' (a jti is a bare UUID)."""
    return f"{HABILITATION_PREFIX}{habilitation_id}"


def usage_key(token_id: str, day: str) -> str:
    """Key of a token's counters for one day (YYYY-MM-DD)."""
    return f"usage:{{{token_id}}}:{day}"


def proofs_key(day: str) -> str:
    """Key of the day's count of successful calls."""
    return f"proofs:{{proofs}}:{day}"


def proofs_by_api_key(day: str) -> str:
    """Key of the day's successful calls per API (a hash: API label → calls)."""
    return f"{proofs_key(day)}:api"


def _utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def _last_days(today: datetime.date, days: int) -> list[str]:
    return [(today - datetime.timedelta(days=back)).isoformat() for back in range(days)]


class UsageRecorder:
    """Counts calls in memory and writes them to Redis in batches.

    Args:
        redis: The Redis client; the caller owns it and closes it.
        flush_seconds: Time between two writes (``USAGE_FLUSH_SECONDS``).
        timeout_seconds: Longest time one write may take before it counts as failed.
        today: The current UTC date (tests).
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        flush_seconds: float,
        *,
        timeout_seconds: float = 5.0,
        today: Callable[[], datetime.date] = _utc_today,
    ) -> None:
        self._redis = redis
        self._flush_seconds = flush_seconds
        self._timeout_seconds = timeout_seconds
        self._today = today
        self._pending: Counter[_Key] = Counter()
        self._pending_proofs: Counter[str] = Counter()
        self._pending_proofs_by_api: Counter[tuple[str, str]] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Calls counted in memory and not written yet (proofs aside)."""
        return sum(self._pending.values())

    def count(self, token_id: str, api: str, outcome: str, habilitation_id: str = "") -> None:
        """Count one call; memory only, never Redis.

        Args:
            token_id: The caller's token jti.
            api: The API called (e.g. the method or API name; no ``|`` in it).
            outcome: ``OK`` or the gRPC status name.
            habilitation_id: The registry's habilitation of the token, counted too (`usage_of` its
                `habilitation_counter`); "": none.
        """
        # The day is taken now, so a call just before midnight counts for its own day
        # even when it is flushed after.
        day = self._today().isoformat()
        self._pending[(token_id, day, api, outcome)] += 1
        if habilitation_id:
            self._pending[(habilitation_counter(habilitation_id), day, api, outcome)] += 1
        if outcome == SUCCESS:
            self._pending_proofs[day] += 1
            self._pending_proofs_by_api[(day, api)] += 1

    async def start(self) -> None:
        """Start the background flush task."""
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name="usage-flush")

    async def close(self) -> None:
        """Stop the background task and write what remains.

        Never raises, so the rest of a shutdown goes on: if Redis is away, the
        counts that cannot be written are reported in a warning.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except (RedisError, OSError, TimeoutError) as exc:
            _LOG.warning("usage_lost_at_close", error=type(exc).__name__, calls=self.pending)

    async def flush(self) -> int:
        """Write the pending counts, one transaction per hash slot.

        Returns:
            The number of calls written.

        Raises:
            redis.exceptions.RedisError: Redis failed; what was not written is kept for the next flush.
            TimeoutError: Redis did not answer in time; what was not written is kept too.
        """
        async with self._flush_lock:
            batch, self._pending = self._pending, Counter()
            proofs, self._pending_proofs = self._pending_proofs, Counter()
            by_api, self._pending_proofs_by_api = self._pending_proofs_by_api, Counter()
            by_token: dict[str, Counter[_Key]] = {}
            for key, calls in batch.items():
                by_token.setdefault(key[0], Counter())[key] = calls
            written = 0
            try:
                async with asyncio.timeout(self._timeout_seconds):
                    for token_id in list(by_token):
                        await self._write_token(by_token[token_id])
                        written += sum(by_token.pop(token_id).values())
                    if proofs:
                        await self._write_proofs(proofs, by_api)
                        proofs, by_api = Counter(), Counter()
            except BaseException:
                # Put back what was not written (with what was counted meanwhile) for the next
                # flush. Each MULTI/EXEC applies all of its counts or none, so none is counted twice.
                for counts in by_token.values():
                    self._pending.update(counts)
                self._pending_proofs.update(proofs)
                self._pending_proofs_by_api.update(by_api)
                raise
            return written

    async def _write_token(self, counts: Counter[_Key]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        touched: set[str] = set()
        for (token_id, day, api, outcome), calls in counts.items():
            key = usage_key(token_id, day)
            pipe.hincrby(key, f"{api}|{outcome}", calls)
            touched.add(key)
        for key in sorted(touched):
            pipe.expire(key, RETENTION_SECONDS)
        await pipe.execute()

    async def _write_proofs(self, proofs: Counter[str], by_api: Counter[tuple[str, str]]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for day, calls in proofs.items():
            pipe.incrby(proofs_key(day), calls)
            pipe.expire(proofs_key(day), RETENTION_SECONDS)
        for (day, api), calls in by_api.items():
            pipe.hincrby(proofs_by_api_key(day), api, calls)
        for day in {day for day, _api in by_api}:
            pipe.expire(proofs_by_api_key(day), RETENTION_SECONDS)
        await pipe.execute()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                # Shielded: close() cancelling this task must not cut a write in flight,
                # which could be applied by Redis and then counted again.
                await asyncio.shield(self.flush())
            except (RedisError, OSError, TimeoutError) as exc:
                _LOG.warning("usage_flush_failed", error=type(exc).__name__, pending=self.pending)

    async def usage_of(self, token_id: str, days: int = 0) -> list[tuple[str, str, str, int]]:
        """A token's calls over the last days, as written to Redis.

        Args:
            token_id: The token's jti (a habilitation's `habilitation_counter`: all its tokens').
            days: How many days back, today included (1 to `RETENTION_DAYS`; 0 for all of them).

        Returns:
            ``(day, api, outcome, calls)``, most recent day first, then by API and outcome.

        Raises:
            ApiError: 00400 for days out of range; 00503 (`store_unavailable`), Redis failed.
        """
        days = days or RETENTION_DAYS
        if not 1 <= days <= RETENTION_DAYS:
            raise bad_request(
                [FieldViolation("days", f"must be from 1 to {RETENTION_DAYS}, or 0 for {RETENTION_DAYS}")]
            )
        day_list = _last_days(self._today(), days)
        pipe = self._redis.pipeline(transaction=False)
        for day in day_list:
            pipe.hgetall(usage_key(token_id, day))
        try:
            replies = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            raise store_unavailable() from None
        rows: list[tuple[str, str, str, int]] = []
        for day, counters in zip(day_list, replies, strict=True):
            day_rows = []
            for field, calls in counters.items():
                text = field.decode() if isinstance(field, bytes) else str(field)
                api, _, outcome = text.rpartition("|")
                day_rows.append((day, api, outcome, int(calls)))
            rows.extend(sorted(day_rows))
        return rows

    async def proofs_avoided(self, days: int = PROOFS_DAYS) -> int:
        """Successful calls over the last days, today included, all tokens together.

        Raises:
            ApiError: 00503 (`store_unavailable`), Redis failed.
        """
        try:
            values = await self._redis.mget([proofs_key(day) for day in _last_days(self._today(), days)])
        except (RedisError, OSError, TimeoutError):
            raise store_unavailable() from None
        return sum(int(value) for value in values if value is not None)

    async def proofs_by_api(self, days: int = RETENTION_DAYS) -> list[tuple[str, str, int]]:
        """Successful calls per API and day over the last ``days`` days, today included.

        Returns:
            ``(day, api, calls)``, oldest day first, then by API label; days and APIs without a
            successful call are left out.

        Raises:
            ApiError: 00503 (`store_unavailable`), Redis failed.
        """
        day_list = _last_days(self._today(), days)[::-1]
        pipe = self._redis.pipeline(transaction=False)
        for day in day_list:
            pipe.hgetall(proofs_by_api_key(day))
        try:
            replies = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            raise store_unavailable() from None
        rows: list[tuple[str, str, int]] = []
        for day, counters in zip(day_list, replies, strict=True):
            day_rows = [
                (day, field.decode() if isinstance(field, bytes) else str(field), int(calls))
                for field, calls in counters.items()
            ]
            rows.extend(sorted(day_rows))
        return rows
