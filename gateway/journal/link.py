"""The journal writer's connection to PostgreSQL: every exchange bounded, an overdue one abandoned.

A server that stops answering (frozen, cut off) must count as failed as soon as one exchange
has waited ``JOURNAL_TIMEOUT_SECONDS``. psycopg's cancellation of a query waits up to 5 s for
the cancel request, then 5 s more for the server, so an overdue exchange is not cancelled and
awaited: it is left to end on its own, its connection closed once it does, and the link has
none until the next `connect` (`DatabaseLink.bounded`).

Also here, the one question the writer asks about a transaction whose COMMIT it did not see
end (`DatabaseLink.committed`): its backend is terminated first, so that a COMMIT still on its
way cannot land after the look-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import psycopg

FAILURES = (psycopg.Error, OSError, TimeoutError)
"""What a failed exchange with PostgreSQL raises."""

_T = TypeVar("_T")


class DatabaseLink:
    """One autocommit connection to ``url`` at a time, each exchange within ``timeout_seconds``.

    Args:
        url: The ``postgresql://`` URL (``JOURNAL_DATABASE_URL``).
        timeout_seconds: ``JOURNAL_TIMEOUT_SECONDS``: the longest one exchange may wait.
    """

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._waiting_since: float | None = None
        """When the exchange in progress began (monotonic), if one is."""
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may have broken since its last exchange)."""
        return self._conn is not None

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        """The open connection; the caller connects first."""
        assert self._conn is not None  # noqa: S101 - every caller connects first
        return self._conn

    def overdue(self) -> bool:
        """An exchange has waited its timeout (its caller may not have run since)."""
        since = self._waiting_since
        return since is not None and time.monotonic() - since >= self._timeout

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        """Open a new connection; raises one of `FAILURES`."""
        conn = await self.bounded(
            psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        )
        self._conn = conn
        return conn

    async def bounded(self, work: Coroutine[Any, Any, _T]) -> _T:
        """``work``'s result, or TimeoutError once it has waited the timeout (it is then abandoned)."""
        task = asyncio.ensure_future(work)
        self._waiting_since = time.monotonic()
        try:
            done, _ = await asyncio.wait((task,), timeout=self._timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._waiting_since = None
        if not done:
            self._abandon(task)
            raise TimeoutError
        return task.result()

    async def fetch_one(self, query: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        """The first row ``query`` answers, or None; bounded."""
        cursor = await self.bounded(self.conn.execute(query.encode(), params or None))
        return await cursor.fetchone()

    async def committed(
        self, backend: int, first: tuple[Any, int, Any], *, started_by: float = math.inf
    ) -> bool | None:
        """Whether a transaction whose COMMIT was not seen to end reached PostgreSQL.

        Args:
            backend: The process id of the PostgreSQL backend that ran it.
            first: Its first row's chain id, position and entry id.
            started_by: The epoch second by which that backend had started (a backend started
                later is another one, with the same pid); infinity for any.

        Returns:
            Whether its first row is in ``journal.calls``; None while its backend still runs
            (terminated and waited for within the timeout, it did not end): not known yet.
        """
        timeout_ms = max(1, round(self._timeout * 1000))
        terminated = await self.fetch_one(
            "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity WHERE pid = %s "
            "AND usename = current_user AND backend_start <= to_timestamp(%s)",
            (timeout_ms, backend, started_by),
        )
        if terminated == (False,):
            return None
        found = await self.fetch_one(
            "SELECT 1 FROM journal.calls WHERE chain_id = %s AND seq = %s AND entry_id = %s", first
        )
        return found is not None

    async def close(self) -> None:
        """Say goodbye to PostgreSQL, within the timeout; never raises."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*FAILURES):
                await asyncio.wait_for(conn.close(), self._timeout)

    def drop(self) -> None:
        """Close the connection without a goodbye: a broken one may not answer it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*FAILURES):
                conn.pgconn.finish()

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        """Cancel an overdue exchange without waiting; its connection is closed once it ends."""
        conn = self._conn

        def ended(task: asyncio.Task[Any]) -> None:
            self._abandoned.discard(task)
            result = None if task.cancelled() or task.exception() is not None else task.result()
            for orphan in (conn, result):
                if isinstance(orphan, psycopg.AsyncConnection):
                    with contextlib.suppress(*FAILURES):
                        orphan.pgconn.finish()

        self._abandoned.add(task)
        task.add_done_callback(ended)
        task.cancel()
        # The connection belongs to the abandoned exchange now: `drop` must not close it under it.
        self._conn = None
