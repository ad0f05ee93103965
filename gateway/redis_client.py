"""Redis clients from REDIS_URL: a plain Redis (``redis://``, ``rediss://``) or one behind Sentinel.

redis-py reads the plain URLs itself but has no URL for Sentinel, which a managed
Redis with automatic failover is usually reached through. This module reads

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]

(the password is the Redis primary's; Sentinels are asked without one) and returns a
client bound to the current primary: after a failover it follows the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

SENTINEL_SCHEME = "redis+sentinel"
_DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where a ``redis+sentinel://`` URL points."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Read a ``redis+sentinel://`` URL.

    Raises:
        ValueError: the URL is not of that form; the message never repeats a password.
    """
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"REDIS_URL: expected {SENTINEL_SCHEME}://")
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    sentinels = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        try:
            sentinels.append((name, int(port) if port else _DEFAULT_SENTINEL_PORT))
        except ValueError:
            raise ValueError("REDIS_URL: a Sentinel port is not a number") from None
    path = [segment for segment in parts.path.split("/") if segment]
    if not sentinels or not 1 <= len(path) <= 2:
        raise ValueError("REDIS_URL: expected redis+sentinel://host:port[,host:port...]/service_name[/db]")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError("REDIS_URL: the database is a number")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        service_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def connect(url: str, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client for REDIS_URL; ``options`` are redis-py connection options (timeouts)."""
    if urlsplit(url).scheme != SENTINEL_SCHEME:
        return redis.asyncio.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    # redis-py's Sentinel classes carry no annotations, hence the casts and ignores.
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=options, **options)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(
        target.service_name, db=target.db, username=target.username, password=target.password
    )
    return cast("redis.asyncio.Redis", client)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A blocking client for REDIS_URL, for the admin CLI; same URLs as `connect`."""
    if urlsplit(url).scheme != SENTINEL_SCHEME:
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=options, **options)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.service_name, db=target.db, username=target.username, password=target.password
    )
    return cast("redis.Redis", client)


def _sentinels_of(client: redis.Redis | redis.asyncio.Redis) -> list[Any]:
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    return list(getattr(manager, "sentinels", ()))


async def close(client: redis.asyncio.Redis) -> None:
    """Close a client of `connect`, with its connections to the Sentinels if it has any."""
    await client.aclose()
    for sentinel in _sentinels_of(client):
        await sentinel.aclose()


def close_sync(client: redis.Redis) -> None:
    """Close a client of `connect_sync`, with its connections to the Sentinels if it has any."""
    client.close()
    for sentinel in _sentinels_of(client):
        sentinel.close()
