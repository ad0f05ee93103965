"""The habilitation of a FranceConnect client, read from a real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from devstack.redis import RedisProcess, free_port
from gateway.france_connect.clients import FranceConnectClients, link, unlink
from gateway.tokens import TokenRecord
from runtime.errors import ApiError

EXPIRES_AT = int(time.time()) + 3600
RECORD = TokenRecord(
    jti="3c0b7c8e-6f7c-4b8e-9a51-6b1f2f0d7a10",
    label="CCAS de Test",
    siret="13002526500013",
    scopes=("cnaf_quotient_familial", "cnaf_enfants"),
    iat=int(time.time()),
    exp=EXPIRES_AT,
    rate_limit=7,
    revoked=False,
)


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[tuple[redis.Redis, redis.asyncio.Redis]]:
    sync, asynchronous = (
        redis.Redis.from_url(redis_server.url),
        redis.asyncio.Redis.from_url(redis_server.url),
    )
    yield sync, asynchronous
    sync.close()
    await asynchronous.aclose()


async def test_a_linked_client_calls_under_its_token(store: tuple[redis.Redis, redis.asyncio.Redis]) -> None:
    sync, asynchronous = store
    link(sync, "client-a", RECORD)
    token = await FranceConnectClients(asynchronous, cache_seconds=0).token_of("client-a")
    assert (token.jti, token.habilitation, token.siret) == (RECORD.jti, RECORD.label, RECORD.siret)
    assert token.scopes == frozenset(RECORD.scopes)
    assert (token.expires_at, token.rate_limit_per_second) == (RECORD.exp, 7)


async def test_unlinked_and_malformed_clients_are_00101(
    store: tuple[redis.Redis, redis.asyncio.Redis],
) -> None:
    clients = FranceConnectClients(store[1], cache_seconds=0)
    for client_id in ("nobody", "{bad}", ""):
        with pytest.raises(ApiError) as refused:
            await clients.token_of(client_id)
        assert refused.value.code == "00101"


async def test_an_expired_token_is_00103(store: tuple[redis.Redis, redis.asyncio.Redis]) -> None:
    sync, asynchronous = store
    link(sync, "client-b", RECORD)
    clients = FranceConnectClients(asynchronous, cache_seconds=0, wall_clock=lambda: EXPIRES_AT + 1)
    with pytest.raises(ApiError) as refused:
        await clients.token_of("client-b")
    assert refused.value.code == "00103"


async def test_a_link_is_kept_for_the_cache_time(store: tuple[redis.Redis, redis.asyncio.Redis]) -> None:
    sync, asynchronous = store
    now = [0.0]
    clients = FranceConnectClients(asynchronous, cache_seconds=30, clock=lambda: now[0])
    link(sync, "client-c", RECORD)
    await clients.token_of("client-c")
    unlink(sync, "client-c")
    now[0] = 29.0
    assert (await clients.token_of("client-c")).jti == RECORD.jti
    now[0] = 31.0
    with pytest.raises(ApiError):
        await clients.token_of("client-c")


async def test_redis_unreachable_is_00503() -> None:
    unreachable = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.2)
    with pytest.raises(ApiError) as refused:
        await FranceConnectClients(unreachable, cache_seconds=0).token_of("client-d")
    assert refused.value.code == "00503"
    await unreachable.aclose()
