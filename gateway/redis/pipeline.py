"""One pipelined connection to Redis, for the rate limiter's one command per call.

Through redis-py's asyncio client each command of the limiter cost about 80 µs of the
gateway's CPU (measured: ``docs/BENCHMARKS.md``): a connection taken from the pool and
given back, the command written with a system call of its own and read under timeouts
of its own, through layers of retries, events and instrumentation. Here every call of
the process shares one connection: the commands go out in batches, one write each
(alone when nothing is on its way, else those that came while the previous batch
was), Redis answers them in order, and each reply goes to its caller as hiredis
parses it (about 10 µs a call under load). Each call is still one command with its
own reply: the connection and the system calls are shared, never a command.

Failures:

- A lost connection fails every call waiting on it with
  `redis.exceptions.ConnectionError`; the next call opens a new one, to the primary
  a Sentinel names at that moment.
- A batch whose last reply is overdue by ``timeout`` seconds after it was written
  condemns the connection: its calls, and those queued behind it, fail with
  `TimeoutError`, and the next call opens a new connection (a half-open connection
  never answers again). Overdue means Redis did not answer, not that this process
  was too busy to read the answer: when the clock runs out, the event loop reads
  its sockets once more first (`_Connection._overdue`), and replies that had
  arrived meanwhile count. A command waiting for the batch ahead of it is not on
  the clock: its time starts when it is written. A caller that stops waiting, on
  its own timeout or cancelled, leaves the connection as it is: its reply is read
  and dropped in turn.
- An error reply raises what redis-py raises for it (`NoScriptError`,
  `ReadOnlyError`, `ResponseError`); ``READONLY`` (a primary demoted by a failover)
  also condemns the connection, so the next call asks the Sentinel again.

`pipeline_for` derives the connection from the redis-py client the gateway already
has: a plain TCP client, or one following a Sentinel's primary. Over TLS, a Unix socket
or on a Cluster (a connection per node, and redirections) it gives None, and the
limiter keeps to redis-py's own commands.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis
import redis.asyncio
import redis.exceptions
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import (
    AuthenticationError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

Address = Callable[[], Awaitable[tuple[str, int]]]
"""Where the primary is, asked before each new connection."""

_ERRORS: dict[str, type[RedisError]] = {
    "NOSCRIPT": NoScriptError,
    "READONLY": ReadOnlyError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
}


def _reply_error(message: str) -> RedisError:
    """The redis-py exception of an error reply, kept as the reply its caller gets."""
    kind = _ERRORS.get(message.partition(" ")[0], ResponseError)
    return kind(message)


def pack(arguments: Sequence[str | int | bytes]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(arguments)]
    for argument in arguments:
        data = argument if isinstance(argument, bytes) else str(argument).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One TCP connection: commands written in batches, replies handed out in order.

    A command finding nothing on its way goes at once; the commands that come while
    a batch is on its way wait for its last reply and go together then. Under load a
    batch holds every command of one Redis round trip, one write and one read for all
    of them; alone, a command waits for nothing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=_reply_error)
        # Each command's caller, oldest first: Redis answers in that order.
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._outgoing: list[bytes] = []
        self._unanswered = 0  # commands written whose reply has not been read
        self._batches = 0  # batches written so far: the one in flight is the last
        self._clock: asyncio.Handle | None = None  # the batch in flight's timeout
        self._transport: asyncio.Transport | None = None
        self.condemned = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not derive from asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError:
                self.close()
                return
            if reply is False:
                break
            if not self._waiting:  # a reply nobody asked for: the stream is out of step
                self.close()
                return
            self._unanswered -= 1
            future = self._waiting.popleft()
            if not future.done():  # a caller that stopped waiting drops its reply
                future.set_result(reply)
            if isinstance(reply, ReadOnlyError):
                self.close()
        if not self._unanswered:
            self._stop_clock()
            if self._outgoing:  # the batch is answered: the next one goes
                self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.condemned = True
        self._stop_clock()
        self._fail_waiting(redis.exceptions.ConnectionError("the connection to Redis was lost"))

    def _fail_waiting(self, error: Exception) -> None:
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        """Queue one packed command; its reply (or error reply) completes the future."""
        future = self._loop.create_future()
        self._waiting.append(future)
        self._outgoing.append(command)
        if not self._unanswered:
            self._flush()
        return future

    def close(self) -> None:
        """Condemn the connection: its waiting calls fail, the next call opens another."""
        self.condemned = True
        self._stop_clock()
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        if not self._outgoing or self._transport is None or self.condemned:
            return
        self._transport.write(b"".join(self._outgoing))
        self._unanswered += len(self._outgoing)
        self._outgoing.clear()
        self._batches += 1
        self._clock = self._loop.call_later(self._timeout, self._overdue, self._batches, 2)

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def _overdue(self, batch: int, passes: int) -> None:
        """The batch in flight ran out of time: condemn the connection, once the loop read its sockets.

        A timer may fire before the loop reads replies that came while it was busy (libuv runs
        timers before it polls; asyncio runs the callbacks made ready in one pass before those of
        the next poll): each pass goes back to the loop, so a poll and its reads happen between
        the first and the last, and a reply read then stops the clock.
        """
        if self.condemned or self._batches != batch or not self._unanswered:
            return  # answered meanwhile
        if passes:
            self._clock = self._loop.call_soon(self._overdue, batch, passes - 1)
            return
        self._fail_waiting(TimeoutError("Redis did not answer in time"))
        self.close()


class PipelinedRedis:
    """Commands to one Redis primary over one shared, pipelined connection.

    Args:
        address: Where the primary is, asked before each new connection.
        username: ACL user, if any.
        password: Password (``AUTH``), if any.
        db: Database number (``SELECT``).
        timeout: Seconds after which an unanswered reply condemns the connection.
        connect_timeout: Longest time, in seconds, to open a connection and log in.
    """

    def __init__(
        self,
        address: Address,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self._address = address
        self._login = [
            *([("AUTH", username, password) if username else ("AUTH", password)] if password else []),
            *([("SELECT", db)] if db else []),
        ]
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._opening = asyncio.Lock()

    async def execute(self, *arguments: str | int | bytes) -> Any:
        """Send one command and return its reply.

        Raises:
            redis.exceptions.ConnectionError: Redis cannot be reached, or the connection
                was lost before the reply.
            redis.exceptions.RedisError: Redis answered with an error: what redis-py raises for it.
            TimeoutError: no connection could be opened within ``connect_timeout``, or the reply was
                overdue (Redis, not this process, was late: `_Connection._overdue`).
        """
        loop = asyncio.get_running_loop()
        connection = self._connection
        if connection is None or connection.condemned:
            connection = await self._connected(loop)
        reply = await connection.send(pack(arguments))
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def script_load(self, script: str) -> str:
        """``SCRIPT LOAD``: the script's SHA1, by which `evalsha` runs it."""
        sha: bytes = await self.execute("SCRIPT", "LOAD", script)
        return sha.decode()

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> Any:
        """``EVALSHA``: the script's reply (NoScriptError when Redis has not loaded it)."""
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    async def aclose(self) -> None:
        """Close the connection; calls waiting on it fail."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _connected(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        async with self._opening:  # the calls that find no connection wait for one, opened once
            connection = self._connection
            if connection is not None and not connection.condemned:
                return connection
            async with asyncio.timeout(self._connect_timeout):
                host, port = await self._address()
                try:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(loop, self._timeout), host, port
                    )
                except OSError as error:
                    message = f"cannot connect to Redis: {error.strerror}"
                    raise redis.exceptions.ConnectionError(message) from None
                try:
                    await self._log_in(connection, loop)
                except BaseException:  # refused, timed out or cancelled: nobody will use it
                    connection.close()
                    raise
            self._connection = connection
            return connection

    async def _log_in(self, connection: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        """``AUTH`` and ``SELECT`` on a new connection, as the client's settings say.

        Raises:
            redis.exceptions.RedisError: Redis refused one (a wrong password, a database out of range).
        """
        for command in self._login:
            reply = await connection.send(pack(command))
            if isinstance(reply, RedisError):
                raise reply


def pipeline_for(client: redis.asyncio.Redis) -> PipelinedRedis | None:
    """A pipelined connection to the primary ``client`` talks to; None when it cannot have one.

    None for a Cluster client, a TLS or Unix socket connection, or a credential provider.
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    options: dict[str, Any] = pool.connection_kwargs
    if options.get("credential_provider") is not None:
        return None
    address: Address
    if isinstance(pool, SentinelConnectionPool) and pool.connection_class is SentinelManagedConnection:
        address = pool.get_master_address
    elif pool.connection_class is redis.asyncio.Connection:
        fixed = (str(options.get("host", "localhost")), int(options.get("port", 6379)))

        async def fixed_address() -> tuple[str, int]:
            return fixed

        address = fixed_address
    else:
        return None
    timeout = options.get("socket_timeout") or 5.0
    return PipelinedRedis(
        address,
        username=options.get("username"),
        password=options.get("password"),
        db=int(options.get("db") or 0),
        timeout=timeout,
        connect_timeout=options.get("socket_connect_timeout") or timeout,
    )
