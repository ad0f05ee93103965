"""The bundled redis-server starts, answers, stops and restarts on the same port."""

from __future__ import annotations

import redis

from devstack.redis import RedisProcess


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
