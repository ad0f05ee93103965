"""The activity of habilitations and delegations (`gateway.usage`): per 10 minutes and the last calls.

Against a real Redis, and through a real gateway: the counts equal the calls made, and the last
calls hold no personal data (neither the person asked about, nor the recipient, nor a parameter).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess
from gateway.usage import (
    ACTIVITY_RETENTION_SECONDS,
    BUCKET_SECONDS,
    LAST_REQUESTS,
    Details,
    UsageRecorder,
    activity_key,
    delegation_counter,
    habilitation_counter,
    read_activity,
    read_last_requests,
    recent_key,
)
from runtime.errors import ApiError
from tests.gateway.conftest import Mesh
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.people import RECIPIENT

_NOW = 1_773_000_000.0  # a bucket's start: 10 minutes divide it
_QF = "cnaf.quotient_familial"


@pytest.fixture
async def client(redis_server: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    yield connection
    await connection.aclose()


def _details(habilitation: str, delegation: str = "", code: str = "", request_id: str = "r-1") -> Details:
    return Details(habilitation, delegation, code, 12.34, request_id)


async def test_calls_are_counted_per_10_minutes_by_api_outcome_and_code(
    client: redis.asyncio.Redis,
) -> None:
    now = [_NOW]
    recorder = UsageRecorder(client, flush_seconds=3600, clock=lambda: now[0])
    habilitation, delegation = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(3):
        recorder.count(str(uuid.uuid4()), _QF, "OK", habilitation, details=_details(habilitation))
    recorder.count("t", _QF, "PERMISSION_DENIED", details=_details(habilitation, delegation, "00100"))
    now[0] += BUCKET_SECONDS + 1  # the next 10 minutes
    recorder.count("t", "c2s", "OK", details=_details(habilitation, delegation))
    recorder.count("t", "c2s", "OK", details=_details(""))  # no habilitation: no activity
    assert await client.exists(activity_key(habilitation_counter(habilitation), int(_NOW))) == 0
    await recorder.flush()

    assert await read_activity(client, habilitation_counter(habilitation), buckets=3, now=now[0]) == [
        (int(_NOW), _QF, "OK", "", 3),
        (int(_NOW), _QF, "PERMISSION_DENIED", "00100", 1),
        (int(_NOW) + BUCKET_SECONDS, "c2s", "OK", "", 1),
    ]
    assert await read_activity(client, delegation_counter(delegation), buckets=1, now=now[0]) == [
        (int(_NOW) + BUCKET_SECONDS, "c2s", "OK", "", 1),
    ]
    ttl = await client.ttl(activity_key(habilitation_counter(habilitation), int(_NOW)))
    assert ACTIVITY_RETENTION_SECONDS - 5 <= ttl <= ACTIVITY_RETENTION_SECONDS
    last = await read_last_requests(client, habilitation_counter(habilitation))
    assert [(entry.api, entry.outcome, entry.code) for entry in last] == [
        ("c2s", "OK", ""),
        (_QF, "PERMISSION_DENIED", "00100"),
        *[(_QF, "OK", "")] * 3,
    ]
    assert last[0].at == now[0] and last[0].latency_ms == 12.3


async def test_only_the_last_calls_are_kept(client: redis.asyncio.Redis) -> None:
    recorder = UsageRecorder(client, flush_seconds=3600, clock=lambda: _NOW)
    habilitation = str(uuid.uuid4())
    for number in range(LAST_REQUESTS + 10):
        recorder.count("t", _QF, "OK", details=_details(habilitation, request_id=f"r-{number}"))
        if number == 20:
            await recorder.flush()
    await recorder.flush()
    assert await client.llen(recent_key(habilitation_counter(habilitation))) == LAST_REQUESTS
    last = await read_last_requests(client, habilitation_counter(habilitation))
    assert [entry.request_id for entry in last] == [f"r-{n}" for n in range(LAST_REQUESTS + 9, 9, -1)]


async def test_an_activity_not_written_is_kept_for_the_next_flush(private_redis: RedisProcess) -> None:
    connection = redis.asyncio.Redis.from_url(private_redis.url, decode_responses=True, socket_timeout=1)
    recorder = UsageRecorder(connection, flush_seconds=3600, timeout_seconds=1, clock=lambda: _NOW)
    habilitation = str(uuid.uuid4())
    recorder.count("t", _QF, "OK", details=_details(habilitation, request_id="r-1"))
    private_redis.stop()
    with pytest.raises((redis.RedisError, OSError, TimeoutError)):
        await recorder.flush()
    recorder.count("t", _QF, "OK", details=_details(habilitation, request_id="r-2"))
    private_redis.start()
    await recorder.flush()
    counter = habilitation_counter(habilitation)
    assert await read_activity(connection, counter, buckets=1, now=_NOW) == [(int(_NOW), _QF, "OK", "", 2)]
    assert [entry.request_id for entry in await read_last_requests(connection, counter)] == ["r-2", "r-1"]
    await connection.aclose()


async def test_a_window_out_of_range_is_refused(client: redis.asyncio.Redis) -> None:
    with pytest.raises(ApiError) as refused:
        await read_activity(client, habilitation_counter("x"), buckets=8 * 144 + 1, now=_NOW)
    assert refused.value.code == "00400"


async def test_a_gateway_s_calls_are_its_habilitation_s_activity_without_personal_data(
    mesh: Mesh, client: redis.asyncio.Redis
) -> None:
    """A gateway without registry: the habilitation is the token's `sub` (its id, issued by the admin API)."""
    habilitation = str(uuid.uuid4())
    cnaf = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    granted = mesh.factory.bearer(sub=habilitation)
    for _ in range(2):
        await cnaf.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(granted))
    refused = mesh.factory.bearer(sub=habilitation, scopes=["c2s"])
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await cnaf.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(refused))
    assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED

    counter = habilitation_counter(habilitation)
    for _ in range(50):
        last = await read_last_requests(client, counter)
        if len(last) == 3:
            break
        await asyncio.sleep(0.1)
    activity = await read_activity(client, counter, buckets=2, now=last[0].at)
    assert sorted((api, outcome, code, calls) for _, api, outcome, code, calls in activity) == [
        (_QF, "OK", "", 2),
        (_QF, "PERMISSION_DENIED", "00100", 1),
    ]
    stored = [str(value) for value in await client.lrange(recent_key(counter), 0, -1)]
    for entry in map(json.loads, stored):
        assert set(entry) == {"at", "api", "outcome", "code", "latency_ms", "request_id"}
    text = " ".join(stored).lower()
    for personal in ("lefebvre", "alexis", "gérôme", "1982", "08480", RECIPIENT):
        assert personal.lower() not in text
