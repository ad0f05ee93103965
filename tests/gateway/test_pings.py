"""The real API's pings: error ratio, service state and operators' maintenance windows, on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import redis
import redis.asyncio

from devstack.redis import RedisProcess, free_port
from gateway.availability import Availability, AvailabilityTracker
from gateway.pings import BY_ID, PINGS, PingBoard, Window, clear_window, declare_window, window_key

NOW = 1_800_000_000.0
QF = "cnaf_msa_quotient_familial"
MEN = "men_scolarite"


@pytest.fixture
def clock() -> list[float]:
    return [NOW]


@pytest.fixture
def tracker(clock: list[float]) -> AvailabilityTracker:
    return AvailabilityTracker(
        {"cnaf": (), "men": ()}, retry_seconds=1, stale_seconds=60, clock=lambda: clock[0]
    )


@pytest.fixture
async def board(
    private_redis: RedisProcess, tracker: AvailabilityTracker, clock: list[float]
) -> AsyncIterator[PingBoard]:
    """A board on a Redis of the test's own: the error ratios add up there every process's calls."""
    client = redis.asyncio.Redis.from_url(private_redis.url)
    yield PingBoard(tracker, client, clock=lambda: clock[0])
    await client.aclose()


@pytest.fixture
def store(private_redis: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_redis.url)
    for ping in PINGS:
        client.delete(window_key(ping.id))
    yield client
    client.close()


def calls(tracker: AvailabilityTracker, api: str, ok: int, failed: int) -> None:
    for _ in range(ok):
        tracker.observe("cnaf", grpc.StatusCode.OK, api)
    for _ in range(failed):
        tracker.observe("cnaf", grpc.StatusCode.UNAVAILABLE, api)
    tracker.observe("cnaf", grpc.StatusCode.NOT_FOUND, "")  # a refusal: the provider answered


def test_every_real_ping_name_is_declared_once() -> None:
    """The real list less franceconnect and insee_metadonnees, which no provider service answers."""
    assert len(BY_ID) == len(PINGS) == 20
    named = {
        QF,
        "cnous_etudiant_boursier_ine",
        "ants",
        "pole_emploi_status",
        "cnav_allocation_rentree_scolaire",
    }
    assert named <= set(BY_ID)


@pytest.mark.usefixtures("store")
async def test_ratio_ping_is_ok_without_traffic_and_bad_from_ten_percent(
    board: PingBoard, tracker: AvailabilityTracker
) -> None:
    """No call: ok. 1 failure in 11 calls: ok (9 %). 2 in 12: bad_gateway (17 %), for that API only."""
    state = await board.state(QF)
    assert state is not None and state.status is Availability.OK and state.until is None
    calls(tracker, "cnaf.quotient_familial", ok=10, failed=1)
    assert (await board.state(QF)).status is Availability.OK  # type: ignore[union-attr]
    calls(tracker, "cnaf.quotient_familial", ok=0, failed=1)
    assert (await board.state(QF)).status is Availability.BAD_GATEWAY  # type: ignore[union-attr]
    assert (await board.state("cnaf_msa_prime_activite")).status is Availability.OK  # type: ignore[union-attr]


@pytest.mark.usefixtures("store")
async def test_the_ratio_forgets_after_ten_minutes(
    board: PingBoard, tracker: AvailabilityTracker, clock: list[float]
) -> None:
    calls(tracker, "cnaf.quotient_familial", ok=0, failed=5)
    assert (await board.state(QF)).status is Availability.BAD_GATEWAY  # type: ignore[union-attr]
    clock[0] += 611
    assert (await board.state(QF)).status is Availability.OK  # type: ignore[union-attr]


@pytest.mark.usefixtures("store")
async def test_service_ping_follows_the_provider_service(
    board: PingBoard, tracker: AvailabilityTracker
) -> None:
    """Nothing learnt: unknown; a failed call: bad_gateway; last_ok_status defaults to now."""
    state = await board.state(MEN)
    assert state is not None and state.status is Availability.UNKNOWN
    assert state.last_ok == state.last_update == NOW
    tracker.observe("men", grpc.StatusCode.DEADLINE_EXCEEDED, "men.scolarite")
    assert (await board.state(MEN)).status is Availability.BAD_GATEWAY  # type: ignore[union-attr]
    tracker.observe("men", grpc.StatusCode.OK, "men.scolarite")
    assert (await board.state(MEN)).status is Availability.OK  # type: ignore[union-attr]


async def test_a_declared_window_is_maintenance_until_its_end_then_a_grace(
    board: PingBoard, tracker: AvailabilityTracker, store: redis.Redis, clock: list[float]
) -> None:
    """Inside: maintenance with until; after: the failures of the window do not count for 10 minutes."""
    declare_window(store, QF, Window(NOW - 60, NOW + 600), NOW)
    calls(tracker, "cnaf.quotient_familial", ok=0, failed=3)
    state = await board.state(QF)
    assert state is not None and (state.status, state.until) == (Availability.MAINTENANCE, NOW + 600)
    assert [s.ping.id for s in await board.states() if s.status is Availability.MAINTENANCE] == [QF]
    clock[0] = NOW + 601
    assert (await board.state(QF)).status is Availability.OK  # type: ignore[union-attr]
    assert store.ttl(window_key(QF)) > 0  # it expires by itself after the grace
    assert clear_window(store, QF) and not clear_window(store, QF)


def test_a_window_must_name_a_ping_and_end_in_the_future(store: redis.Redis) -> None:
    with pytest.raises(KeyError):
        declare_window(store, "nobody", Window(NOW, NOW + 60), NOW)
    with pytest.raises(ValueError, match="future"):
        declare_window(store, QF, Window(NOW, NOW - 1), NOW)
    assert not store.exists(window_key(QF))


async def test_unknown_ping_and_unreachable_redis(tracker: AvailabilityTracker) -> None:
    """No such ping: None. Redis down: the checks alone answer."""
    client = redis.asyncio.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    board = PingBoard(tracker, client, clock=lambda: NOW)
    assert await board.state("nobody") is None
    state = await board.state(QF)
    assert state is not None and state.status is Availability.OK
    await client.aclose()


async def test_the_windows_not_over_are_listed_by_start(
    board: PingBoard, store: redis.Redis, clock: list[float]
) -> None:
    """Open and scheduled ones, soonest first; one past its end is left out though its key lasts a grace."""
    declare_window(store, MEN, Window(NOW + 3600, NOW + 7200), NOW)
    declare_window(store, QF, Window(NOW - 60, NOW + 600), NOW)
    assert [(ping.id, window) for ping, window in await board.windows()] == [
        (QF, Window(NOW - 60, NOW + 600)),
        (MEN, Window(NOW + 3600, NOW + 7200)),
    ]
    clock[0] = NOW + 601
    assert [ping.id for ping, _ in await board.windows()] == [MEN]
