"""The journal's retention, run by each gateway off its writer's connection.

Dropping a month is `gateway.journal.schema.drop_expired`: a detach that waits for the month's
last readers, then the drop of its files, about 8 s at 10 million rows on the benchmark's
machine (docs/BENCHMARKS.md). On the writer's connection, every exchange of which is bounded by
``JOURNAL_TIMEOUT_SECONDS``, that would count PostgreSQL as unreachable (and, failing closed,
refuse calls) each time it was tried; here it runs in a task and on a connection of its own,
while the writer goes on writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable

import psycopg
import structlog

from gateway.journal.schema import drop_expired

_LOG = structlog.get_logger("gateway.journal")
_CONNECT_TIMEOUT_SECONDS = 10


class Retention:
    """Drops the journal's expired months when asked, one run at a time.

    Args:
        url: The journal's ``postgresql://`` URL (``JOURNAL_DATABASE_URL``).
        retention_months: ``JOURNAL_RETENTION_MONTHS``.
        clock: The time the retention is judged at (UTC).
    """

    def __init__(self, url: str, retention_months: int, clock: Callable[[], dt.datetime]) -> None:
        self._url = url
        self._months = retention_months
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def run_soon(self) -> None:
        """Start a run in the background, unless one is under way."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="journal-retention")

    async def _run(self) -> None:
        try:
            async with await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
            ) as conn:
                dropped = await drop_expired(conn, self._clock(), self._months)
        except psycopg.Error as exc:
            # The next upkeep tries again; a detach cut short is finished then.
            _LOG.warning("journal_retention_failed", error=type(exc).__name__)
            return
        if dropped:
            _LOG.info("journal_partitions_dropped", partitions=dropped)

    async def close(self) -> None:
        """Stop a run under way (its connection closed: PostgreSQL undoes the unfinished drop)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
