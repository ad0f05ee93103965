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

The activity of a habilitation, and of an editor's delegation, for its holder's pages (issue 24),
when the call path gives a call's `Details`; written by the same flush, one MULTI/EXEC per
habilitation or delegation:

- ``activity:{habilitation:<id>}:<bucket>`` (and ``activity:{delegation:<id>}:<bucket>``): hash,
  field ``<api>|<outcome>|<code>`` (code "" on success), value the calls of the `BUCKET_SECONDS`
  starting at ``<bucket>`` (epoch seconds); kept `ACTIVITY_DAYS` days.
- ``recent:{habilitation:<id>}`` (and ``recent:{delegation:<id>}``): list, newest first, of the
  last `LAST_REQUESTS` calls as JSON ``{"at", "api", "outcome", "code", "latency_ms",
  "request_id"}``: never the person asked about, the recipient nor any parameter.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from runtime.errors import FieldViolation, bad_request, store_unavailable
from runtime.tasks import BackgroundTask

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
_Bucket = tuple[str, int, str, str, str]  # counter (habilitation or delegation), bucket, api, outcome, code

BUCKET_SECONDS = 600
"""The activity's resolution: calls are counted per 10 minutes."""
ACTIVITY_DAYS = 8
"""How many days of activity are kept: the longest window of the holder's charts."""
ACTIVITY_RETENTION_SECONDS = ACTIVITY_DAYS * 24 * 3600 + BUCKET_SECONDS
"""How long a bucket is kept: its whole 8 days, the bucket under way included."""
LAST_REQUESTS = 50
"""How many of a habilitation's (a delegation's) last calls are kept."""

HABILITATION_PREFIX = "habilitation:"
DELEGATION_PREFIX = "delegation:"


def habilitation_counter(habilitation_id: str) -> str:
    """What a habilitation's calls are counted under, beside its tokens' (a jti is a bare UUID)."""
    return f"{HABILITATION_PREFIX}{habilitation_id}"


def delegation_counter(delegation_id: str) -> str:
    """What an editor's calls under one delegation are counted under."""
    return f"{DELEGATION_PREFIX}{delegation_id}"


def activity_key(counter: str, bucket: int) -> str:
    """Key of a habilitation's or delegation's (`habilitation_counter`, `delegation_counter`) 10 minutes."""
    return f"activity:{{{counter}}}:{bucket}"


def recent_key(counter: str) -> str:
    """Key of a habilitation's or delegation's last calls."""
    return f"recent:{{{counter}}}"


def bucket_of(epoch_seconds: float) -> int:
    """The start of the 10 minutes that hold ``epoch_seconds``."""
    return int(epoch_seconds) // BUCKET_SECONDS * BUCKET_SECONDS


class Details(NamedTuple):
    """What the activity keeps of a call, beside its counts; never whom it was about.

    A tuple (as `LastRequest`): made on every call, where a frozen dataclass costs a few times more.
    """

    habilitation: str
    """The habilitation it counted against ("" none): its activity's counter."""
    delegation_id: str
    """The delegation of an editor token's call ("" none)."""
    code: str
    """The API Particulier error code ("" on success)."""
    latency_ms: float
    request_id: str


class LastRequest(NamedTuple):
    """One of the last calls of a habilitation or delegation, as `recent_key` keeps it."""

    at: float
    """When it was counted, epoch seconds."""
    api: str
    outcome: str
    code: str
    latency_ms: float
    request_id: str

    def as_json(self) -> dict[str, Any]:
        """Its JSON fields, as stored and served."""
        return {**self._asdict(), "latency_ms": round(self.latency_ms, 1)}


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
        clock: The current time, epoch seconds (tests).
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        flush_seconds: float,
        *,
        timeout_seconds: float = 5.0,
        today: Callable[[], datetime.date] = _utc_today,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._flush_seconds = flush_seconds
        self._timeout_seconds = timeout_seconds
        self._today = today
        self._clock = clock
        self._pending: Counter[_Key] = Counter()
        self._pending_proofs: Counter[str] = Counter()
        self._pending_proofs_by_api: Counter[tuple[str, str]] = Counter()
        self._pending_buckets: Counter[_Bucket] = Counter()
        # Bounded between two flushes too: only the last ones are ever kept.
        self._pending_recent: dict[str, deque[LastRequest]] = {}
        self._task = BackgroundTask(self._flush_forever, "usage-flush")
        self._flush_lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Calls counted in memory and not written yet (proofs aside)."""
        return sum(self._pending.values())

    def count(
        self,
        token_id: str,
        api: str,
        outcome: str,
        habilitation_id: str = "",
        *,
        details: Details | None = None,
    ) -> None:
        """Count one call; memory only, never Redis.

        Args:
            token_id: The caller's token jti.
            api: The API called (e.g. the method or API name; no ``|`` in it).
            outcome: ``OK`` or the gRPC status name.
            habilitation_id: The registry's habilitation of the token, counted too (`usage_of` its
                `habilitation_counter`); "": none.
            details: The call's activity for its habilitation's and delegation's pages (`activity`,
                `last_requests`); None: none kept.
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
        if details is not None:
            self._note_activity(api, outcome, details)

    def _note_activity(self, api: str, outcome: str, details: Details) -> None:
        now = self._clock()
        bucket = bucket_of(now)
        last = LastRequest(now, api, outcome, details.code, details.latency_ms, details.request_id)
        if details.habilitation:
            self._note(HABILITATION_PREFIX + details.habilitation, (bucket, api, outcome, details.code), last)
        if details.delegation_id:
            self._note(DELEGATION_PREFIX + details.delegation_id, (bucket, api, outcome, details.code), last)

    def _note(self, counter: str, key: tuple[int, str, str, str], last: LastRequest) -> None:
        self._pending_buckets[(counter, *key)] += 1
        recent = self._pending_recent.get(counter)
        if recent is None:
            recent = self._pending_recent[counter] = deque(maxlen=LAST_REQUESTS)
        recent.append(last)

    async def start(self) -> None:
        """Start the background flush task."""
        self._task.start()

    async def close(self) -> None:
        """Stop the background task and write what remains.

        Never raises, so the rest of a shutdown goes on: if Redis is away, the
        counts that cannot be written are reported in a warning.
        """
        await self._task.close()
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
            buckets, self._pending_buckets = self._pending_buckets, Counter()
            recent, self._pending_recent = self._pending_recent, {}
            by_counter: dict[str, Counter[_Bucket]] = {}
            for bucket, calls in buckets.items():
                by_counter.setdefault(bucket[0], Counter())[bucket] = calls
            for counter in recent:
                by_counter.setdefault(counter, Counter())
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
                    for counter in list(by_counter):
                        await self._write_activity(counter, by_counter[counter], recent.get(counter, ()))
                        del by_counter[counter]
            except BaseException:
                # Put back what was not written (with what was counted meanwhile) for the next
                # flush. Each MULTI/EXEC applies all of its counts or none, so none is counted twice.
                for counts in by_token.values():
                    self._pending.update(counts)
                self._pending_proofs.update(proofs)
                self._pending_proofs_by_api.update(by_api)
                for counter, bucket_counts in by_counter.items():
                    self._pending_buckets.update(bucket_counts)
                    if counter in recent:
                        kept = self._pending_recent.pop(counter, deque(maxlen=LAST_REQUESTS))
                        self._pending_recent[counter] = deque([*recent[counter], *kept], maxlen=LAST_REQUESTS)
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

    async def _write_activity(
        self, counter: str, counts: Counter[_Bucket], recent: deque[LastRequest] | tuple[()]
    ) -> None:
        pipe = self._redis.pipeline(transaction=True)
        touched: set[str] = set()
        for (_counter, bucket, api, outcome, code), calls in counts.items():
            key = activity_key(counter, bucket)
            pipe.hincrby(key, f"{api}|{outcome}|{code}", calls)
            touched.add(key)
        for key in sorted(touched):
            pipe.expire(key, ACTIVITY_RETENTION_SECONDS)
        if recent:
            key = recent_key(counter)
            pipe.lpush(key, *(json.dumps(last.as_json(), separators=(",", ":")) for last in recent))
            pipe.ltrim(key, 0, LAST_REQUESTS - 1)
            pipe.expire(key, ACTIVITY_RETENTION_SECONDS)
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
        rows: list[tuple[str, str, str, int]] = []
        keys = [usage_key(token_id, day) for day in day_list]
        for day, counters in zip(day_list, await _counters(self._redis, keys), strict=True):
            day_rows = []
            for field, calls in counters:
                api, _, outcome = field.rpartition("|")
                day_rows.append((day, api, outcome, calls))
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
        rows: list[tuple[str, str, int]] = []
        keys = [proofs_by_api_key(day) for day in day_list]
        for day, counters in zip(day_list, await _counters(self._redis, keys), strict=True):
            rows.extend(sorted((day, api, calls) for api, calls in counters))
        return rows


async def read_activity(
    redis_client: redis.asyncio.Redis, counter: str, *, buckets: int, now: float
) -> list[tuple[int, str, str, str, int]]:
    """A habilitation's or delegation's calls per 10 minutes, the last ``buckets`` of them.

    Args:
        redis_client: The gateways' Redis.
        counter: `habilitation_counter` or `delegation_counter` of the id.
        buckets: How many 10 minutes back, the one under way included (1 to 8 days' worth).
        now: The current time, epoch seconds.

    Returns:
        ``(bucket, api, outcome, code, calls)`` (bucket: its start, epoch seconds), oldest first.

    Raises:
        ApiError: 00400 for buckets out of range; 00503 (`store_unavailable`), Redis failed.
    """
    most = ACTIVITY_DAYS * 24 * 3600 // BUCKET_SECONDS
    if not 1 <= buckets <= most:
        raise bad_request([FieldViolation("buckets", f"must be from 1 to {most}")])
    last = bucket_of(now)
    starts = [last - BUCKET_SECONDS * back for back in range(buckets - 1, -1, -1)]
    rows: list[tuple[int, str, str, str, int]] = []
    keys = [activity_key(counter, start) for start in starts]
    for start, counters in zip(starts, await _counters(redis_client, keys), strict=True):
        bucket_rows = []
        for field, calls in counters:
            api, outcome, code = field.rsplit("|", 2)
            bucket_rows.append((start, api, outcome, code, calls))
        rows.extend(sorted(bucket_rows))
    return rows


async def read_last_requests(redis_client: redis.asyncio.Redis, counter: str) -> list[LastRequest]:
    """A habilitation's or delegation's last calls (`LAST_REQUESTS` at most), newest first.

    Raises:
        ApiError: 00503 (`store_unavailable`), Redis failed.
    """
    try:
        values = await redis_client.lrange(recent_key(counter), 0, LAST_REQUESTS - 1)
    except (RedisError, OSError, TimeoutError):
        raise store_unavailable() from None
    found = []
    for value in values:
        entry = json.loads(_text(value))
        found.append(
            LastRequest(
                float(entry["at"]),
                str(entry["api"]),
                str(entry["outcome"]),
                str(entry["code"]),
                float(entry["latency_ms"]),
                str(entry["request_id"]),
            )
        )
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _counters(redis_client: redis.asyncio.Redis, keys: Iterable[str]) -> list[list[tuple[str, int]]]:
    """The counters of each hash of ``keys`` (none for a hash not there), in one round trip.

    Raises:
        ApiError: 00503 (`store_unavailable`), Redis failed.
    """
    pipe = redis_client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    try:
        replies = await pipe.execute()
    except (RedisError, OSError, TimeoutError):
        raise store_unavailable() from None
    return [[(_text(field), int(calls)) for field, calls in reply.items()] for reply in replies]
