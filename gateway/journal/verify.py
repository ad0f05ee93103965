"""Checks the journal: every chain's hashes and positions, and every signed head.

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
- a row outside its chain's month was moved.

Rows after a chain's last signed head are reported as unsigned (a gateway signs every
``JOURNAL_CHECKPOINT_SECONDS`` and when it stops): not a failure, since the writer may
have stopped before signing, but nothing proves them yet.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gateway.journal.chain import CONTENT_COLUMNS, Content, genesis, month_of, row_hash
from gateway.journal.signing import Verifier

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


def verify_chain(
    conn: psycopg.Connection[Any],
    chain_id: uuid.UUID,
    month: dt.date | None,
    checkpoints: list[_Checkpoint],
    verifier: Verifier,
) -> ChainReport:
    """Check one chain (see the module's docstring)."""
    report = ChainReport(chain_id)
    signed = _signed_heads(chain_id, checkpoints, verifier, report)
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
        previous, expected = stored, seq + 1
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
    report.signed_seq = max((seq for seq in signed if seq <= last), default=0)
    report.unsigned = max(0, last - report.signed_seq)
    return report


def _signed_heads(
    chain_id: uuid.UUID, checkpoints: list[_Checkpoint], verifier: Verifier, report: ChainReport
) -> dict[int, bytes]:
    """The heads a trusted key signed, by position; the others are reported."""
    signed: dict[int, bytes] = {}
    for point in checkpoints:
        if verifier.valid(
            point.key_id, point.signature, chain_id, point.seq, point.head, signed_at=point.signed_at
        ):
            signed[point.seq] = point.head
        else:
            report.problems.append(
                f"checkpoint at row {point.seq}: signature invalid or by an unknown key (forged)"
            )
    return signed


def verify(conn: psycopg.Connection[Any], verifier: Verifier) -> list[ChainReport]:
    """Check every chain of the journal, in order of month and start.

    Args:
        conn: A connection to the journal's database.
        verifier: The trusted public keys.

    Returns:
        One report per chain; the journal is intact when none has a problem.
    """
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
    checkpoints = _checkpoints(conn)
    return [
        verify_chain(conn, chain_id, month, checkpoints.get(chain_id, []), verifier)
        for chain_id, month in chains
    ]
