"""The pings' availability history against a real Redis: samples, minutes per day, incidents, retention."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from devstack.redis import RedisProcess
from gateway.availability import Availability
from gateway.availability_history import RETENTION_SECONDS, AvailabilityHistory, minutes_key
from gateway.pings import PINGS, PingState

MIDNIGHT = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
FIRST, SECOND = PINGS[0], PINGS[1]


@pytest.fixture
async def client(redis_server: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_server.url)
    keys = [key async for key in connection.scan_iter("availability:{availability}:2026-03-*")]
    if keys:
        await connection.delete(*keys)
    yield connection
    await connection.aclose()


class Board:
    """What the pings say, set by the test, at the time the test sets."""

    def __init__(self) -> None:
        self.now = MIDNIGHT.timestamp()
        self.status = {ping.id: Availability.OK for ping in PINGS}

    async def states(self) -> list[PingState]:
        return [PingState(ping, self.status[ping.id], self.now, self.now) for ping in PINGS]


async def _sample_at(history: AvailabilityHistory, board: Board, minutes: float) -> None:
    board.now = (MIDNIGHT + dt.timedelta(minutes=minutes)).timestamp()
    await history.sample()


async def test_minutes_are_counted_per_state_and_bad_runs_become_incidents(
    client: redis.asyncio.Redis,
) -> None:
    board = Board()
    history = AvailabilityHistory(client, board.states, 60, clock=lambda: board.now)
    for minute in range(10):
        board.status[FIRST.id] = Availability.BAD_GATEWAY if 3 <= minute < 6 else Availability.OK
        board.status[SECOND.id] = Availability.MAINTENANCE if minute >= 8 else Availability.UNKNOWN
        await _sample_at(history, board, minute)
    # Two replicas sample the same minute: it counts once.
    await _sample_at(history, board, 9.5)

    days, incidents = await history.days((FIRST.id, SECOND.id), days=2)
    assert [(day.day, day.ok, day.bad, day.maintenance) for day in days[FIRST.id]] == [
        (dt.date(2026, 3, 8), 0, 0, 0),
        (dt.date(2026, 3, 9), 7, 3, 0),
    ]
    # "unknown" is no sample: nothing was learnt.
    assert (days[SECOND.id][-1].ok, days[SECOND.id][-1].maintenance) == (0, 2)
    (incident,) = incidents
    assert (incident.ping_id, incident.minutes) == (FIRST.id, 3)
    assert (incident.start, incident.end) == (
        MIDNIGHT + dt.timedelta(minutes=3),
        MIDNIGHT + dt.timedelta(minutes=6),
    )
    ttl = await client.ttl(minutes_key("2026-03-09", FIRST.id, "ok"))
    assert RETENTION_SECONDS - 10 < ttl <= RETENTION_SECONDS


async def test_an_incident_runs_over_a_late_sample_and_over_midnight(client: redis.asyncio.Redis) -> None:
    board = Board()
    history = AvailabilityHistory(client, board.states, 60, clock=lambda: board.now)
    board.status[FIRST.id] = Availability.BAD_GATEWAY
    # 23:58, then a sample late by a few seconds skips 23:59; 00:00 and 00:01 of the next day.
    for minute in (-2, 0, 1):
        await _sample_at(history, board, minute)
    board.status[FIRST.id] = Availability.OK
    await _sample_at(history, board, 2)
    # Much later, a second incident.
    board.status[FIRST.id] = Availability.BAD_GATEWAY
    await _sample_at(history, board, 30)

    _days, incidents = await history.days((FIRST.id,), days=2)
    assert [(incident.start, incident.end) for incident in incidents] == [
        (MIDNIGHT + dt.timedelta(minutes=30), MIDNIGHT + dt.timedelta(minutes=31)),
        (MIDNIGHT - dt.timedelta(minutes=2), MIDNIGHT + dt.timedelta(minutes=2)),
    ]


async def test_sampling_runs_in_the_background_until_closed(client: redis.asyncio.Redis) -> None:
    board = Board()
    history = AvailabilityHistory(client, board.states, 0.01, clock=lambda: board.now)
    await history.start()
    key = minutes_key("2026-03-09", FIRST.id, "ok")
    for _ in range(200):
        if await client.bitcount(key):
            break
        await asyncio.sleep(0.01)
    await history.close()
    assert await client.bitcount(key) == 1
