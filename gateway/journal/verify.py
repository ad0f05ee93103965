"""Checks the journal: every chain's hashes and positions, every signed head, their timing, the witness.

For each chain registered in ``journal.chains`` (and any chain whose rows name no
registered chain), the rows are read in order of position and:

- a row whose hash is not that of its content and its predecessor's hash was
  **altered**, or **reordered** (the position and the chain are hashed too; a row
  after a moved one is named as well, its predecessor having changed);
- a position missing between two rows means rows were **removed**; a position seen twice,
  a row **inserted**;
- a checkpoint whose signature a trusted key does not make is **forged**; one whose
  position has no row, or a row of another hash, shows rows re-hashed after a change
  (**altered, inserted or removed before it**) or a chain **cut back** before its last
  signed head;
- a chain without a signed start was not started by a gateway;
- a row outside its chain's month was moved;
- a row signed later than ``JOURNAL_CHECKPOINT_SECONDS`` plus a margin after it was written
  shows **checkpoints removed** inside the chain; a row still unsigned that long after, rows
  **re-hashed after the last signed head** (or a gateway that died before signing them). A row
  counts as written at the later of its own time and the checkpoint before it (rows kept in
  memory during an outage are written, and signed, once PostgreSQL is back: `Timing`); the
  rows a chain's last checkpoint covers, when it is at the chain's last row, are late only if
  they waited longer than that before the chain's last row (a gateway killed before signing
  them, whose heads the gateway taking over its write-ahead file signs: `gateway.journal.wal`);
- with a witness (`gateway.journal.witness`): a chain it names that the journal lacks was
  **removed with its checkpoints**; a head it names that the chain does not reach, or holds
  with another hash, shows the chain **cut back** or **rewritten** with its checkpoints.
  Chains of months past the retention are not expected.
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gateway.journal.chain import CONTENT_COLUMNS, Content, genesis, month_of, row_hash
from gateway.journal.schema import add_months
from gateway.journal.signing import Verifier
from gateway.journal.witness import WitnessedHead

CONNECT_TIMEOUT_SECONDS = 10
"""How long a connection to the journal's database may take to open."""

_ROWS = (
    f"SELECT seq, {', '.join(CONTENT_COLUMNS)}, row_hash FROM journal.calls "  # noqa: S608 - constant columns
    "WHERE chain_id = %s ORDER BY seq"
)


@dataclass(slots=True)
class ChainReport:
    """What verification found in one chain."""

    chain_id: uuid.UUID
    rows: int = 0
    signed_seq: int = 0
    """The last position a valid signature covers."""
    unsigned: int = 0
    """Rows after the last signed head."""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    seq: int
    head: bytes
    signed_at: dt.datetime
    key_id: str
    signature: bytes


DEFAULT_MARGIN_SECONDS = 10.0
"""Slack on top of the checkpoint interval: a batch's wait, a slow write, a retry after a failure."""


@dataclass(frozen=True, slots=True)
class Timing:
    """How late a row may be signed.

    A gateway signs its chains' heads every ``checkpoint_seconds`` while it writes; a row is
    at fault when the head covering it was signed (or, unsigned, when ``now`` is) more than
    ``checkpoint_seconds + margin_seconds`` after the row was written.
    """

    checkpoint_seconds: float
    """``JOURNAL_CHECKPOINT_SECONDS`` of the gateways that wrote the journal."""
    margin_seconds: float = DEFAULT_MARGIN_SECONDS
    now: dt.datetime | None = None
    """When the check runs (UTC); None for the clock's time."""

    @property
    def limit(self) -> dt.timedelta:
        """The longest a row may wait for its signature."""
        return dt.timedelta(seconds=self.checkpoint_seconds + self.margin_seconds)


def _checkpoints(conn: psycopg.Connection[Any]) -> dict[uuid.UUID, list[_Checkpoint]]:
    found: dict[uuid.UUID, list[_Checkpoint]] = {}
    for chain_id, seq, head, signed_at, key_id, signature in conn.execute(
        "SELECT chain_id, seq, head_hash, signed_at, key_id, signature FROM journal.checkpoints "
        "ORDER BY chain_id, seq"
    ):
        found.setdefault(chain_id, []).append(
            _Checkpoint(seq, bytes(head), signed_at, key_id, bytes(signature))
        )
    return found


def _rows(conn: psycopg.Connection[Any], chain_id: uuid.UUID) -> Iterator[tuple[int, Content, bytes]]:
    with conn.cursor(name=f"journal_verify_{chain_id.hex}") as cursor:
        cursor.itersize = 5000
        cursor.execute(_ROWS, (chain_id,))
        for seq, *values, stored in cursor:
            yield seq, Content(*values), bytes(stored)


@dataclass(frozen=True, slots=True)
class ChainToCheck:
    """A chain to check, with what it is compared with."""

    chain_id: uuid.UUID
    month: dt.date | None
    """None for rows of a chain no gateway registered."""
    checkpoints: list[_Checkpoint]
    witnessed: list[WitnessedHead]


def verify_chain(
    conn: psycopg.Connection[Any], chain: ChainToCheck, verifier: Verifier, *, timing: Timing
) -> ChainReport:
    """Check one chain (see the module's docstring)."""
    chain_id, month, checkpoints, witnessed = chain.chain_id, chain.month, chain.checkpoints, chain.witnessed
    report = ChainReport(chain_id)
    signed_at: dict[int, dt.datetime] = {}
    signed = _signed_heads(chain_id, checkpoints, verifier, report, signed_at)
    _add_witnessed(report, witnessed, verifier, signed, signed_at)
    late = _Lateness(sorted(signed_at.items()), timing)
    if month is None:
        report.problems.append("rows of a chain no gateway registered (inserted)")
    if signed.get(0) != genesis(chain_id):
        report.problems.append("no valid signed start: the chain was not started by a gateway")
    previous, expected, stored_by_seq = genesis(chain_id), 1, {0: genesis(chain_id)}
    for seq, content, stored in _rows(conn, chain_id):
        report.rows += 1
        if seq < expected:
            report.problems.append(f"row {seq}: a second row at this position (inserted or reordered)")
            continue
        if seq > expected:
            gap = f"row {expected}" if seq == expected + 1 else f"rows {expected} to {seq - 1}"
            report.problems.append(f"{gap}: missing (removed)")
        elif row_hash(previous, chain_id, seq, content) != stored:
            report.problems.append(
                f"row {seq}: its hash does not follow from its content and the row before "
                "(altered, or reordered here)"
            )
        if month is not None and month_of(content.occurred_at) != month:
            report.problems.append(f"row {seq}: outside its chain's month (moved)")
        late.row(seq, content.occurred_at)
        previous, expected = stored, seq + 1
        if seq in signed:  # only the hashes a signed head is compared with: memory bounded by checkpoints
            stored_by_seq[seq] = stored
    last = expected - 1
    for seq, head in sorted(signed.items()):
        if seq > last:
            report.problems.append(
                f"chain ends at row {last}, before its head signed at row {seq} (cut back)"
            )
            break
        if stored_by_seq.get(seq) != head:
            report.problems.append(
                f"row {seq}: not the head signed at this position "
                "(rows up to it altered, inserted or removed, then re-hashed)"
            )
    report.problems += late.problems()
    report.signed_seq = max((seq for seq in signed if seq <= last), default=0)
    report.unsigned = max(0, last - report.signed_seq)
    return report


def _add_witnessed(
    report: ChainReport,
    witnessed: list[WitnessedHead],
    verifier: Verifier,
    signed: dict[int, bytes],
    signed_at: dict[int, dt.datetime],
) -> None:
    """Add the witnessed heads a trusted key signed that the journal lacks, reporting each as deleted."""
    chain_id = report.chain_id
    for seen in witnessed:
        if seen.seq not in signed and verifier.valid(
            seen.key_id, seen.signature, chain_id, seen.seq, seen.head, signed_at=seen.signed_at
        ):
            report.problems.append(
                f"checkpoint at row {seen.seq}: witnessed, missing from the journal (deleted)"
            )
            signed[seen.seq] = seen.head
            signed_at[seen.seq] = seen.signed_at


class _Lateness:
    """Rows signed (or still unsigned) later than the checkpoint interval and its margin allow."""

    def __init__(self, signed_at: list[tuple[int, dt.datetime]], timing: Timing) -> None:
        self._points = signed_at
        self._limit = timing.limit
        self._now = timing.now or dt.datetime.now(dt.UTC)
        self._next = 0
        """Index in ``_points`` of the first checkpoint at or after the current row."""
        self._late: list[tuple[int, int]] = []
        self._unsigned: list[tuple[int, int]] = []
        self._tail: list[tuple[int, dt.datetime]] = []
        """Rows the last checkpoint signed late, and when each was written: judged at the chain's end."""
        self._last: tuple[int, dt.datetime] | None = None

    def row(self, seq: int, occurred_at: dt.datetime) -> None:
        points = self._points
        while self._next < len(points) and points[self._next][0] < seq:
            self._next += 1
        written = occurred_at
        if self._next > 0:
            written = max(written, points[self._next - 1][1])
        self._last = (seq, occurred_at)
        covered = self._next < len(points)
        signed = points[self._next][1] if covered else self._now
        if signed - written > self._limit:
            if self._next == len(points) - 1:
                self._tail.append((seq, written))
            else:
                self._run(self._late if covered else self._unsigned, seq)

    @staticmethod
    def _run(runs: list[tuple[int, int]], seq: int) -> None:
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))

    def _judge_tail(self) -> None:
        """The rows the chain's last checkpoint signed late.

        When that checkpoint is at the chain's last row, the writer may have died before signing
        them, and another signed them on taking over its write-ahead file (`gateway.journal.wal`):
        they are late only if they waited more than the limit before the chain's last row was
        written (the writer, alive, would have signed them by then).
        """
        last = self._last
        final = last is not None and self._points and self._points[-1][0] == last[0]
        for seq, written in self._tail:
            if not final or (last is not None and last[1] - written > self._limit):
                self._run(self._late, seq)
        self._tail = []

    def problems(self) -> list[str]:
        self._judge_tail()
        limit = self._limit.total_seconds()
        found = [
            f"{_span(first, last)}: signed more than {limit:g} s after written (checkpoints removed)"
            for first, last in self._late
        ]
        found += [
            f"{_span(first, last)}: unsigned more than {limit:g} s after written "
            "(rewritten after the last signed head, or their gateway died before signing)"
            for first, last in self._unsigned
        ]
        return found


def _span(first: int, last: int) -> str:
    return f"row {first}" if first == last else f"rows {first} to {last}"


def _signed_heads(
    chain_id: uuid.UUID,
    checkpoints: list[_Checkpoint],
    verifier: Verifier,
    report: ChainReport,
    signed_at: dict[int, dt.datetime],
) -> dict[int, bytes]:
    """The heads a trusted key signed, by position, their times put in ``signed_at``; the others reported."""
    signed: dict[int, bytes] = {}
    for point in checkpoints:
        if verifier.valid(
            point.key_id, point.signature, chain_id, point.seq, point.head, signed_at=point.signed_at
        ):
            signed[point.seq] = point.head
            signed_at[point.seq] = point.signed_at
        else:
            report.problems.append(
                f"checkpoint at row {point.seq}: signature invalid or by an unknown key (forged)"
            )
    return signed


def verify(
    conn: psycopg.Connection[Any],
    verifier: Verifier,
    timing: Timing,
    witnessed: list[WitnessedHead] | None = None,
    retention_months: int = 12,
) -> list[ChainReport]:
    """Check every chain of the journal, in order of month and start, against the witness if given.

    Args:
        conn: A connection to the journal's database.
        verifier: The trusted public keys.
        timing: How late a row may be signed.
        witnessed: The heads of a witness file (`gateway.journal.witness.read_witness`).
        retention_months: ``JOURNAL_RETENTION_MONTHS``: witnessed chains of months older are not expected.

    Returns:
        One report per chain (and per witnessed chain the journal lacks); the journal is intact
        when none has a problem.
    """
    plan = _Plan.of(conn, witnessed)
    reports = [verify_chain(conn, chain, verifier, timing=timing) for chain in plan.chains]
    return reports + plan.missing(verifier, timing, retention_months)


def verify_in_parallel(
    conninfo: str,
    verifier: Verifier,
    timing: Timing,
    witnessed: list[WitnessedHead] | None = None,
    retention_months: int = 12,
    *,
    jobs: int,
) -> list[ChainReport]:
    """`verify`, with ``jobs`` chains checked at once, each process on a connection of its own.

    A chain is checked in one pass over its rows, hashing each in Python: one core's work
    (about 10,000 rows a second, docs/BENCHMARKS.md). Chains are independent, so a month of
    many chains is checked in about ``1 / jobs`` of the time on as many cores.

    Args:
        conninfo: The journal database's connection string (each process connects with it).
        verifier: The trusted public keys.
        timing: How late a row may be signed.
        witnessed: The heads of a witness file.
        retention_months: ``JOURNAL_RETENTION_MONTHS``.
        jobs: How many processes check chains (``>= 1``).

    Returns:
        The reports of `verify`, in the same order.

    Raises:
        psycopg.Error: the database is unreachable, from here or from a process.
    """
    with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        plan = _Plan.of(conn, witnessed)
    # Spawned, not forked: a forked child would inherit the parent's libpq state and threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        reports = list(
            pool.map(
                _verify_chain_in_process,
                itertools.repeat(conninfo),
                plan.chains,
                itertools.repeat(verifier),
                itertools.repeat(timing),
            )
        )
    return reports + plan.missing(verifier, timing, retention_months)


def _verify_chain_in_process(
    conninfo: str, chain: ChainToCheck, verifier: Verifier, timing: Timing
) -> ChainReport:
    with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        return verify_chain(conn, chain, verifier, timing=timing)


@dataclass(slots=True)
class _Plan:
    """The chains to check, each with what it is compared with, and the witness's other chains."""

    chains: list[ChainToCheck]
    unmatched: dict[uuid.UUID, list[WitnessedHead]]
    """Witnessed chains the journal has no row of."""

    @classmethod
    def of(cls, conn: psycopg.Connection[Any], witnessed: list[WitnessedHead] | None) -> _Plan:
        checkpoints = _checkpoints(conn)
        by_chain: dict[uuid.UUID, list[WitnessedHead]] = {}
        for head in witnessed or ():
            by_chain.setdefault(head.chain_id, []).append(head)
        chains: list[ChainToCheck] = [
            ChainToCheck(chain_id, month, checkpoints.get(chain_id, []), by_chain.pop(chain_id, []))
            for chain_id, month in _chains(conn)
        ]
        return cls(chains, by_chain)

    def missing(self, verifier: Verifier, timing: Timing, retention_months: int) -> list[ChainReport]:
        now = timing.now or dt.datetime.now(dt.UTC)
        # The oldest month whose partition the retention keeps (`gateway.journal.schema.drop_expired`).
        kept_from = add_months(month_of(now), -(retention_months + 1))
        return _missing(self.unmatched, verifier, kept_from)


def _chains(conn: psycopg.Connection[Any]) -> list[tuple[uuid.UUID, dt.date | None]]:
    """Every chain, in order of month and start; then those whose rows have no chain row (month None)."""
    chains: list[tuple[uuid.UUID, dt.date | None]] = [
        (chain_id, month)
        for chain_id, month in conn.execute(
            "SELECT chain_id, month FROM journal.chains ORDER BY month, started_at, chain_id"
        )
    ]
    chains += [
        (chain_id, None)
        for (chain_id,) in conn.execute(
            "SELECT DISTINCT chain_id FROM journal.calls "
            "WHERE chain_id NOT IN (SELECT chain_id FROM journal.chains) ORDER BY chain_id"
        )
    ]
    return chains


def _missing(
    by_chain: dict[uuid.UUID, list[WitnessedHead]], verifier: Verifier, kept_from: dt.date
) -> list[ChainReport]:
    """A report for each witnessed chain of a month kept from ``kept_from`` that the journal lacks."""
    reports: list[ChainReport] = []
    for chain_id, heads in by_chain.items():
        if heads[0].month < kept_from:
            continue
        if not any(
            verifier.valid(
                head.key_id, head.signature, chain_id, head.seq, head.head, signed_at=head.signed_at
            )
            for head in heads
        ):
            continue  # a line no trusted key signed accuses nobody
        report = ChainReport(chain_id)
        report.problems.append(
            f"witnessed up to row {max(head.seq for head in heads)}, missing from the journal "
            "(removed with its checkpoints)"
        )
        reports.append(report)
    return reports
