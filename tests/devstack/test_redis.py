"""The bundled redis-server starts, answers, stops and restarts on the same port."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import redis

from devstack.redis import RedisProcess
from gateway.admin import registry
from gateway.rate_script import revoked_key
from gateway.revocations import REVOKED_SET


def test_redis_process_restarts_on_the_same_port() -> None:
    """A stopped server refuses connections; started again, it answers on the same URL."""
    server = RedisProcess()
    try:
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        server.stop()
        assert not server.running
        try:
            client.ping()
        except redis.ConnectionError:
            pass
        else:
            raise AssertionError("a stopped redis-server answered")
        server.start()
        assert client.ping() is True
        client.close()
    finally:
        server.close()


def test_session_fixture_is_a_real_redis(redis_server: RedisProcess) -> None:
    """The session fixture is a real server: it stores and returns values."""
    client = redis.Redis.from_url(redis_server.url)
    client.set("fixture:probe", "1")
    assert client.get("fixture:probe") == b"1"
    client.close()


def test_make_run_s_redis_keeps_a_revocation_across_a_crash(tmp_path: Path) -> None:
    """With the data directory `make run` gives it, a revocation survives a kill -9 a second later.

    `make run`'s Redis kept nothing: a revoked token was valid again after a restart.
    """
    server = RedisProcess(data_dir=tmp_path / "redis")
    try:
        server.start()
        client = redis.Redis.from_url(server.url)
        jti = str(uuid.uuid4())
        now = int(time.time())
        registry.register(
            client,
            {
                "jti": jti,
                "sub": "CCAS",
                "siret": "13002526500013",
                "scopes": [],
                "iat": now,
                "exp": now + 3600,
            },
        )
        registry.revoke(client, jti)
        time.sleep(1.5)  # appendfsync everysec: on disk within a second
        server.kill()
        server.start()
        assert client.exists(revoked_key(jti))
        assert client.sismember(REVOKED_SET, jti)
        client.close()
    finally:
        server.close()
    assert (tmp_path / "redis").is_dir()  # kept, unlike the scratch directory
