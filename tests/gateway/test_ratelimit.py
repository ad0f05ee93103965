"""The rate limiter against a real Redis: GCRA, revocation, one round trip, outages, accuracy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis
import redis.asyncio
from google.rpc import error_details_pb2, status_pb2

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from devstack.processes import ProcessGroup
from devstack.redis import RedisProcess
from gateway.admin import registry
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from gateway.rate_script import rate_key, revoked_delegation_key, revoked_key
from gateway.ratelimit import RateDecision, RateLimiter
from gateway.redis.client import connect
from gateway.settings import GatewaySettings, RedisFailureMode
from runtime.errors import ApiError
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import Mesh
from tests.gateway.grpc.test_lookup import error_info
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import lefebvre
from tests.rich_status import rich_status

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
    # The reset is the epoch second at which the bucket is full again: within the next second.
    reset = int(first.pop("ratelimit-reset"))
    assert decisions[0].decided_at < reset <= math.ceil(decisions[0].decided_at + 1)
    assert first == {"ratelimit-limit": "5", "ratelimit-remaining": "4"}
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
    await one.close()
    await two.close()


# -- round trips and the script cache -------------------------------------------------------------


async def test_each_call_is_one_evalsha_and_nothing_else(private_redis: RedisProcess) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    observer = redis.asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(client, settings(rate_limit_per_second=1000, rate_limit_burst=10))
    await limiter.check(new_jti(), 0)  # first use: connection set-up and SCRIPT LOAD
    before = await command_counts(observer)
    calls = 800
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
    assert info.reason == "STORE_UNAVAILABLE"
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
    # Read on a connection of its own: the test client's pooled one died with the old Redis.
    checker = redis.asyncio.Redis.from_url(private_redis.url)
    assert await checker.exists(rate_key(jti))
    await checker.aclose()
    await limiter.close()
    await client.aclose()


async def test_once_redis_answers_again_no_call_is_refused(private_redis: RedisProcess) -> None:
    """Redis killed and restarted on its port under load: after the first decision from Redis, no refusal.

    The gateway's client held connections to the dead Redis; one of them, used after
    the recovery, reopened the breaker for another refusal window.
    """
    client = connect(private_redis.url, socket_timeout=0.25, socket_connect_timeout=0.25)
    limiter = RateLimiter(client, settings(rate_limit_burst=1000, redis_retry_seconds=0.1))
    outcomes: list[tuple[float, bool]] = []
    stop_at = time.monotonic() + 3.0

    async def caller() -> None:
        jti = new_jti()
        while time.monotonic() < stop_at:
            try:
                await limiter.check(jti, 1000)
            except ApiError:
                outcomes.append((time.monotonic(), False))
            else:
                outcomes.append((time.monotonic(), True))
            await asyncio.sleep(0.005)

    async def outage() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_redis.kill)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_redis.start)

    await asyncio.gather(outage(), *(caller() for _ in range(30)))
    first_refusal = next(at for at, served in outcomes if not served)
    back_at = next(at for at, served in outcomes if served and at > first_refusal)
    refused_after = [at - back_at for at, served in outcomes if not served and at > back_at]
    assert refused_after == [], f"{len(refused_after)} calls refused after Redis answered again"
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
    await limiter.start()
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
    # Read on a connection of its own: the test client's pooled one died with the old Redis.
    checker = redis.asyncio.Redis.from_url(private_redis.url)
    assert await checker.exists(rate_key(healthy))
    await checker.aclose()
    await limiter.close()
    await client.aclose()


async def test_degrade_refuses_a_token_revoked_just_before_the_outage(private_redis: RedisProcess) -> None:
    """Revoked by the admin registry, Redis gone 50 ms later: the degraded limiter refuses it.

    The local copy of the revocation list used to be read every 5 s only; a token revoked
    in between was served for the whole outage. The revocation is now pushed as it happens.
    """
    client = redis.asyncio.Redis.from_url(private_redis.url)
    admin_client = redis.Redis.from_url(private_redis.url)
    limiter = RateLimiter(
        client,
        settings(
            redis_failure_mode=RedisFailureMode.DEGRADE,
            redis_timeout_seconds=0.2,
            revocation_refresh_seconds=60,  # the periodic read cannot be what sees it
        ),
    )
    await limiter.start()
    jti = new_jti()
    registry.register(
        admin_client,
        {
            "jti": jti,
            "sub": "CCAS",
            "siret": "13002526500013",
            "scopes": [],
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
        },
    )
    assert (await limiter.check(jti, 0)).allowed
    await wait_for_snapshot(limiter)
    registry.revoke(admin_client, jti)
    await asyncio.sleep(0.05)
    private_redis.stop()
    decision = await limiter.check(jti, 0)
    assert limiter.redis_down
    assert decision.revoked
    assert (await limiter.check(new_jti(), 0)).allowed  # other tokens are served, locally
    admin_client.close()
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
    await limiter.start()
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
    await limiter.start()
    with pytest.raises(ApiError) as refused:
        await limiter.check(new_jti(), 0)
    assert refused.value.status is grpc.StatusCode.UNAVAILABLE
    await limiter.close()
    await client.aclose()
    server.close()


# -- bursts through a real gateway ------------------------------------------------------------------


async def outcomes_of(stub: cnaf_pb2_grpc.CnafServiceAsyncStub, header: str, calls: int) -> list[str]:
    """Send ``calls`` calls at once; each outcome is "OK" or the error's API Particulier code."""

    async def one() -> str:
        try:
            await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(header), timeout=10)
        except grpc.aio.AioRpcError as error:
            return rich_status(error).api_code
        return "OK"

    return list(await asyncio.gather(*(one() for _ in range(calls))))


async def test_a_token_s_lower_rate_bounds_its_burst(mesh: Mesh) -> None:
    """A token at 1 per second gets at most 2 of 20 calls at once (not the default burst of 20)."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    header = mesh.factory.bearer(rate_limit=1)
    outcomes = await outcomes_of(stub, header, 20)
    assert 1 <= outcomes.count("OK") <= 2, outcomes
    assert set(outcomes) == {"OK", "00429"}, outcomes
    call = stub.GetQuotientFamilialByIdentity(
        qf_request(), metadata=metadata(mesh.factory.bearer(rate_limit=1))
    )
    await call
    trailers = dict(tuple(await call.trailing_metadata()))
    assert trailers["ratelimit-limit"] == "1"
    assert trailers["ratelimit-remaining"] == "0"


async def test_the_bucket_of_any_rate_lasts_as_long_as_the_default_one(
    client: redis.asyncio.Redis,
) -> None:
    """RATE_LIMIT_BURST 40 at 20 per second is a two-second bucket: 10 calls at 5 per second, 2000 at 1000."""
    limiter = RateLimiter(client, settings(rate_limit_per_second=20, rate_limit_burst=40))
    assert [limiter.burst_for(rate) for rate in (1, 3, 5, 20, 1000)] == [2, 6, 10, 40, 2000]
    jti = new_jti()
    decisions = [await limiter.check(jti, 5) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert decisions[0].limit == 10
    await limiter.close()


async def test_a_burst_of_lookups_beyond_the_redis_pool_is_no_outage(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey], tmp_path: Path
) -> None:
    """200 lookups at once at a `python -m gateway`, 600 rate-limit checks: none is 00503.

    The checks outnumber the 100 connections of the pool; before they queued, the
    pool's refusal was taken for Redis being down.
    """
    directory, es256, _ = keys_dir
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    group = ProcessGroup(tmp_path / "logs")
    env = {
        "KEYS_DIR": str(directory),
        "REDIS_URL": redis_server.url,
        "JOURNAL_HMAC_KEY": "burst-journal-key",
        "CNAF_ADDRESS": f"127.0.0.1:{cnaf.port}",
        "RATE_LIMIT_BURST": "1000",
        "LOG_LEVEL": "warning",
    }
    factory = TokenFactory(es256, scopes=["cnaf_quotient_familial", "revenu_solidarite_active"])
    header = factory.bearer(rate_limit=RATE_LIMIT_MAX_PER_SECOND)
    request = gateway_pb2.LookupRequest(
        identite=lefebvre(),
        apis=[gateway_pb2.API_QUOTIENT_FAMILIAL, gateway_pb2.API_REVENU_SOLIDARITE_ACTIVE],
    )

    async def lookup(stub: gateway_pb2_grpc.GatewayServiceAsyncStub) -> list[str]:
        try:
            answer = await stub.Lookup(request, metadata=metadata(header), timeout=10)
        except grpc.aio.AioRpcError as error:
            return [rich_status(error).api_code]
        return [
            error_info(result.error).metadata["code"] if result.HasField("error") else "OK"
            for result in answer.results
        ]

    try:
        gateway = await asyncio.to_thread(group.start, "gateway", ["-m", "gateway"], env)
        channels = [grpc.aio.insecure_channel(gateway.address) for _ in range(4)]
        stubs = [gateway_pb2_grpc.GatewayServiceStub(channel) for channel in channels]
        results = await asyncio.gather(*(lookup(stubs[n % 4]) for n in range(200)))
        for channel in channels:
            await channel.close(grace=None)
    finally:
        await asyncio.to_thread(group.close)
        await cnaf.stop(0)
    outcomes = [outcome for result in results for outcome in result]
    assert outcomes == ["OK"] * 400, {code: outcomes.count(code) for code in set(outcomes)}


async def test_a_pool_exhausted_by_the_limiter_alone_is_no_outage(redis_server: RedisProcess) -> None:
    """The limiter on a client of 4 connections: 300 checks at once are all decided by Redis."""
    # Timeouts far above a loaded machine's stalls: what is tested is the pool's queue, not Redis's speed.
    client = connect(redis_server.url, max_connections=4, socket_timeout=10, socket_connect_timeout=10)
    limiter = RateLimiter(client, settings(rate_limit_burst=1000, redis_timeout_seconds=10))
    jti = new_jti()
    decisions = await asyncio.gather(*(limiter.check(jti, 1000) for _ in range(300)), return_exceptions=True)
    assert [d for d in decisions if not isinstance(d, RateDecision)] == []
    assert not limiter.redis_down
    await limiter.close()
    await client.aclose()


# -- accuracy across processes ----------------------------------------------------------------------

WORKER = """
import asyncio, json, sys, time
import redis.asyncio
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings

url, jti, rate, burst, duration = sys.argv[1:6]
rate, burst, duration = int(rate), int(burst), float(duration)

async def main():
    client = redis.asyncio.Redis.from_url(url)
    limiter = RateLimiter(
        client, GatewaySettings(rate_limit_per_second=rate, rate_limit_burst=burst, redis_timeout_seconds=2.0)
    )
    await limiter.check("warm-up-" + jti, rate)
    # Ready: the test gives every process the same start time once they all are.
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
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


@pytest.mark.timing
def test_three_processes_admit_no_more_than_the_limit(redis_server: RedisProcess) -> None:
    rate, burst, duration = 50, 10, 3.0
    jti = new_jti()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [redis_server.url, jti, str(rate), str(burst), str(duration)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    start_at = time.time() + 0.2
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start_at!r}\n")
        worker.stdin.flush()
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


@pytest.mark.timing
async def test_a_busy_event_loop_is_no_redis_outage(private_redis: RedisProcess) -> None:
    """1,000 checks at once while the loop is busy for 8 Redis timeouts: no 00503, no breaker.

    Redis answers within the timeout; the process reads the answers late because its
    loop was busy with something else. Those answers count.
    """
    client = redis.asyncio.Redis.from_url(private_redis.url, socket_timeout=0.05)
    limiter = RateLimiter(
        client, settings(redis_timeout_seconds=0.05, rate_limit_per_second=RATE_LIMIT_MAX_PER_SECOND)
    )
    try:
        await limiter.check(new_jti(), 0)  # connection and SCRIPT LOAD
        jtis = [new_jti() for _ in range(50)]
        checks = [asyncio.ensure_future(limiter.check(jtis[n % 50], 0)) for n in range(1000)]
        await asyncio.sleep(0)  # every check sent or queued
        time.sleep(0.4)  # noqa: ASYNC251 - the busy loop under test: a long stretch of other calls' work
        late = asyncio.ensure_future(limiter.check(new_jti(), 0))  # a call that comes right after
        outcomes = await asyncio.gather(*checks, late, return_exceptions=True)
    finally:
        await limiter.close()
        await client.aclose()
    refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert refused == []
    assert not limiter.redis_down


@pytest.mark.timing
async def test_a_redis_that_does_not_answer_is_still_an_outage(private_redis: RedisProcess) -> None:
    """The busy loop's allowance is one read of the sockets, not a wait: a frozen Redis is down in time."""
    client = redis.asyncio.Redis.from_url(private_redis.url, socket_timeout=0.1)
    limiter = RateLimiter(client, settings(redis_timeout_seconds=0.1))
    try:
        await limiter.check(new_jti(), 0)
        with redis.Redis(port=private_redis.port) as observer:
            observer.execute_command("CLIENT", "PAUSE", 2000, "ALL")  # frozen: no command answered
        started = time.monotonic()
        with pytest.raises(ApiError) as refused:
            await limiter.check(new_jti(), 0)
        assert time.monotonic() - started < 0.5
    finally:
        await limiter.close()
        await client.aclose()
    assert refused.value.code == "00503"


# -- limits per habilitation (issue 21) -------------------------------------------------------------


async def test_two_tokens_of_one_habilitation_share_its_counter(redis_server: RedisProcess) -> None:
    limiter = RateLimiter(connect(redis_server.url), settings(rate_limit_per_second=20, rate_limit_burst=20))
    habilitation, first, second = new_jti(), new_jti(), new_jti()
    try:
        decisions = await asyncio.gather(
            *(limiter.check(token, 20, key=habilitation) for token in [first, second] * 20)
        )
    finally:
        await limiter.close()

    admitted = sum(decision.allowed for decision in decisions)
    # 20 at once from a full bucket, and what the steady 20/s refilled while the 40 calls ran.
    assert 20 <= admitted <= 22
    refused = next(decision for decision in decisions if not decision.allowed)
    assert details(refused.refusal())[error_details_pb2.QuotaFailure].violations[0].subject == (  # type: ignore[attr-defined]
        f"habilitation:{habilitation}"
    )


async def test_a_per_minute_limit_refuses_the_call_past_it_in_the_same_round_trip(
    private_redis: RedisProcess,
) -> None:
    limiter = RateLimiter(
        connect(private_redis.url), settings(rate_limit_per_second=1000, rate_limit_burst=1000)
    )
    habilitation = new_jti()
    client = redis.asyncio.Redis.from_url(private_redis.url)
    try:
        before = (await command_counts(client)).get("evalsha", 0)
        decisions = [await limiter.check(new_jti(), 1000, key=habilitation, per_minute=30) for _ in range(31)]
        after = (await command_counts(client)).get("evalsha", 0)
    finally:
        await client.aclose()
        await limiter.close()

    assert [decision.allowed for decision in decisions] == [True] * 30 + [False]
    assert (decisions[-1].window_seconds, decisions[-1].limit) == (60, 30)
    assert dict(decisions[-1].metadata)["ratelimit-limit"] == "30"
    assert int(dict(decisions[-1].metadata)["retry-after"]) >= 1
    assert after - before == 31
    # The tighter bucket speaks for an admitted call too.
    assert (decisions[29].window_seconds, decisions[29].remaining) == (60, 0)


async def test_the_bucket_follows_a_higher_rate(redis_server: RedisProcess) -> None:
    limiter = RateLimiter(connect(redis_server.url), settings(rate_limit_per_second=20, rate_limit_burst=20))
    habilitation = new_jti()
    try:
        assert limiter.burst_for(10_000) == 10_000
        assert limiter.burst_for(1) == 1
        decisions = await asyncio.gather(
            *(limiter.check(new_jti(), 10_000, key=habilitation) for _ in range(21))
        )
    finally:
        await limiter.close()

    assert all(decision.allowed for decision in decisions)


async def test_a_token_revoked_under_its_habilitation_is_refused(redis_server: RedisProcess) -> None:
    limiter = RateLimiter(connect(redis_server.url), settings())
    habilitation, token = new_jti(), new_jti()
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await client.set(revoked_key(token, habilitation), "1")
        revoked = await limiter.check(token, 10, key=habilitation)
        other = await limiter.check(new_jti(), 10, key=habilitation)
    finally:
        await client.aclose()
        await limiter.close()

    assert revoked.revoked
    assert other.allowed


async def test_a_session_has_its_own_bucket_beside_its_habilitation_s_in_the_same_round_trip(
    private_redis: RedisProcess,
) -> None:
    limiter = RateLimiter(connect(private_redis.url), settings(rate_limit_per_second=1, rate_limit_burst=5))
    habilitation, token = new_jti(), new_jti()
    client = redis.asyncio.Redis.from_url(private_redis.url)
    try:
        before = (await command_counts(client)).get("evalsha", 0)
        first = [await limiter.check(token, 1000, key=habilitation, session="citizen-1") for _ in range(6)]
        second = [await limiter.check(token, 1000, key=habilitation, session="citizen-2") for _ in range(5)]
        after = (await command_counts(client)).get("evalsha", 0)
    finally:
        await client.aclose()
        await limiter.close()

    # Five at once at the default rate (one a second after them), each session its own; the habilitation's
    # 1000 a second hold them all.
    assert [decision.allowed for decision in first] == [True] * 5 + [False]
    assert [decision.allowed for decision in second] == [True] * 5
    assert (first[-1].limit, first[-1].window_seconds) == (5, 1)
    assert after - before == 11


async def test_a_revoked_delegation_is_refused_00213_in_the_same_one_round_trip(
    private_redis: RedisProcess,
) -> None:
    limiter = RateLimiter(connect(private_redis.url), settings())
    habilitation, token, delegation = new_jti(), new_jti(), new_jti()
    client = redis.asyncio.Redis.from_url(private_redis.url)
    try:
        await client.set(revoked_delegation_key(delegation, habilitation), "1")
        await limiter.check(new_jti(), 10)  # first use: connection set-up and SCRIPT LOAD
        before = (await command_counts(client)).get("evalsha", 0)
        refused = await limiter.check(token, 10, key=habilitation, delegation=delegation)
        through_another = await limiter.check(token, 10, key=habilitation, delegation=new_jti())
        without = await limiter.check(token, 10, key=habilitation)
        after = (await command_counts(client)).get("evalsha", 0)
        await client.set(revoked_key(token, habilitation), "1")
        token_first = await limiter.check(token, 10, key=habilitation, delegation=delegation)
    finally:
        await client.aclose()
        await limiter.close()

    assert refused.revoked and refused.delegation_revoked and not refused.allowed
    assert refused.metadata == ()
    error = refused.refusal()
    assert (error.code, error.status) == ("00213", grpc.StatusCode.PERMISSION_DENIED)
    assert through_another.allowed and without.allowed
    assert after - before == 3
    # A token revoked is that, whatever its delegation: 00105.
    assert token_first.revoked and not token_first.delegation_revoked
    assert token_first.refusal().code == "00105"
