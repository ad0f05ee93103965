"""One batch of the journal: its rows chained, then written with their checkpoints in one transaction.

`chained` links a batch of rows onto the writer's head (`gateway.journal.chain`), starting a new
chain at each month's first row or after a failure; `commit` writes the chains it started, its
rows (COPY) and the signed checkpoints due, all or nothing, and returns the checkpoints for the
witness file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gateway.journal.chain import ROW_COLUMNS, Content, Head, month_of
from gateway.journal.signing import Signer
from gateway.journal.witness import WitnessedHead

_COPY = f"COPY journal.calls ({', '.join(ROW_COLUMNS)}) FROM STDIN"


@dataclass(slots=True)
class Chained:
    """A batch linked onto a head: what its transaction writes and what it leaves."""

    head: Head | None
    """The head after its last row (the head it started from when it has none)."""
    unsigned: dict[Any, Head]
    """Every chain's last unsigned head once it commits."""
    rows: list[tuple[object, ...]] = field(default_factory=list)
    started: list[Head] = field(default_factory=list)
    """The chains it starts."""
    first: tuple[Any, int, Any] = (None, 0, None)
    """Its first row's chain id, position and entry id (to look it up after an unseen COMMIT)."""


def chained(head: Head | None, batch: Iterable[Content], unsigned: dict[Any, Head]) -> Chained:
    """Link ``batch`` onto ``head`` (None: start a chain), a new chain at each month's first row."""
    linked = Chained(head, dict(unsigned))
    for content in batch:
        month = month_of(content.occurred_at)
        if linked.head is None or linked.head.month != month:
            linked.head = Head.start(month)
            linked.started.append(linked.head)
        linked.head, row = linked.head.then(content)
        if not linked.rows:
            linked.first = (linked.head.chain_id, linked.head.seq, content.entry_id)
        linked.rows.append(row)
        linked.unsigned[linked.head.chain_id] = linked.head
    return linked


def checkpoints(started: list[Head], signed: list[Head]) -> list[tuple[Head, int, bytes]]:
    """A new chain's start (position 0, its genesis) and each head to sign, once each."""
    points: dict[tuple[Any, int], tuple[Head, int, bytes]] = {}
    for chain in started:
        points[(chain.chain_id, 0)] = (chain, 0, chain.hash)
    for head in signed:
        points[(head.chain_id, head.seq)] = (head, head.seq, head.hash)
    return list(points.values())


async def commit(
    conn: psycopg.AsyncConnection[Any],
    *,
    writer: str,
    signer: Signer,
    now: dt.datetime,
    started: list[Head],
    rows: list[tuple[object, ...]],
    signed: list[Head],
) -> list[WitnessedHead]:
    """Write the new chains, the rows and the checkpoints in one transaction; returns the checkpoints.

    Args:
        conn: An autocommit connection (the transaction is this function's).
        writer: The writing process, ``<host>/<pid>``, recorded with each chain it starts.
        signer: Signs each checkpoint.
        now: The chains' start and the checkpoints' signing time.
        started: The chains the batch starts (`Chained.started`).
        rows: The chained rows, in ``ROW_COLUMNS`` order.
        signed: The heads to sign besides the new chains' starts.
    """
    points = [
        WitnessedHead(
            chain.chain_id,
            chain.month,
            seq,
            digest,
            now,
            signer.key_id,
            signer.sign(chain.chain_id, seq, digest, now),
        )
        for chain, seq, digest in checkpoints(started, signed)
    ]
    async with conn.transaction(), conn.cursor() as cursor:
        for chain in started:
            await cursor.execute(
                "INSERT INTO journal.chains (chain_id, month, writer, started_at) VALUES (%s, %s, %s, %s)",
                (chain.chain_id, chain.month, writer, now),
            )
        if rows:
            async with cursor.copy(_COPY.encode()) as copy:
                for row in rows:
                    await copy.write_row(row)
        await cursor.executemany(
            "INSERT INTO journal.checkpoints (chain_id, seq, head_hash, signed_at, key_id, signature) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(point.chain_id, point.seq, point.head, now, point.key_id, point.signature) for point in points],
        )
    return points
