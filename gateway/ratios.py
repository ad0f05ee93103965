"""The APIs' error ratios over every gateway process, for the real API's ratio pings (`gateway.pings`).

The real API's CNAV-family pings read the error ratio of the last 10 minutes in the access
logs of the whole platform. Each gateway process counts its own calls
(`gateway.availability.AvailabilityTracker`); this module adds them up in Redis, so that
every worker and replica answers a ping from the calls of them all:

- every ``flush_seconds``, in the background (never on a provider call), a process adds the
  calls and failures it counted since its last flush to one Redis hash per API and 10-second
  bucket, ``ping-ratio:{<api>}:<bucket start>`` (fields ``calls`` and ``failures``), which
  expires once older than the longest window read;
- a ping flushes first (its own latest calls count at once), then reads the window's buckets
  of the APIs it watches, in one pipelined round trip.

Counts that could not be written are kept for the next flush, as long as their bucket is inside
the window. When Redis cannot be read, the ratio is unknown (None) and the ping falls back to the
process's own counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from runtime.tasks import BackgroundTask

_LOG = structlog.get_logger(__name__)

_PREFIX = "ping-ratio:"
_CALLS, _FAILURES = "calls", "failures"

Drain = Callable[[], Mapping[tuple[str, int], tuple[int, int]]]
"""Counts since the last call, by (API, bucket start in epoch seconds): (calls, failures)."""


def bucket_key(api: str, start: int) -> str:
    """The Redis hash of one API's bucket, hash-tagged on the API (its buckets in one Cluster slot)."""
    return f"{_PREFIX}{{{api}}}:{start}"


class SharedErrorRatios:
    """Error ratios by API, summed over every gateway process through Redis.

    Args:
        client: The gateway's Redis.
        drain: The process's counts since the last drain (`AvailabilityTracker.drain_counts`).
        window_seconds: The longest window read; buckets expire after it.
        bucket_seconds: The span of one bucket, as the counts are made.
        flush_seconds: How often the process's counts are written.
        clock: Wall clock, epoch seconds.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        drain: Drain,
        *,
        window_seconds: float,
        bucket_seconds: float,
        flush_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis, self._drain = client, drain
        self._window, self._bucket = window_seconds, int(bucket_seconds)
        self._flush_seconds, self._clock = flush_seconds, clock
        self._unsent: dict[tuple[str, int], tuple[int, int]] = {}
        self._task = BackgroundTask(self._flushing, "ping-ratio-flush")
        self._lock = asyncio.Lock()
        self._drain()  # counting for the drains starts now

    async def start(self) -> None:
        """Flush every ``flush_seconds`` in the background."""
        self._task.start()

    async def close(self) -> None:
        """Stop flushing, after a last flush."""
        await self._task.close()
        await self.flush()

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Add the counts made since the last flush to Redis; those not written wait for the next."""
        async with self._lock:
            for key, (calls, failures) in self._drain().items():
                before = self._unsent.get(key, (0, 0))
                self._unsent[key] = (before[0] + calls, before[1] + failures)
            oldest = self._clock() - self._window - self._bucket
            pending = {key: counts for key, counts in self._unsent.items() if key[1] >= oldest}
            if not pending:
                self._unsent = {}
                return
            pipe = self._redis.pipeline(transaction=False)
            for (api, start), (calls, failures) in pending.items():
                name = bucket_key(api, start)
                pipe.hincrby(name, _CALLS, calls)
                pipe.hincrby(name, _FAILURES, failures)
                pipe.expireat(name, int(start + self._window + 2 * self._bucket))
            try:
                await pipe.execute()
            except (RedisError, OSError, TimeoutError) as exc:
                self._unsent = pending
                _LOG.warning("ping_ratio_unsent", error=type(exc).__name__)
                return
            self._unsent = {}

    async def error_ratios(
        self, apis: Iterable[str], window_seconds: float
    ) -> dict[str, float | None] | None:
        """Each API's share of failed calls over the last ``window_seconds``, every process's.

        Returns:
            By API: the ratio, or None without calls; None as a whole when Redis cannot be read.
        """
        await self.flush()
        now = self._clock()
        first = int(now - window_seconds) // self._bucket * self._bucket
        starts = range(first, int(now) + 1, self._bucket)
        wanted = list(dict.fromkeys(apis))
        pipe = self._redis.pipeline(transaction=False)
        for api in wanted:
            for start in starts:
                pipe.hmget(bucket_key(api, start), [_CALLS, _FAILURES])
        try:
            replies = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            _LOG.warning("ping_ratio_unread", error=type(exc).__name__)
            return None
        ratios: dict[str, float | None] = {}
        for index, api in enumerate(wanted):
            calls = failures = 0
            for reply in replies[index * len(starts) : (index + 1) * len(starts)]:
                calls += int(reply[0] or 0)
                failures += int(reply[1] or 0)
            ratios[api] = failures / calls if calls else None
        return ratios
