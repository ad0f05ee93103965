"""The rate limiter's pipelined Redis connection, against real Redis servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.exceptions

from devstack.redis import RedisProcess
from gateway.redis.client import connect
from gateway.redis.pipeline import PipelinedRedis, pipeline_for


def at(server: RedisProcess, asked: list[int] | None = None, *, timeout: float = 2.0) -> PipelinedRedis:
    """A pipelined connection to ``server``, counting in ``asked`` how often it asks where Redis is."""

    async def address() -> tuple[str, int]:
        if asked is not None:
            asked.append(1)
        return "127.0.0.1", server.port

    return PipelinedRedis(address, timeout=timeout, connect_timeout=1.0)


@pytest.fixture
async def pipeline(private_redis: RedisProcess) -> AsyncIterator[PipelinedRedis]:
    connection = at(private_redis)
    yield connection
    await connection.aclose()


async def test_concurrent_commands_share_one_connection_and_each_gets_its_own_reply(
    pipeline: PipelinedRedis, private_redis: RedisProcess
) -> None:
    replies = await asyncio.gather(*(pipeline.execute("ECHO", f"call-{n}") for n in range(500)))
    assert replies == [f"call-{n}".encode() for n in range(500)]
    observer = redis.Redis(port=private_redis.port)
    try:
        clients = observer.client_list()
        assert len(clients) == 2  # the pipelined connection and the observer
    finally:
        observer.close()


async def test_a_caller_that_stops_waiting_leaves_the_others_their_replies(pipeline: PipelinedRedis) -> None:
    # BLPOP holds the connection 0.3 s: the ECHO sent behind it is answered after it, in order.
    blocked = asyncio.ensure_future(pipeline.execute("BLPOP", "nothing", "0.3"))
    await asyncio.sleep(0.05)
    echo = asyncio.ensure_future(pipeline.execute("ECHO", "mine"))
    blocked.cancel()
    assert await echo == b"mine"  # not BLPOP's nil, which was read and dropped
    assert await pipeline.execute("ECHO", "after") == b"after"


async def test_an_overdue_reply_condemns_the_connection(private_redis: RedisProcess) -> None:
    asked: list[int] = []
    pipeline = at(private_redis, asked, timeout=0.1)
    try:
        await pipeline.execute("PING")
        # A reply that never comes in time, like a half-open connection's.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await pipeline.execute("BLPOP", "nothing", "5")
        await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await pipeline.execute("ECHO", "fresh") == b"fresh"
        assert time.monotonic() - started < 1.0  # not queued behind the 5 s BLPOP
        assert len(asked) == 2  # a new connection was opened
    finally:
        await pipeline.aclose()


async def test_a_lost_connection_fails_its_calls_and_the_next_call_reconnects(
    private_redis: RedisProcess,
) -> None:
    pipeline = at(private_redis)
    try:
        waiting = asyncio.ensure_future(pipeline.execute("BLPOP", "nothing", "5"))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(private_redis.kill)
        with pytest.raises(redis.exceptions.ConnectionError):
            await waiting
        with pytest.raises(redis.exceptions.ConnectionError):
            await pipeline.execute("PING")
        await asyncio.to_thread(private_redis.start)
        assert await pipeline.execute("PING") == b"PONG"
    finally:
        await pipeline.aclose()


async def test_error_replies_raise_what_redis_py_raises_and_the_connection_goes_on(
    pipeline: PipelinedRedis,
) -> None:
    with pytest.raises(redis.exceptions.NoScriptError):
        await pipeline.evalsha("0" * 40, 0)
    with pytest.raises(redis.exceptions.ResponseError):
        await pipeline.execute("NOSUCHCOMMAND")
    sha = await pipeline.script_load("return ARGV[1] + 1")
    assert await pipeline.evalsha(sha, 0, 41) == 42


async def test_readonly_sends_the_next_call_to_where_the_primary_is_then(
    private_redis: RedisProcess,
) -> None:
    """After a failover the old primary answers READONLY: the next call asks where the primary is."""
    replica = RedisProcess(extra_args=("--replicaof", "127.0.0.1", str(private_redis.port)))
    replica.start()
    servers = [replica, private_redis]

    async def address() -> tuple[str, int]:
        return "127.0.0.1", servers.pop(0).port

    pipeline = PipelinedRedis(address, timeout=2.0, connect_timeout=1.0)
    try:
        with pytest.raises(redis.exceptions.ReadOnlyError):
            await pipeline.execute("SET", "failover", "1")
        assert await pipeline.execute("SET", "failover", "1") == b"OK"
    finally:
        await pipeline.aclose()
        replica.close()


async def test_a_client_s_password_and_database_are_used(private_redis: RedisProcess) -> None:
    admin = redis.Redis(port=private_redis.port)
    admin.config_set("requirepass", "s3cret")
    client = redis.asyncio.Redis.from_url(f"redis://:s3cret@127.0.0.1:{private_redis.port}/3")
    pipeline = pipeline_for(client)
    wrong = pipeline_for(redis.asyncio.Redis.from_url(f"redis://:wrong@127.0.0.1:{private_redis.port}/3"))
    assert pipeline is not None
    assert wrong is not None
    try:
        assert await pipeline.execute("SET", "in-db-3", "yes") == b"OK"
        assert await client.get("in-db-3") == b"yes"
        with pytest.raises(redis.exceptions.AuthenticationError):
            await wrong.execute("PING")
    finally:
        await pipeline.aclose()
        await wrong.aclose()
        await client.aclose()
        admin.close()


async def test_a_login_left_unanswered_closes_its_connection() -> None:
    """A server that takes the connection and never answers AUTH: TimeoutError, and the connection closed."""
    closed = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def address() -> tuple[str, int]:
        return "127.0.0.1", port

    pipeline = PipelinedRedis(address, password="s3cret", timeout=1.0, connect_timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            await pipeline.execute("PING")
        await asyncio.wait_for(closed.wait(), 2)
    finally:
        await pipeline.aclose()
        server.close()
        await server.wait_closed()


def test_only_plain_and_sentinel_clients_get_a_pipeline() -> None:
    assert pipeline_for(redis.asyncio.Redis.from_url("redis://127.0.0.1:6379/0")) is not None
    assert pipeline_for(connect("redis+sentinel://127.0.0.1:26379/mymaster")) is not None
    assert pipeline_for(redis.asyncio.Redis.from_url("rediss://127.0.0.1:6379/0")) is None
    assert pipeline_for(redis.asyncio.Redis.from_url("unix:///tmp/redis.sock")) is None
    cluster = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=7000)
    assert pipeline_for(cluster) is None  # type: ignore[arg-type]
