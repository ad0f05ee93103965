"""The journal's spool: the rows waiting for PostgreSQL, in memory and (with a write-ahead file) on disk.

The request path appends to it (`Spool.put`, no I/O); the writer takes batches from its front
(`Spool.front`, then `Spool.taken` once committed). A row may be written once it is settled on
disk (`gateway.journal.wal`), or at once without a write-ahead file. A batch is due once
``JOURNAL_BATCH_ROWS`` rows are ready or the oldest has waited ``JOURNAL_FLUSH_SECONDS``;
the spool wakes the writer then (`Spool.wake`).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from gateway.journal.chain import Content
from gateway.journal.wal import Row, WriteAhead

Pending = Row
"""A row waiting in the spool."""


class Refusal(StrEnum):
    """Why the journal cannot take a call's row now."""

    DATABASE_UNREACHABLE = "database_unreachable"
    SPOOL_FULL = "spool_full"
    WAL_FULL = "wal_full"
    WAL_UNWRITABLE = "wal_unwritable"

    @property
    def keeps_row(self) -> bool:
        """Whether the refused call's row is kept all the same (only when the database alone is the cause)."""
        return self is Refusal.DATABASE_UNREACHABLE


class _Replayed:
    """A dead process's row, written again."""

    __slots__ = ("_content",)

    def __init__(self, content: Content) -> None:
        self._content = content

    def content(self) -> Content:
        return self._content

    def void(self) -> None:
        """Its call was answered long ago: the row is kept as it is (`gateway.journal.wal`)."""


class Spool:
    """Rows waiting for PostgreSQL, at most ``rows`` of them.

    Args:
        rows: ``JOURNAL_SPOOL_ROWS``: the most it holds.
        batch_rows: ``JOURNAL_BATCH_ROWS``: a batch's size.
        flush_seconds: ``JOURNAL_FLUSH_SECONDS``: the longest a ready row waits for a batch.
    """

    def __init__(self, *, rows: int, batch_rows: int, flush_seconds: float) -> None:
        self._rows: collections.deque[Pending] = collections.deque()
        self._most = rows
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self.wal: WriteAhead | None = None
        """The write-ahead file each row is also appended to, set before the first row if any;
        its ``settled`` callback is `Spool.settled`."""
        self.wake = asyncio.Event()
        """Set when a batch may have become due."""
        self._since = 0.0
        """When the oldest waiting row came (monotonic)."""

    def __len__(self) -> int:
        return len(self._rows)

    def refusal(self) -> Refusal | None:
        """Why a row cannot be kept now (the spool or the write-ahead file), or None."""
        if len(self._rows) >= self._most:
            return Refusal.SPOOL_FULL
        if self.wal is not None:
            if self.wal.full():
                return Refusal.WAL_FULL
            if self.wal.unwritable():
                return Refusal.WAL_UNWRITABLE
        return None

    def put(self, pending: Pending) -> bool:
        """Queue a row, and append it to the write-ahead file if any; no I/O.

        Returns False, keeping nothing, when the spool (or the write-ahead file) is full.
        """
        wal = self.wal
        if len(self._rows) >= self._most or (wal is not None and wal.full()):
            return False
        self._rows.append(pending)
        if wal is not None:
            wal.append(pending)
        if len(self._rows) == 1:
            self._since = time.monotonic()
            self.wake.set()
        elif len(self._rows) == self._batch_rows:
            self.wake.set()
        return True

    def replay(self, contents: Iterable[Content]) -> None:
        """Queue the rows of dead processes' files (`gateway.journal.wal`), beyond the bound."""
        for content in contents:
            self._rows.append(_Replayed(content))
            if self.wal is not None:
                self.wal.append(self._rows[-1])
            self._since = time.monotonic()

    def durable(self) -> asyncio.Future[None] | None:
        """Done once the rows put so far are on disk (or voided); None without a write-ahead file."""
        return None if self.wal is None else self.wal.pending()

    def ready(self) -> int:
        """How many rows at the front may be written: all, or those settled on disk."""
        wal = self.wal
        return len(self._rows) if wal is None else wal.settled - wal.committed

    def due(self) -> bool:
        """A full batch is ready, or the oldest ready row has waited ``JOURNAL_FLUSH_SECONDS``."""
        ready = self.ready()
        return ready > 0 and (ready >= self._batch_rows or self.due_in() == 0)

    def due_in(self) -> float:
        """Seconds until the oldest row has waited ``JOURNAL_FLUSH_SECONDS`` (0: it has)."""
        return max(0.0, self._since + self._flush_seconds - time.monotonic())

    def settled(self) -> None:
        """A write of the write-ahead file ended: wake the writer if a batch is now due."""
        if self.due():
            self.wake.set()

    def front(self) -> list[Content]:
        """The next batch: the first ready rows, at most ``JOURNAL_BATCH_ROWS``."""
        size = min(self._batch_rows, self.ready())
        return [pending.content() for pending in itertools.islice(self._rows, size)]

    def taken(self, count: int) -> list[Path]:
        """The first ``count`` rows are in PostgreSQL: drop them; the write-ahead segments now done with."""
        for _ in range(count):
            self._rows.popleft()
        self._since = time.monotonic()
        return [] if self.wal is None else self.wal.done(self.wal.committed + count)
