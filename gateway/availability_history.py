"""Each ping's availability over the last 90 days, sampled off the request path.

Every ``AVAILABILITY_SAMPLE_SECONDS`` (60 s) a background task of the gateway reads what every
ping says (`gateway.pings.PingBoard.states`) and sets, in Redis, the bit of the current UTC
minute in one of three bitmaps of the ping and day: ``ok``, ``bad`` (``bad_gateway``) or
``maintenance`` (``unknown`` sets none: nothing was learnt). Setting a bit is idempotent, so the
replicas of the gateway, which all sample, mark a minute once between them; one pipeline per
sample, nothing on the calls' path.

Redis keys (kept 91 days, so that 90 whole days are read; one hash tag, one Cluster slot):
``availability:{availability}:<YYYY-MM-DD>:<ping>:<ok|bad|maintenance>``, bitmaps of 1440
bits (180 bytes), bit *n* the *n*-th minute of the UTC day. At most 16 pings x 91 days x
3 x 180 bytes: 786 KB.

`AvailabilityHistory.days` reads them back as minutes per day and state, and the incidents:
the runs of ``bad`` minutes, a gap of less than two samples (a sample late by a few seconds
skips a minute) or midnight not breaking a run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from gateway.availability import Availability
from gateway.pings import PINGS, PingState
from runtime.errors import store_unavailable
from runtime.tasks import BackgroundTask

_LOG = structlog.get_logger(__name__)

HISTORY_DAYS = 90
"""How many days the status page shows."""
RETENTION_SECONDS = (HISTORY_DAYS + 1) * 24 * 3600
"""How long a day's bitmaps are kept."""
PING_IDS = tuple(ping.id for ping in PINGS)
"""Every ping, in the order the real API lists them."""
_MINUTES = 24 * 60
_KINDS = {Availability.OK: "ok", Availability.BAD_GATEWAY: "bad", Availability.MAINTENANCE: "maintenance"}


def minutes_key(day: str, ping_id: str, kind: str) -> str:
    """Key of a ping's bitmap of ``kind`` minutes (``ok``, ``bad``, ``maintenance``) on ``day``."""
    return f"availability:{{availability}}:{day}:{ping_id}:{kind}"


@dataclass(frozen=True, slots=True)
class DayAvailability:
    """What one ping said over one UTC day, in sampled minutes."""

    day: dt.date
    ok: int
    bad: int
    maintenance: int


@dataclass(frozen=True, slots=True)
class Incident:
    """A run of minutes in which a ping said ``bad_gateway``: from ``start`` to ``end`` (UTC)."""

    ping_id: str
    start: dt.datetime
    end: dt.datetime

    @property
    def minutes(self) -> int:
        """How long it lasted, in sampled minutes."""
        return round((self.end - self.start).total_seconds() / 60)


class AvailabilityHistory:
    """Samples the pings into Redis every ``sample_seconds``, and reads the days back.

    Args:
        redis_client: The gateway's Redis; the caller owns it and closes it.
        states: What every ping says now (`gateway.pings.PingBoard.states`).
        sample_seconds: Time between two samples (``AVAILABILITY_SAMPLE_SECONDS``).
        clock: Wall clock, epoch seconds.
    """

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        states: Callable[[], Awaitable[list[PingState]]],
        sample_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis_client
        self._states = states
        self._sample_seconds = sample_seconds
        self._clock = clock
        self._task = BackgroundTask(self._sample_forever, "availability-history")

    async def start(self) -> None:
        """Start sampling: one sample now, then one every ``sample_seconds``."""
        self._task.start()

    async def close(self) -> None:
        """Stop sampling."""
        await self._task.close()

    async def sample(self) -> None:
        """Mark the current minute of every ping with what it says now.

        Raises:
            redis.exceptions.RedisError, OSError, TimeoutError: Redis failed (the minute is lost).
        """
        states = await self._states()
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        day, minute = now.date().isoformat(), now.hour * 60 + now.minute
        pipe = self._redis.pipeline(transaction=False)
        for state in states:
            kind = _KINDS.get(state.status)
            if kind is None:
                continue
            key = minutes_key(day, state.ping.id, kind)
            pipe.setbit(key, minute, 1)
            pipe.expire(key, RETENTION_SECONDS)
        await pipe.execute()

    async def _sample_forever(self) -> None:
        while True:
            try:
                await self.sample()
            except (RedisError, OSError, TimeoutError) as exc:
                _LOG.warning("availability_sample_failed", error=type(exc).__name__)
            await asyncio.sleep(self._sample_seconds)

    async def days(
        self, ping_ids: Sequence[str] = PING_IDS, days: int = HISTORY_DAYS
    ) -> tuple[dict[str, list[DayAvailability]], list[Incident]]:
        """Each ping's minutes per state over the last ``days`` UTC days (oldest first), and its incidents.

        Returns:
            The days of each ping id (days with no sample included, all zero), and every incident,
            most recent first.

        Raises:
            ApiError: 00503 (`store_unavailable`), Redis failed.
        """
        today = dt.datetime.fromtimestamp(self._clock(), dt.UTC).date()
        run = [today - dt.timedelta(days=back) for back in range(days - 1, -1, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for ping_id in ping_ids:
            for day in run:
                pipe.bitcount(minutes_key(day.isoformat(), ping_id, "ok"))
                pipe.bitcount(minutes_key(day.isoformat(), ping_id, "maintenance"))
                pipe.get(minutes_key(day.isoformat(), ping_id, "bad"))
        try:
            replies = iter(await pipe.execute())
        except (RedisError, OSError, TimeoutError):
            raise store_unavailable() from None
        history: dict[str, list[DayAvailability]] = {}
        incidents: list[Incident] = []
        for ping_id in ping_ids:
            history[ping_id] = []
            bad_minutes: list[dt.datetime] = []
            for day in run:
                ok, maintenance, bad = next(replies), next(replies), next(replies)
                minutes = _set_bits(bad or b"")
                history[ping_id].append(DayAvailability(day, int(ok), len(minutes), int(maintenance)))
                midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
                bad_minutes += [midnight + dt.timedelta(minutes=minute) for minute in minutes]
            incidents += _runs(ping_id, bad_minutes, self._gap())
        return history, sorted(incidents, key=lambda incident: incident.start, reverse=True)

    def _gap(self) -> dt.timedelta:
        """The longest gap between two ``bad`` minutes of one incident: two samples, at least 2 minutes."""
        return max(dt.timedelta(minutes=2), dt.timedelta(seconds=2 * self._sample_seconds))


def _set_bits(bitmap: bytes) -> list[int]:
    """The indexes of the bits set, Redis's order (bit 0 the first byte's most significant)."""
    return [
        index * 8 + bit
        for index, byte in enumerate(bitmap[: _MINUTES // 8])
        if byte
        for bit in range(8)
        if byte & (0x80 >> bit)
    ]


def _runs(ping_id: str, minutes: list[dt.datetime], gap: dt.timedelta) -> list[Incident]:
    """Minutes no further apart than ``gap`` as incidents, each ending a minute after its last."""
    incidents: list[Incident] = []
    start = previous = None
    for minute in minutes:
        if previous is not None and minute - previous > gap:
            assert start is not None  # noqa: S101 - set with previous
            incidents.append(Incident(ping_id, start, previous + dt.timedelta(minutes=1)))
            start = None
        start = start or minute
        previous = minute
    if start is not None and previous is not None:
        incidents.append(Incident(ping_id, start, previous + dt.timedelta(minutes=1)))
    return incidents
