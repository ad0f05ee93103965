"""The journal's tables in PostgreSQL: migrations, monthly partitions, retention.

Schema ``journal``:

- ``calls``: one row per call (`gateway.journal.chain.ROW_COLUMNS`), partitioned by
  month of ``occurred_at`` (UTC), one partition ``calls_YYYY_MM`` each; indexed by
  chain and position (verification) and by subject digest (access history, search).
- ``chains``: every chain a gateway started: its month, the writer (host and process)
  and when it started.
- ``checkpoints``: signed chain heads (`gateway.journal.signing`), a chain's start
  (position 0) included.
- ``schema_migrations``: the migrations applied.

Migrations run when a gateway starts, under a transaction-scoped advisory lock: with
several gateways starting together, one applies them and the others find them applied.
The current and next months' partitions are created under the same lock. Retention: a
month's partition is detached, then dropped with its chains and their checkpoints, once its
last row is ``JOURNAL_RETENTION_MONTHS`` months old (`drop_expired`, run off the writer's
connection by `gateway.journal.retention`).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum
from typing import Any

from psycopg import AsyncConnection, sql

from gateway.journal.chain import month_of
from gateway.migrations import apply_migrations

SCHEMA = "journal"
_LOCK_KEY = 0x6A6F75726E616C  # "journal": one advisory lock for the journal's DDL.
_RETENTION_LOCK_KEY = _LOCK_KEY + 1
"""The retention's own lock: its waits never hold up the migrations' and partitions' DDL."""
_PARTITION = re.compile(r"calls_([0-9]{4})_([0-9]{2})")

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE journal.chains (
            chain_id uuid PRIMARY KEY,
            month date NOT NULL,
            writer text NOT NULL,
            started_at timestamptz NOT NULL
        );
        CREATE INDEX chains_month ON journal.chains (month);
        CREATE TABLE journal.checkpoints (
            chain_id uuid NOT NULL REFERENCES journal.chains ON DELETE CASCADE,
            seq bigint NOT NULL,
            head_hash bytea NOT NULL,
            signed_at timestamptz NOT NULL,
            key_id text NOT NULL,
            signature bytea NOT NULL,
            PRIMARY KEY (chain_id, seq)
        );
        CREATE TABLE journal.calls (
            chain_id uuid NOT NULL,
            seq bigint NOT NULL,
            entry_id uuid NOT NULL,
            occurred_at timestamptz NOT NULL,
            request_id text NOT NULL,
            token_id text NOT NULL,
            habilitation text NOT NULL,
            recipient text NOT NULL,
            method text NOT NULL,
            api text NOT NULL,
            provider text NOT NULL,
            status text NOT NULL,
            code text NOT NULL,
            latency_us bigint NOT NULL,
            subject_digest text NOT NULL,
            row_hash bytea NOT NULL
        ) PARTITION BY RANGE (occurred_at);
        CREATE INDEX calls_chain ON journal.calls (chain_id, seq);
        CREATE INDEX calls_subject ON journal.calls (subject_digest, occurred_at)
            WHERE subject_digest <> '';
        """,
    ),
    (
        2,
        # The registry's ids the call counted against (gateway.journal.chain.REFERENCES); NULL in the
        # rows written before, whose hashes stay those of their v1 encoding.
        """
        ALTER TABLE journal.calls
            ADD COLUMN habilitation_id text,
            ADD COLUMN editor_id text,
            ADD COLUMN delegation_id text;
        """,
    ),
)
"""(version, SQL) in order; a new migration is appended, never an old one edited."""


def partition_name(month: dt.date) -> str:
    """The partition of a month: ``calls_YYYY_MM``."""
    return f"calls_{month.year:04d}_{month.month:02d}"


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month ``count`` months after ``month`` (before, when negative)."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


async def _lock(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


async def migrate(conn: AsyncConnection[Any]) -> list[int]:
    """Apply the migrations this database lacks, in one transaction under the journal's lock.

    Returns:
        The versions applied now (none when another gateway did it first).
    """
    return await apply_migrations(conn, "journal", _LOCK_KEY, MIGRATIONS)


async def _partitions(conn: AsyncConnection[Any]) -> dict[dt.date, str]:
    cursor = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'journal.calls'::regclass"
    )
    found = {}
    for (name,) in await cursor.fetchall():
        match = _PARTITION.fullmatch(name)
        if match:
            found[dt.date(int(match[1]), int(match[2]), 1)] = name
    return found


async def ensure_partitions(conn: AsyncConnection[Any], months: list[dt.date]) -> None:
    """Create the partitions of ``months`` that do not exist yet (one transaction, under the lock)."""
    async with conn.transaction():
        await _lock(conn)
        existing = await _partitions(conn)
        for month in months:
            if month in existing:
                continue
            await conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF journal.calls FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(SCHEMA, partition_name(month)),
                    sql.Literal(f"{month.isoformat()} 00:00:00+00"),
                    sql.Literal(f"{add_months(month, 1).isoformat()} 00:00:00+00"),
                )
            )


async def drop_expired(conn: AsyncConnection[Any], now: dt.datetime, retention_months: int) -> list[str]:
    """Drop the partitions whose every row is older than the retention, with their chains.

    The partition of month M holds rows up to the start of M + 1; it is dropped from the first
    month that starts ``retention_months`` months after that: a row is kept for at least the
    retention and at most one month more.

    Each is first detached ``CONCURRENTLY``: that takes only a ``SHARE UPDATE EXCLUSIVE`` lock on
    ``journal.calls``, so the gateways' inserts go on while it waits for the readers of the old
    month (an auditor's search) to finish; a plain ``DROP TABLE`` of a partition would queue an
    ``ACCESS EXCLUSIVE`` lock on ``journal.calls`` behind those readers, and every insert behind
    it. The detached table is then dropped with its chains and their checkpoints, which takes
    seconds at national scale (docs/BENCHMARKS.md) without holding any lock a gateway waits for.
    A detach or drop cut short (connection lost) is finished by the next run. One run at a time
    across gateways (a session advisory lock: another's run returns ``[]``).

    Args:
        conn: An autocommit connection (``DETACH ... CONCURRENTLY`` cannot run in a transaction).
        now: The time the retention is judged at.
        retention_months: ``JOURNAL_RETENTION_MONTHS``.

    Returns:
        The names of the partitions dropped.
    """
    locked = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_RETENTION_LOCK_KEY,))).fetchone()
    if not locked or not locked[0]:
        return []
    try:
        dropped = []
        current = month_of(now)
        for month, (name, state) in sorted((await _month_tables(conn)).items()):
            if add_months(month, 1 + retention_months) > current:
                continue
            table = sql.Identifier(SCHEMA, name)
            if state is not _Attachment.DETACHED:
                finish = sql.SQL("FINALIZE" if state is _Attachment.DETACHING else "CONCURRENTLY")
                await conn.execute(
                    sql.SQL("ALTER TABLE journal.calls DETACH PARTITION {} {}").format(table, finish)
                )
            async with conn.transaction():
                await conn.execute(sql.SQL("DROP TABLE {}").format(table))
                await conn.execute("DELETE FROM journal.chains WHERE month = %s", (month,))
            dropped.append(name)
        return dropped
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_RETENTION_LOCK_KEY,))


class _Attachment(Enum):
    ATTACHED = "attached"
    DETACHING = "detaching"
    """``DETACH ... CONCURRENTLY`` was cut short: ``FINALIZE`` ends it."""
    DETACHED = "detached"
    """Detached, not yet dropped."""


async def _month_tables(conn: AsyncConnection[Any]) -> dict[dt.date, tuple[str, _Attachment]]:
    """Every month's table of schema ``journal``: a partition of ``journal.calls``, or one detached."""
    cursor = await conn.execute(
        "SELECT c.relname, i.inhdetachpending FROM pg_class c "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'journal.calls'::regclass "
        "WHERE c.relnamespace = 'journal'::regnamespace AND c.relkind = 'r'"
    )
    found = {}
    for name, pending in await cursor.fetchall():
        match = _PARTITION.fullmatch(name)
        if match:
            state = (
                _Attachment.DETACHED
                if pending is None
                else _Attachment.DETACHING
                if pending
                else _Attachment.ATTACHED
            )
            found[dt.date(int(match[1]), int(match[2]), 1)] = (name, state)
    return found
