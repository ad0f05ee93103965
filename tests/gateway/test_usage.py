"""Usage statistics against a real Redis: batching, flushes, retention, outages, reads."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.exceptions import RedisError

from devstack.redis import RedisProcess
from gateway.usage import RETENTION_SECONDS, UsageRecorder, proofs_by_api_key, proofs_key, usage_key

TODAY = datetime.date(2026, 3, 9)
YESTERDAY = "2026-03-08"


@pytest.fixture
async def client(redis_server: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    days = ("2026-03-09", YESTERDAY, "2026-02-20", "2026-01-01")
    await connection.delete(*[key(d) for d in days for key in (proofs_key, proofs_by_api_key)])
    yield connection
    await connection.aclose()


def new_jti() -> str:
    return str(uuid.uuid4())


async def test_counts_stay_in_memory_until_a_flush(client: redis.asyncio.Redis) -> None:
    recorder = UsageRecorder(client, flush_seconds=3600, today=lambda: TODAY)
    await recorder.start()
    jti = new_jti()
    for _ in range(3):
        recorder.count(jti, "quotient_familial", "OK")
    recorder.count(jti, "quotient_familial", "NOT_FOUND")
    await asyncio.sleep(0.05)
    assert recorder.pending == 4
    assert await client.exists(usage_key(jti, "2026-03-09")) == 0  # nothing written on the request path
    assert await recorder.flush() == 4
    assert await client.hgetall(usage_key(jti, "2026-03-09")) == {
        "quotient_familial|OK": "3",
        "quotient_familial|NOT_FOUND": "1",
    }
    assert await client.get(proofs_key("2026-03-09")) == "3"  # only successes are proofs avoided
    assert recorder.pending == 0
    await recorder.close()


async def test_one_flush_is_one_transaction_per_hash_slot(client: redis.asyncio.Redis) -> None:
    """Each token's counters go in one MULTI/EXEC, the day's proofs in one more: Cluster-safe batches."""
    recorder = UsageRecorder(client, flush_seconds=3600, today=lambda: TODAY)
    jtis = [new_jti() for _ in range(5)]
    for jti in jtis:
        recorder.count(jti, "statut_etudiant", "OK")
        recorder.count(jti, "etudiant_boursier", "OK")
    before = (await client.info("stats"))["total_commands_processed"]
    await recorder.flush()
    after = (await client.info("stats"))["total_commands_processed"]
    # Per token: MULTI, 2 HINCRBY, 1 EXPIRE, EXEC; the proofs: MULTI, INCRBY, EXPIRE, then per API
    # HINCRBY (2) and the day's EXPIRE, EXEC; the first INFO.
    assert after - before == 5 * (1 + 2 + 1 + 1) + (1 + 1 + 1 + 2 + 1 + 1) + 1


async def test_the_background_task_flushes_periodically_and_close_flushes_the_rest(
    client: redis.asyncio.Redis,
) -> None:
    recorder = UsageRecorder(client, flush_seconds=0.05, today=lambda: TODAY)
    await recorder.start()
    jti = new_jti()
    recorder.count(jti, "c2s", "OK")
    await asyncio.sleep(0.2)
    assert await client.hget(usage_key(jti, "2026-03-09"), "c2s|OK") == "1"
    recorder.count(jti, "c2s", "OK")
    await recorder.close()
    assert await client.hget(usage_key(jti, "2026-03-09"), "c2s|OK") == "2"


async def test_close_flushes_without_a_started_task(client: redis.asyncio.Redis) -> None:
    recorder = UsageRecorder(client, flush_seconds=3600, today=lambda: TODAY)
    jti = new_jti()
    recorder.count(jti, "c2s", "OK")
    await recorder.close()
    assert await client.hget(usage_key(jti, "2026-03-09"), "c2s|OK") == "1"


async def test_counters_expire_after_62_days(client: redis.asyncio.Redis) -> None:
    recorder = UsageRecorder(client, flush_seconds=3600, today=lambda: TODAY)
    jti = new_jti()
    recorder.count(jti, "aah", "OK")
    await recorder.flush()
    for key in (usage_key(jti, "2026-03-09"), proofs_key("2026-03-09")):
        ttl = await client.ttl(key)
        assert RETENTION_SECONDS - 5 <= ttl <= RETENTION_SECONDS
    assert RETENTION_SECONDS == 62 * 86400


async def test_counts_survive_a_redis_outage_between_flushes() -> None:
    server = RedisProcess()
    server.start()
    client = redis.asyncio.Redis.from_url(server.url, decode_responses=True)
    recorder = UsageRecorder(client, flush_seconds=3600, timeout_seconds=1.0, today=lambda: TODAY)
    jti = new_jti()
    try:
        recorder.count(jti, "asf", "OK")
        await recorder.flush()
        server.stop()
        recorder.count(jti, "asf", "OK")
        recorder.count(jti, "asf", "UNAVAILABLE")
        with pytest.raises((RedisError, OSError, TimeoutError)):
            await recorder.flush()
        assert recorder.pending == 2  # kept for the next flush
        recorder.count(jti, "asf", "OK")  # and counting goes on meanwhile
        server.start()  # an empty Redis: only what was not written before is sent again
        assert await recorder.flush() == 3
        assert await client.hgetall(usage_key(jti, "2026-03-09")) == {"asf|OK": "2", "asf|UNAVAILABLE": "1"}
        assert await client.get(proofs_key("2026-03-09")) == "2"
    finally:
        await recorder.close()
        await client.aclose()
        server.close()


async def test_reads_of_a_token_s_usage_and_of_proofs_avoided(client: redis.asyncio.Redis) -> None:
    jti, other = new_jti(), new_jti()
    days = iter([datetime.date(2026, 1, 1), datetime.date(2026, 2, 20), datetime.date(2026, 3, 8)])
    day = next(days)
    recorder = UsageRecorder(client, flush_seconds=3600, today=lambda: day)
    recorder.count(jti, "quotient_familial", "OK")  # 2026-01-01: older than 62 days on 2026-03-09
    await recorder.flush()
    day = next(days)
    recorder.count(jti, "statut_rsa", "OK")  # 2026-02-20
    recorder.count(other, "statut_rsa", "OK")
    await recorder.flush()
    day = next(days)
    for _ in range(2):
        recorder.count(jti, "statut_rsa", "OK")  # 2026-03-08
    recorder.count(jti, "statut_rsa", "PERMISSION_DENIED")
    recorder.count(jti, "c2s", "OK")
    await recorder.flush()

    reader = UsageRecorder(client, flush_seconds=3600, today=lambda: TODAY)
    assert await reader.usage_of(jti, 62) == [
        (YESTERDAY, "c2s", "OK", 1),
        (YESTERDAY, "statut_rsa", "OK", 2),
        (YESTERDAY, "statut_rsa", "PERMISSION_DENIED", 1),
        ("2026-02-20", "statut_rsa", "OK", 1),
    ]
    assert await reader.usage_of(jti, 1) == []  # today only
    assert await reader.usage_of(new_jti(), 62) == []
    # Over 30 days: 2026-02-08 to 2026-03-09, all tokens, successes only.
    assert await reader.proofs_avoided() == 2 + 3
    assert await reader.proofs_avoided(days=1) == 0
    # Per API and day, oldest first: successes only, the 62 days kept.
    assert await reader.proofs_by_api() == [
        ("2026-02-20", "statut_rsa", 2),
        (YESTERDAY, "c2s", 1),
        (YESTERDAY, "statut_rsa", 2),
    ]
    assert await reader.proofs_by_api(days=1) == []
    assert 0 < await client.ttl(proofs_by_api_key(YESTERDAY)) <= RETENTION_SECONDS
