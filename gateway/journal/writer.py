"""The journal's writer: rows in batches to PostgreSQL, off the request path.

The request path only appends a pending row to an in-memory spool (`JournalWriter.put`,
no I/O). One background task per gateway process takes up to ``JOURNAL_BATCH_ROWS``
rows from the front of the spool, once that many wait or the oldest has waited
``JOURNAL_FLUSH_SECONDS`` (few transactions, whatever the load), chains them
(`gateway.journal.chain`) and writes them in one transaction (COPY), with the new chains
it starts and a signed checkpoint of its head every ``JOURNAL_CHECKPOINT_SECONDS``; rows
leave the spool only once committed.

When PostgreSQL cannot be written (refused connection, error, or no answer within
``JOURNAL_TIMEOUT_SECONDS``), the batch stays at the front of the spool, the writer
tries again every ``JOURNAL_RETRY_SECONDS``, and ``JOURNAL_FAILURE_MODE`` decides what
calls get meanwhile (`JournalWriter.refusal`). A server that stops answering (frozen,
cut off) counts as failed as soon as one exchange has waited ``JOURNAL_TIMEOUT_SECONDS``:
the exchange is abandoned then (`gateway.journal.link`), and a call arriving while an
exchange is overdue is already treated as during an outage.

- ``fail_closed``: every call is refused (00503) until PostgreSQL is back: no answer
  leaves once the journal is known to be unwritable; the rows of the answers that left
  before are kept and written on its return.
- ``buffer``: calls go on, their rows kept in the spool; once it holds
  ``JOURNAL_SPOOL_ROWS`` rows, each further call is refused (00503) and counted.

Either way the spool holds at most ``JOURNAL_SPOOL_ROWS`` rows, and a row that cannot be
kept is the row of a refused call, counted in ``gateway_journal_refused_calls_total``:
nothing answered is lost within the bound. A write whose outcome is unknown (the
connection broke during COMMIT) is settled on reconnection by looking up its first
row's entry id, once the backend that ran it has been terminated (an abandoned COMMIT could
otherwise land after the look-up): the transaction is all or nothing. After any failure the writer starts
a new chain, and signs the last committed head of the old one.

With ``JOURNAL_WAL_DIR``, each row put in the spool is also appended to the write-ahead file
(`gateway.journal.wal`); the writer takes only the rows already on disk, records each
transaction's intent there first, and, on every connection, writes again the rows that dead
processes' files hold and PostgreSQL lacks, and signs their heads (`gateway.journal.takeover`).

The parts: the spool (`gateway.journal.spool`), the bounded connection (`gateway.journal.link`),
one batch's chaining and transaction (`gateway.journal.batch`); this module runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

from gateway.journal import schema
from gateway.journal.batch import chained, commit
from gateway.journal.chain import Head, month_of
from gateway.journal.link import FAILURES, DatabaseLink
from gateway.journal.retention import Retention
from gateway.journal.signing import Signer
from gateway.journal.spool import Pending, Refusal, Spool
from gateway.journal.takeover import Takeover
from gateway.journal.wal import Intent, WriteAhead, database_of
from gateway.journal.witness import FileWitness, WitnessedHead
from gateway.settings import JournalFailureMode

_LOG = structlog.get_logger(__name__)

_IDLE_PROBE_SECONDS = 1.0
_MAINTENANCE_SECONDS = 3600.0

ROWS_WRITTEN = Counter("gateway_journal_rows_written", "Journal rows committed to PostgreSQL.")
REFUSED_CALLS = Counter(
    "gateway_journal_refused_calls",
    "Calls refused (00503) because the journal could not keep their row, by reason "
    "(database_unreachable in fail_closed mode, spool_full, wal_full, wal_unwritable).",
    ["reason"],
)
WITNESS_FAILURES = Counter(
    "gateway_journal_witness_failures", "Signed heads that could not be appended to JOURNAL_WITNESS_FILE."
)
SPOOL_ROWS = Gauge("gateway_journal_spool_rows", "Journal rows waiting in memory for PostgreSQL.")
WAL_BYTES = Gauge(
    "gateway_journal_wal_bytes", "Bytes of the journal's write-ahead file (JOURNAL_WAL_DIR) on disk."
)
DATABASE_UP = Gauge("gateway_journal_database_up", "1 while the journal's PostgreSQL takes writes, else 0.")
WRITE_SECONDS = Histogram(
    "gateway_journal_write_seconds",
    "Time of one journal transaction (a batch of rows), by outcome (ok, error).",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5),
)


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """How the writer batches, signs, waits and keeps."""

    mode: JournalFailureMode
    spool_rows: int
    batch_rows: int
    flush_seconds: float
    checkpoint_seconds: float
    timeout_seconds: float
    retry_seconds: float
    retention_months: int
    wal_dir: Path | None = None
    """``JOURNAL_WAL_DIR``: the write-ahead file's directory (`gateway.journal.wal`); None for none."""
    wal_max_bytes: int = 128 * 1024 * 1024
    """``JOURNAL_WAL_MAX_BYTES``: the most the write-ahead file may take."""


@dataclass(frozen=True, slots=True)
class _Unsettled:
    """A batch whose COMMIT may or may not have happened."""

    first: tuple[Any, int, Any]
    """Its first row's chain, position and entry id."""
    size: int
    heads: dict[Any, Head]
    """The heads it would have left unsigned."""
    backend: int
    """The process id of the PostgreSQL backend that ran it."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JournalWriter:
    """Writes the spool to PostgreSQL in the background (see the module's docstring).

    Args:
        url: The ``postgresql://`` URL (``JOURNAL_DATABASE_URL``).
        signer: Signs chain heads.
        settings: Batching, signing, timeouts, failure mode, retention.
        witness: Where each committed checkpoint is also appended (``JOURNAL_WITNESS_FILE``), if anywhere.
        clock: Wall clock for maintenance and checkpoints (tests).
    """

    def __init__(
        self,
        url: str,
        signer: Signer,
        settings: WriterSettings,
        *,
        witness: FileWitness | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._link = DatabaseLink(url, settings.timeout_seconds)
        # The writer's clock as it is when the retention runs (a test sets it after the start).
        self._retention = Retention(url, settings.retention_months, lambda: self._clock())  # noqa: PLW0108
        self._witness = witness
        self._signer = signer
        self._settings = settings
        self._clock = clock
        self._writer = f"{socket.gethostname()}/{os.getpid()}"
        self._stop = asyncio.Event()
        self._migrated = False
        self._months: set[dt.date] = set()
        self._head: Head | None = None
        self._unsigned: dict[Any, Head] = {}
        self._unsettled: _Unsettled | None = None
        self._signed_at = time.monotonic()
        self._maintained_at = -_MAINTENANCE_SECONDS
        self._task: asyncio.Task[None] | None = None
        self._spool = Spool(
            rows=settings.spool_rows,
            batch_rows=settings.batch_rows,
            flush_seconds=settings.flush_seconds,
        )
        if settings.wal_dir is not None:
            self._spool.wal = WriteAhead(
                settings.wal_dir,
                database_of(url),
                max_bytes=settings.wal_max_bytes,
                retry_seconds=settings.retry_seconds,
                settled=self._spool.settled,
            )
        self._wal = self._spool.wal
        self._takeover = (
            None
            if self._wal is None
            else Takeover(self._link, self._spool, self._wal, self._sign, settings.retry_seconds)
        )
        self.down = True
        """Whether the last attempt to reach PostgreSQL failed (or none succeeded yet)."""
        SPOOL_ROWS.set_function(lambda: len(self._spool))
        if self._wal is not None:
            wal = self._wal
            WAL_BYTES.set_function(lambda: wal.size)

    @property
    def spooled(self) -> int:
        """Rows waiting in memory."""
        return len(self._spool)

    def refusal(self) -> Refusal | None:
        """Why a call must be refused now, or None when its row can be kept."""
        refusal = self._spool.refusal()
        if refusal is not None:
            return refusal
        # An overdue exchange counts before the writer has run again to see it fail.
        if self._settings.mode is JournalFailureMode.FAIL_CLOSED and (self.down or self._link.overdue()):
            return Refusal.DATABASE_UNREACHABLE
        return None

    def put(self, pending: Pending) -> bool:
        """Queue a row (`Spool.put`); False, keeping nothing, when the spool is full."""
        return self._spool.put(pending)

    def durable(self) -> asyncio.Future[None] | None:
        """Done once the rows put so far are on disk (or voided); None without a write-ahead file."""
        return self._spool.durable()

    async def start(self) -> None:
        """Reach PostgreSQL once (migrations, partitions), then write in the background.

        An unreachable PostgreSQL does not stop the start: the writer keeps trying, and
        calls meanwhile are treated per the failure mode.
        """
        if self._task is not None:
            return
        if self._wal is not None:
            await asyncio.to_thread(self._wal.open)
        try:
            await self._connect()
        except FAILURES as exc:
            _LOG.warning("journal_database_unreachable", at="start", error=type(exc).__name__)
            self._failed(exc)
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def close(self) -> None:
        """Stop the background task, write what is left and sign the heads, then disconnect.

        Never raises: rows that cannot be written now are reported in a warning with their count.
        """
        if self._task is not None:
            # The loop ends between two transactions: a transaction cut by a cancellation could
            # commit unseen, and its rows be written twice.
            self._stop.set()
            self._spool.wake.set()
            await self._task
            self._task = None
        if self._wal is not None:
            await self._wal.drain()
        try:
            if not self._link.connected:
                await self._connect()
            while self._spool or self._unsigned:
                await self._write(final=True)
        except FAILURES as exc:
            kept = "wal" if self._wal is not None else "lost"
            _LOG.warning(
                "journal_rows_left_at_close", error=type(exc).__name__, rows=len(self._spool), kept=kept
            )
        await self._retention.close()
        await self._link.close()
        if self._wal is not None:
            await self._wal.drain()
            await asyncio.to_thread(self._wal.close)

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._link.connected:
                    await self._connect()
                if self._spool.due() or self._checkpoint_due():
                    await self._write(final=False)
                elif self._takeover is not None and self._takeover.due():
                    await self._takeover.run()
                elif time.monotonic() - self._maintained_at >= _MAINTENANCE_SECONDS:
                    await self._maintain()
                else:
                    await self._idle()
            except FAILURES as exc:
                self._failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._settings.retry_seconds)

    async def _idle(self) -> None:
        self._spool.wake.clear()
        wait = _IDLE_PROBE_SECONDS
        if self._spool.ready():  # rows not yet on disk wake the writer once they are (`Spool.settled`)
            wait = self._spool.due_in()
        if self._unsigned:
            wait = min(wait, max(0.0, self._signed_at + self._settings.checkpoint_seconds - time.monotonic()))
        try:
            await asyncio.wait_for(self._spool.wake.wait(), wait)
        except TimeoutError:
            if not self._spool and not self._checkpoint_due() and not self._stop.is_set():
                # Nothing to write: ask PostgreSQL anyway, so an outage shows before the next call.
                await self._link.fetch_one("SELECT 1")

    def _checkpoint_due(self) -> bool:
        return bool(self._unsigned) and (
            time.monotonic() - self._signed_at >= self._settings.checkpoint_seconds
        )

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self) -> None:
        conn = await self._link.connect()
        if not self._migrated:
            applied = await self._link.bounded(schema.migrate(conn))
            if applied:
                _LOG.info("journal_schema_migrated", versions=applied)
            self._migrated = True
        await self._maintain()
        if self._unsettled is not None:
            await self._settle(self._unsettled)
            self._unsettled = None
        if self._takeover is not None:
            await self._takeover.run()
        if self.down:
            _LOG.info("journal_database_reachable", spooled=len(self._spool))
        self.down = False
        DATABASE_UP.set(1)

    def _failed(self, exc: BaseException) -> None:
        if not self.down:
            _LOG.warning("journal_database_unreachable", error=type(exc).__name__, spooled=len(self._spool))
        self.down = True
        DATABASE_UP.set(0)
        # The old chain ends at its last committed row; the next rows start a new one.
        self._head = None
        self._link.drop()

    async def _settle(self, unsettled: _Unsettled) -> None:
        """Tell whether the batch whose COMMIT was cut reached PostgreSQL; drop it from the spool if so."""
        landed = await self._link.committed(unsettled.backend, unsettled.first)
        if landed is None:
            raise TimeoutError  # the old backend still runs: its outcome is not known yet
        if not landed:
            return
        self._unsigned.update(unsettled.heads)
        ROWS_WRITTEN.inc(unsettled.size)
        await self._deleted(self._spool.taken(unsettled.size))

    async def _deleted(self, paths: list[Path]) -> None:
        """Delete the write-ahead segments whose rows PostgreSQL holds."""
        if paths:
            await asyncio.to_thread(_unlink, paths)

    async def _maintain(self) -> None:
        current = month_of(self._clock())
        months = [current, schema.add_months(current, 1)]
        await self._link.bounded(schema.ensure_partitions(self._link.conn, months))
        self._months.update(months)
        self._retention.run_soon()
        self._maintained_at = time.monotonic()

    # -- one transaction -----------------------------------------------------------------------

    async def _write(self, *, final: bool) -> None:
        """Write the front of the spool, the chains it starts and the checkpoints due, in one transaction."""
        backend = self._link.conn.info.backend_pid
        batch = self._spool.front()
        size = len(batch)
        linked = chained(self._head, batch, self._unsigned)
        months = sorted({chain.month for chain in linked.started} - self._months)
        if months:
            await self._link.bounded(schema.ensure_partitions(self._link.conn, months))
            self._months.update(months)
        sign = final or not batch or time.monotonic() - self._signed_at >= self._settings.checkpoint_seconds
        wal = self._wal
        if wal is not None and linked.rows:
            start = wal.committed
            after = {} if sign else linked.unsigned
            await wal.intend(Intent(start, start + size, linked.first, self._unsigned, after, backend))
        began = time.perf_counter()
        try:
            witnessed = await self._commit(
                linked.started, linked.rows, list(linked.unsigned.values()) if sign else []
            )
        except FAILURES:
            WRITE_SECONDS.labels("error").observe(time.perf_counter() - began)
            if linked.rows:
                self._unsettled = _Unsettled(linked.first, size, linked.unsigned, backend)
            raise
        WRITE_SECONDS.labels("ok").observe(time.perf_counter() - began)
        paths = self._spool.taken(size)
        ROWS_WRITTEN.inc(size)
        self._head = linked.head
        self._unsigned = {} if sign else linked.unsigned
        if sign:
            self._signed_at = time.monotonic()
        await self._deleted(paths)
        if self._witness is not None and witnessed:
            await self._witnessed(self._witness, witnessed)

    async def _commit(
        self, started: list[Head], rows: list[tuple[object, ...]], signed: list[Head]
    ) -> list[WitnessedHead]:
        """`commit` on the link, bounded: the chains, rows and checkpoints in one transaction."""
        return await self._link.bounded(
            commit(
                self._link.conn,
                writer=self._writer,
                signer=self._signer,
                now=self._clock(),
                started=started,
                rows=rows,
                signed=signed,
            )
        )

    async def _sign(self, heads: list[Head]) -> None:
        """Sign ``heads`` in a transaction of their own, and witness them."""
        witnessed = await self._commit([], [], heads)
        if self._witness is not None and witnessed:
            await self._witnessed(self._witness, witnessed)

    async def _witnessed(self, witness: FileWitness, heads: list[WitnessedHead]) -> None:
        """Append committed heads to the witness; a failure is logged and counted, the rows are safe."""
        try:
            await asyncio.to_thread(witness.append, heads)
        except OSError as exc:
            WITNESS_FAILURES.inc()
            _LOG.error("journal_witness_failed", error=type(exc).__name__, heads=len(heads))


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
