"""The rate limiter against a real Redis: GCRA, revocation, one round trip, outages, accuracy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio
from google.rpc import error_details_pb2, status_pb2

from devstack.redis import RedisProcess
from gateway.ratelimit import RateLimiter, rate_key, revoked_key
from gateway.settings import GatewaySettings, RedisFailureMode
from runtime.errors import ApiError

REPO = Path(__file__).resolve().parents[2]


def settings(**overrides: object) -> GatewaySettings:
    values: dict[str, object] = {"rate_limit_per_second": 10, "rate_limit_burst": 5}
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


def new_jti() -> str:
    return str(uuid.uuid4())


def details(error: ApiError) -> dict[type, object]:
    status = status_pb2.Status.FromString(error.to_status_proto().SerializeToString())
    found: dict[type, object] = {}
    for detail in status.details:
        kinds = (error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo, error_details_pb2.QuotaFailure)
        for kind in kinds:
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind] = message
    return found


async def command_counts(client: redis.asyncio.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


@pytest.fixture
async def client(redis_server: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_server.url)
    yield connection
    await connection.aclose()


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """A Redis of the test's own: it can be stopped, and nobody else's commands show in its stats."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


# -- decisions --------------------------------------------------------------------------------------


async def test_calls_under_the_limit_are_allowed_with_rate_limit_metadata(
    client: redis.asyncio.Redis,
) -> None:
    limiter = RateLimiter(client, settings())
    jti = new_jti()
    decisions = [await limiter.check(jti, 0) for _ in range(5)]
    assert all(d.allowed and not d.revoked for d in decisions)
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    first = dict(decisions[0].metadata)
    assert first == {"ratelimit-limit": "5", "ratelimit-remaining": "4", "ratelimit-reset": "1"}
    assert "retry-after" not in first
    # The state is one key per token that expires when the bucket is full again.
    ttl_ms = await client.pttl(rate_key(jti))
    assert 0 < ttl_ms <= 500
    await limiter.close()


async def test_calls_over_the_limit_are_refused_with_retry_info_and_quota_failure(
    client: redis.asyncio.Redis,
) -> None:
    limiter = RateLimiter(client, settings())
    jti = new_jti()
    for _ in range(5):
        assert (await limiter.check(jti, 0)).allowed
    refused = await limiter.check(jti, 0)
    assert not refused.allowed
    assert not refused.revoked
    assert refused.remaining == 0
    # 10 per second: the next call is admitted one tenth of a second after the last one.
    assert 0.05 < refused.retry_after_seconds <= 0.1
    meta = dict(refused.metadata)
    assert meta["retry-after"] == "1"  # whole seconds, at least one
    assert meta["ratelimit-remaining"] == "0"
    assert meta["ratelimit-limit"] == "5"

    error = refused.refusal()
    assert error.status is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.code == "00429"
    found = details(error)
    retry = found[error_details_pb2.RetryInfo]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert 0 < retry.retry_delay.ToNanoseconds() <= 100_000_000
    quota = found[error_details_pb2.QuotaFailure]
    assert isinstance(quota, error_details_pb2.QuotaFailure)
    assert quota.violations[0].subject == f"token:{jti}"
    assert "10 requêtes par seconde" in quota.violations[0].description
    assert dict(error.trailing_metadata())["retry-after"] == "1"

    # Refused calls do not push the token further back: after the wait, it is admitted.
    await asyncio.sleep(refused.retry_after_seconds + 0.01)
    assert (await limiter.check(jti, 0)).allowed
    await limiter.close()


async def test_a_token_s_own_rate_overrides_the_default(client: redis.asyncio.Redis) -> None:
    limiter = RateLimiter(client, settings(rate_limit_burst=1))
    slow, fast = new_jti(), new_jti()
    assert (await limiter.check(slow, 1)).allowed
    slow_refusal = await limiter.check(slow, 1)
    assert not slow_refusal.allowed
    assert 0.9 < slow_refusal.retry_after_seconds <= 1.0
    assert slow_refusal.rate_per_second == 1

    assert (await limiter.check(fast, 1000)).allowed
    await asyncio.sleep(0.005)
    assert (await limiter.check(fast, 1000)).allowed

    default = new_jti()
    assert (await limiter.check(default, 0)).allowed
    assert 0.05 < (await limiter.check(default, 0)).retry_after_seconds <= 0.1  # 10 per second
    await limiter.close()


async def test_a_revoked_token_is_refused_at_once_and_not_counted(client: redis.asyncio.Redis) -> None:
    limiter = RateLimiter(client, settings())
    jti = new_jti()
    assert (await limiter.check(jti, 0)).allowed
    await client.set(revoked_key(jti), "1", ex=60)
    decision = await limiter.check(jti, 0)
    assert decision.revoked
    assert not decision.allowed
    assert decision.metadata == ()
    error = decision.refusal()
    assert error.status is grpc.StatusCode.UNAUTHENTICATED
    assert error.code == "00105"
    # Another token is not affected.
    assert (await limiter.check(new_jti(), 0)).allowed
    await limiter.close()


async def test_replicas_share_one_bucket(client: redis.asyncio.Redis) -> None:
    one, two = RateLimiter(client, settings()), RateLimiter(client, settings())
    jti = new_jti()
    results = [await (one if i % 2 else two).check(jti, 0) for i in range(6)]
    assert [d.allowed for d in results] == [True] * 5 + [False]


# -- round trips and the script cache -------------------------------------------------------------


async def test_each_call_is_one_evalsha_and_nothing_else(private_redis: RedisProcess) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    observer = redis.asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(client, settings(rate_limit_per_second=1000, rate_limit_burst=10))
    await limiter.check(new_jti(), 0)  # first use: connection set-up and SCRIPT LOAD
    before = await command_counts(observer)
    calls = 40
    jtis = [new_jti() for _ in range(4)]
    for i in range(calls):
        await limiter.check(jtis[i % 4], 0)
    after = await command_counts(observer)
    delta = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    delta.pop("info", None)  # the observer's own INFO
    assert delta.pop("evalsha") == calls
    # Commands run by the script inside Redis are counted too; they are no round trips.
    # Anything else (a GET, an EXPIRE, a SCRIPT LOAD) would be one.
    assert set(delta) <= {"exists", "time", "get", "set"}
    assert all(count <= calls for count in delta.values())
    await limiter.close()
    await client.aclose()
    await observer.aclose()


async def test_the_script_is_loaded_again_after_a_script_flush(private_redis: RedisProcess) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(client, settings())
    jti = new_jti()
    assert (await limiter.check(jti, 0)).allowed
    await client.script_flush()
    before = await command_counts(client)
    decision = await limiter.check(jti, 0)
    assert decision.allowed
    assert decision.remaining == 3  # the state survived, only the script was reloaded
    after = await command_counts(client)
    # Redis 6 counts SCRIPT LOAD as "script", Redis 7 as "script|load".
    loads = sum(after[n] - before.get(n, 0) for n in after if n in ("script", "script|load"))
    assert loads == 1
    assert after["evalsha"] - before["evalsha"] == 2  # NOSCRIPT, then the call again
    await limiter.close()
    await client.aclose()


# -- outages ------------------------------------------------------------------------------------------


async def wait_for_redis_again(limiter: RateLimiter, jti: str, within: float) -> float:
    """Call until a decision comes from Redis again; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        with contextlib.suppress(ApiError):
            await limiter.check(jti, 0)
        if not limiter.redis_down:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"the limiter did not come back to Redis within {within} s")


async def test_fail_closed_refuses_while_redis_is_down_and_recovers_by_itself(
    private_redis: RedisProcess,
) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(client, settings(redis_timeout_seconds=0.2, redis_retry_seconds=0.3))
    assert limiter._settings.redis_failure_mode is RedisFailureMode.FAIL_CLOSED
    jti = new_jti()
    assert (await limiter.check(jti, 0)).allowed
    private_redis.stop()

    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        await limiter.check(jti, 0)
    first_failure = time.monotonic() - started
    assert first_failure < 0.2 + 0.1  # bounded by the Redis timeout
    error = refused.value
    assert error.status is grpc.StatusCode.UNAVAILABLE
    assert error.code == "00503"
    found = details(error)
    info = found[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "RATE_LIMITER_UNAVAILABLE"
    assert error_details_pb2.RetryInfo in found

    # The breaker is open: the next calls do not wait for Redis at all.
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(ApiError):
            await limiter.check(jti, 0)
    assert time.monotonic() - started < 0.05

    private_redis.start()  # empty, and with an empty script cache
    took = await wait_for_redis_again(limiter, jti, within=2.0)
    assert took <= 1.0
    assert (await limiter.check(jti, 0)).allowed
    assert await client.exists(rate_key(jti))
    await limiter.close()
    await client.aclose()


async def wait_for_snapshot(limiter: RateLimiter, within: float = 2.0) -> None:
    started = time.monotonic()
    while limiter.revocation_snapshot_age is None or limiter.revocation_snapshot_age > 0.05:
        assert time.monotonic() - started < within, "the revocation list was not refreshed"
        await asyncio.sleep(0.02)


async def test_degrade_limits_locally_with_the_last_known_revocations_then_returns_to_redis(
    private_redis: RedisProcess,
) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(
        client,
        settings(
            redis_failure_mode=RedisFailureMode.DEGRADE,
            gateway_replicas=2,
            rate_limit_per_second=10,
            rate_limit_burst=4,
            redis_timeout_seconds=0.2,
            redis_retry_seconds=0.3,
            revocation_refresh_seconds=0.05,
        ),
    )
    revoked, healthy = new_jti(), new_jti()
    assert (await limiter.check(healthy, 0)).allowed
    await client.set(revoked_key(revoked), "1", ex=60)
    await client.sadd("revoked", revoked)
    await asyncio.sleep(0.1)
    await wait_for_snapshot(limiter)
    private_redis.stop()

    # Local limit: burst 4 over 2 replicas gives 2 at once, then 10/2 = 5 per second.
    local = [await limiter.check(healthy, 0) for _ in range(3)]
    assert limiter.redis_down
    assert [d.allowed for d in local] == [True, True, False]
    assert local[0].limit == 2
    assert 0.15 < local[2].retry_after_seconds <= 0.2
    assert local[2].refusal().code == "00429"
    assert (await limiter.check(revoked, 0)).revoked  # the last known list still holds

    private_redis.start()
    await wait_for_redis_again(limiter, healthy, within=2.0)
    # Back on Redis: the revocation key was lost with the restart, and the shared state is used.
    assert await client.exists(rate_key(healthy))
    await limiter.close()
    await client.aclose()


async def test_degrade_fails_closed_after_the_maximum_time(private_redis: RedisProcess) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(
        client,
        settings(
            redis_failure_mode=RedisFailureMode.DEGRADE,
            degraded_max_seconds=0.3,
            redis_timeout_seconds=0.1,
            redis_retry_seconds=0.1,
            revocation_refresh_seconds=0.05,
        ),
    )
    jti = new_jti()
    assert (await limiter.check(jti, 0)).allowed
    await wait_for_snapshot(limiter)
    private_redis.stop()
    assert (await limiter.check(jti, 0)).allowed  # degraded, locally
    await asyncio.sleep(0.4)
    with pytest.raises(ApiError) as refused:
        await limiter.check(jti, 0)
    assert refused.value.code == "00503"
    private_redis.start()
    await wait_for_redis_again(limiter, jti, within=2.0)
    await limiter.close()
    await client.aclose()


async def test_degrade_without_a_known_revocation_list_fails_closed() -> None:
    server = RedisProcess()  # never started: Redis is down from the first call
    client = redis.asyncio.Redis.from_url(server.url)
    limiter = RateLimiter(
        client, settings(redis_failure_mode=RedisFailureMode.DEGRADE, redis_timeout_seconds=0.1)
    )
    with pytest.raises(ApiError) as refused:
        await limiter.check(new_jti(), 0)
    assert refused.value.status is grpc.StatusCode.UNAVAILABLE
    await limiter.close()
    await client.aclose()
    server.close()


# -- accuracy across processes ----------------------------------------------------------------------

WORKER = """
import asyncio, json, sys, time
import redis.asyncio
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings

url, jti, rate, burst, start_at, duration = sys.argv[1:7]
rate, burst, start_at, duration = int(rate), int(burst), float(start_at), float(duration)

async def main():
    client = redis.asyncio.Redis.from_url(url)
    limiter = RateLimiter(client, GatewaySettings(rate_limit_burst=burst, redis_timeout_seconds=2.0))
    await limiter.check("warm-up-" + jti, rate)
    admitted = refused = 0
    first = last = None
    end = start_at + duration
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def hammer():
        nonlocal admitted, refused, first, last
        while time.time() < end:
            sent = time.time()
            decision = await limiter.check(jti, rate)
            if decision.allowed:
                admitted += 1
                first = sent if first is None else min(first, sent)
                last = time.time()
            else:
                refused += 1
            await asyncio.sleep(0.002)  # modest load: still tens of times the limit

    await asyncio.gather(hammer(), hammer())
    await limiter.close()
    await client.aclose()
    print(json.dumps({"admitted": admitted, "refused": refused, "first": first, "last": last}))

asyncio.run(main())
"""


def test_three_processes_admit_no_more_than_the_limit(redis_server: RedisProcess) -> None:
    rate, burst, duration = 50, 10, 3.0
    jti = new_jti()
    start_at = time.time() + 2.0  # time for the interpreters to start
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [redis_server.url, jti, str(rate), str(burst), repr(start_at), str(duration)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0
        results.append(json.loads(out))
    admitted = sum(r["admitted"] for r in results)
    refused = sum(r["refused"] for r in results)
    span = max(r["last"] for r in results) - min(r["first"] for r in results)
    allowed = rate * span + burst
    print(f"admitted={admitted} refused={refused} span={span:.3f}s allowed={allowed:.1f}")
    assert refused > 5 * admitted  # the token was hammered well over its limit
    assert all(r["admitted"] > 0 for r in results)  # every process got its share from the one bucket
    assert admitted <= allowed
    assert admitted >= 0.95 * allowed
