"""Redis clients from REDIS_URL: a plain Redis, one behind Sentinel, or a Redis Cluster.

redis-py reads the plain URLs (``redis://``, ``rediss://``) itself but has none for
Sentinel or for a Cluster of several seed nodes. This module also reads

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]
    redis+cluster://[[user]:password@]host:port[,host:port...]

For Sentinel, the password is the Redis primary's (Sentinels are asked without one)
and the client follows the primary across failovers. For a Cluster, the hosts are
seed nodes; the client learns the slots from them. Every key the gateway writes
carries a hash tag, so each script and each transaction stays within one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.exceptions
import redis.sentinel
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
_DEFAULT_SENTINEL_PORT = 26379
_DEFAULT_REDIS_PORT = 6379


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where a ``redis+sentinel://`` URL points."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    username: str | None
    password: str | None


def _hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for host in filter(None, netloc.rpartition("@")[2].split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        try:
            hosts.append((name, int(port) if port else default_port))
        except ValueError:
            raise ValueError("REDIS_URL: a port is not a number") from None
    return tuple(hosts)


def _credentials(netloc: str) -> tuple[str | None, str | None]:
    credentials = netloc.rpartition("@")[0]
    username, _, password = credentials.partition(":")
    return unquote(username) or None, unquote(password) or None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Read a ``redis+sentinel://`` URL.

    Raises:
        ValueError: the URL is not of that form; the message never repeats a password.
    """
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"REDIS_URL: expected {SENTINEL_SCHEME}://")
    sentinels = _hosts(parts.netloc, _DEFAULT_SENTINEL_PORT)
    username, password = _credentials(parts.netloc)
    path = [segment for segment in parts.path.split("/") if segment]
    if not sentinels or not 1 <= len(path) <= 2:
        raise ValueError("REDIS_URL: expected redis+sentinel://host:port[,host:port...]/service_name[/db]")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError("REDIS_URL: the database is a number")
    return SentinelTarget(
        sentinels=sentinels,
        service_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=username,
        password=password,
    )


def parse_cluster_url(url: str) -> tuple[tuple[tuple[str, int], ...], str | None, str | None]:
    """Read a ``redis+cluster://`` URL: the seed nodes, the username and the password.

    Raises:
        ValueError: the URL is not of that form; the message never repeats a password.
    """
    parts = urlsplit(url)
    nodes = _hosts(parts.netloc, _DEFAULT_REDIS_PORT)
    if parts.scheme != CLUSTER_SCHEME or not nodes or parts.path.strip("/"):
        raise ValueError("REDIS_URL: expected redis+cluster://host:port[,host:port...]")
    return (nodes, *_credentials(parts.netloc))


class BlockingSentinelConnectionPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """A Sentinel pool that follows the primary and, when every connection is busy, waits for one."""


def connect(
    url: str, *, max_connections: int = 100, pool_timeout: float = 10.0, **options: Any
) -> redis.asyncio.Redis:
    """An asyncio client for REDIS_URL.

    At most ``max_connections`` connections are open (per node on a Cluster). On a
    plain or Sentinel Redis a command finding them all busy waits for one, up to
    ``pool_timeout`` seconds, then raises `redis.exceptions.ConnectionError`; on a
    Cluster it raises `redis.exceptions.MaxConnectionsError` at once. A command
    that finds its connection closed by the server (a Redis restarted since the
    connection was last used) is sent again once on a new connection.

    Args:
        url: REDIS_URL.
        max_connections: Most connections open at once.
        pool_timeout: Longest wait for a free connection, in seconds.
        options: redis-py connection options (timeouts).
    """
    once_more = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))
    options = {"retry": once_more, **options}
    scheme = urlsplit(url).scheme
    if scheme == CLUSTER_SCHEME:
        nodes, username, password = parse_cluster_url(url)
        cluster = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in nodes],
            username=username,
            password=password,
            max_connections=max_connections,
            **options,
        )
        # Same command interface; the cluster client routes each command to its slot's node.
        return cast("redis.asyncio.Redis", cluster)
    if scheme != SENTINEL_SCHEME:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout, **options
        )
        return redis.asyncio.Redis.from_pool(pool)
    target = parse_sentinel_url(url)
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=options, **options)
    client = sentinel.master_for(
        target.service_name,
        connection_pool_class=BlockingSentinelConnectionPool,
        db=target.db,
        username=target.username,
        password=target.password,
        max_connections=max_connections,
        timeout=pool_timeout,
    )
    return cast("redis.asyncio.Redis", client)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A blocking client for REDIS_URL, for the admin CLI; same URLs as `connect`."""
    scheme = urlsplit(url).scheme
    if scheme == CLUSTER_SCHEME:
        nodes, username, password = parse_cluster_url(url)
        cluster = redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in nodes],  # type: ignore[no-untyped-call]
            username=username,
            password=password,
            **options,
        )
        return cast("redis.Redis", cluster)
    if scheme != SENTINEL_SCHEME:
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=options, **options)
    client = sentinel.master_for(
        target.service_name, db=target.db, username=target.username, password=target.password
    )
    return cast("redis.Redis", client)


def _sentinels_of(client: redis.Redis | redis.asyncio.Redis) -> list[Any]:
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
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
