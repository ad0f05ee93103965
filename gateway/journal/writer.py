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
processes' files hold and PostgreSQL lacks, and signs their heads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

from gateway.journal import schema
from gateway.journal.batch import chained, commit
from gateway.journal.chain import Content, Head, month_of
from gateway.journal.link import FAILURES, DatabaseLink
from gateway.journal.signing import Signer
from gateway.journal.wal import Intent, Orphan, Row, WriteAhead, database_of
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
REPLAYED_ROWS = Counter(
    "gateway_journal_replayed_rows", "Rows of dead processes' write-ahead files written to PostgreSQL again."
)
DATABASE_UP = Gauge("gateway_journal_database_up", "1 while the journal's PostgreSQL takes writes, else 0.")
WRITE_SECONDS = Histogram(
    "gateway_journal_write_seconds",
    "Time of one journal transaction (a batch of rows), by outcome (ok, error).",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5),
)


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


Pending = Row
"""A row waiting in the spool."""


class _Replayed:
    """A dead process's row, written again."""

    __slots__ = ("_content",)

    def __init__(self, content: Content) -> None:
        self._content = content

    def content(self) -> Content:
        return self._content

    def void(self) -> None:
        """Its call was answered long ago: the row is kept as it is (`gateway.journal.wal`)."""


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
        self._witness = witness
        self._signer = signer
        self._settings = settings
        self._clock = clock
        self._writer = f"{socket.gethostname()}/{os.getpid()}"
        self._spool: collections.deque[Pending] = collections.deque()
        self._wake = asyncio.Event()
        self._pending_since = 0.0
        self._stop = asyncio.Event()
        self._migrated = False
        self._months: set[dt.date] = set()
        self._head: Head | None = None
        self._unsigned: dict[Any, Head] = {}
        self._unsettled: _Unsettled | None = None
        self._signed_at = time.monotonic()
        self._maintained_at = -_MAINTENANCE_SECONDS
        self._task: asyncio.Task[None] | None = None
        self._adopt_at: float | None = None
        """When to try again to take over a dead process's file whose last transaction was still running."""
        self._wal = (
            None
            if settings.wal_dir is None
            else WriteAhead(
                settings.wal_dir,
                database_of(url),
                max_bytes=settings.wal_max_bytes,
                retry_seconds=settings.retry_seconds,
                settled=self._settled,
            )
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
        if len(self._spool) >= self._settings.spool_rows:
            return Refusal.SPOOL_FULL
        wal = self._wal
        if wal is not None:
            if wal.full():
                return Refusal.WAL_FULL
            if wal.unwritable():
                return Refusal.WAL_UNWRITABLE
        # An overdue exchange counts before the writer has run again to see it fail.
        if self._settings.mode is JournalFailureMode.FAIL_CLOSED and (self.down or self._link.overdue()):
            return Refusal.DATABASE_UNREACHABLE
        return None

    def put(self, pending: Pending) -> bool:
        """Queue a row, and append it to the write-ahead file if any; no I/O.

        Returns False, keeping nothing, when the spool (or the write-ahead file) is full.
        """
        wal = self._wal
        if len(self._spool) >= self._settings.spool_rows or (wal is not None and wal.full()):
            return False
        self._spool.append(pending)
        if wal is not None:
            wal.append(pending)
        if len(self._spool) == 1:
            self._pending_since = time.monotonic()
            self._wake.set()
        elif len(self._spool) == self._settings.batch_rows:
            self._wake.set()
        return True

    def durable(self) -> asyncio.Future[None] | None:
        """Done once the rows put so far are on disk (or voided); None without a write-ahead file."""
        return None if self._wal is None else self._wal.pending()

    def _ready(self) -> int:
        """How many rows at the front of the spool may be written: all, or those settled on disk."""
        wal = self._wal
        return len(self._spool) if wal is None else wal.settled - wal.committed

    def _settled(self) -> None:
        """A write of the write-ahead file ended: wake the writer if a batch is now due."""
        if self._batch_due():
            self._wake.set()

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
            self._wake.set()
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
                if self._batch_due() or self._checkpoint_due():
                    await self._write(final=False)
                elif (
                    self._wal is not None
                    and self._adopt_at is not None
                    and time.monotonic() >= self._adopt_at
                ):
                    await self._adopt(self._wal)
                elif time.monotonic() - self._maintained_at >= _MAINTENANCE_SECONDS:
                    await self._maintain()
                else:
                    await self._idle()
            except FAILURES as exc:
                self._failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._settings.retry_seconds)

    def _batch_due(self) -> bool:
        """A full batch waits, or the oldest row has waited ``JOURNAL_FLUSH_SECONDS`` (rows on disk only)."""
        ready = self._ready()
        return ready > 0 and (
            ready >= self._settings.batch_rows
            or time.monotonic() - self._pending_since >= self._settings.flush_seconds
        )

    async def _idle(self) -> None:
        self._wake.clear()
        wait = _IDLE_PROBE_SECONDS
        if self._ready():  # rows not yet on disk wake the writer once they are (`_settled`)
            wait = max(0.0, self._pending_since + self._settings.flush_seconds - time.monotonic())
        if self._unsigned:
            wait = min(wait, max(0.0, self._signed_at + self._settings.checkpoint_seconds - time.monotonic()))
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
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
        if self._wal is not None:
            await self._adopt(self._wal)
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
        for _ in range(unsettled.size):
            self._spool.popleft()
        self._unsigned.update(unsettled.heads)
        ROWS_WRITTEN.inc(unsettled.size)
        if self._wal is not None:
            await self._deleted(self._wal.done(self._wal.committed + unsettled.size))

    async def _deleted(self, paths: list[Path]) -> None:
        """Delete the write-ahead segments whose rows PostgreSQL holds."""
        if paths:
            await asyncio.to_thread(_unlink, paths)

    async def _adopt(self, wal: WriteAhead) -> None:
        """Write again the rows of dead processes' write-ahead files that PostgreSQL lacks; sign their heads.

        Their rows go to this process's spool and file (each once, by entry id); their files are
        deleted once those copies are on disk. A head is signed only where PostgreSQL holds its
        hash at its position (anything else was changed while its process was dead: `verify` says so).
        """
        self._adopt_at = None
        found = await asyncio.to_thread(wal.orphans)
        orphans: list[Orphan] = []
        try:
            rows: dict[Any, Content] = {}
            heads: dict[Any, Head] = {}
            for orphan in found:
                intent = orphan.intent
                landed = intent is not None and await self._link.committed(
                    intent.backend, intent.first, started_by=orphan.intent_at
                )
                if landed is None:  # its backend still runs: taken over on a later turn
                    orphan.unlock()
                    self._adopt_at = time.monotonic() + self._settings.retry_seconds
                    continue
                orphans.append(orphan)
                lacking, unsigned = orphan.settle(landed)
                for content in lacking:
                    rows.setdefault(content.entry_id, content)
                heads.update(unsigned)
            signed = [head for head in heads.values() if await self._holds(head)]
            if signed:
                witnessed = await self._commit([], [], signed)
                if self._witness is not None and witnessed:
                    await self._witnessed(self._witness, witnessed)
            for content in rows.values():
                self._spool.append(_Replayed(content))
                wal.append(self._spool[-1])
            if rows:
                self._pending_since = time.monotonic()
                await wal.drain()
        except BaseException:
            for orphan in found:
                orphan.unlock()
            raise
        if not orphans:
            return
        if wal.unwritable():
            # The copies are in memory only now; the dead files are deleted all the same, or a
            # later takeover would write the rows a second time.
            _LOG.error("journal_wal_replay_not_durable", rows=len(rows))
        for orphan in orphans:
            await asyncio.to_thread(orphan.release)
        REPLAYED_ROWS.inc(len(rows))
        _LOG.info("journal_wal_replayed", processes=len(orphans), rows=len(rows), heads_signed=len(signed))

    async def _holds(self, head: Head) -> bool:
        """Whether PostgreSQL holds ``head``'s hash at its position (else it is not signed, and logged)."""
        if head.seq == 0:
            return False  # a chain's start is signed with the chain
        found = await self._link.fetch_one(
            "SELECT row_hash FROM journal.calls WHERE chain_id = %s AND seq = %s", (head.chain_id, head.seq)
        )
        if found is None or bytes(found[0]) != head.hash:
            _LOG.error("journal_wal_head_mismatch", chain_id=str(head.chain_id), seq=head.seq)
            return False
        return True

    async def _maintain(self) -> None:
        current = month_of(self._clock())
        months = [current, schema.add_months(current, 1)]
        await self._link.bounded(schema.ensure_partitions(self._link.conn, months))
        self._months.update(months)
        dropped = await self._link.bounded(
            schema.drop_expired(self._link.conn, self._clock(), self._settings.retention_months)
        )
        if dropped:
            _LOG.info("journal_partitions_dropped", partitions=dropped)
        self._maintained_at = time.monotonic()

    # -- one transaction -----------------------------------------------------------------------

    async def _write(self, *, final: bool) -> None:
        """Write the front of the spool, the chains it starts and the checkpoints due, in one transaction."""
        backend = self._link.conn.info.backend_pid
        size = min(self._settings.batch_rows, self._ready())
        batch = [pending.content() for pending in itertools.islice(self._spool, size)]
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
        for _ in batch:
            self._spool.popleft()
        self._pending_since = time.monotonic()
        ROWS_WRITTEN.inc(size)
        self._head = linked.head
        self._unsigned = {} if sign else linked.unsigned
        if sign:
            self._signed_at = time.monotonic()
        if wal is not None and batch:
            await self._deleted(wal.done(wal.committed + size))
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
