"""Retention drops whole months, chains included, without holding up the gateways' inserts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from gateway.journal.schema import drop_expired
from gateway.journal.verify import verify
from tests.gateway.journal.conftest import TIMING, SigningKey, journal_on, started
from tests.gateway.journal.test_writer import drained, record

EXPIRED = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
"""When January 2025's rows (up to 1 February 2025) are 12 months old."""


@pytest.fixture
async def three_months(journal_db: str, journal_key: SigningKey) -> str:
    """Three rows in each of January, February and March 2025, each month its own partition."""
    for month in (1, 2, 3):
        moment = dt.datetime(2025, month, 15, 12, tzinfo=dt.UTC)
        # The writer's own upkeep keeps ten years here; the retention under test is applied below.
        journal = journal_on(journal_db, journal_key, retention_months=120)
        journal._clock = lambda moment=moment: moment  # type: ignore[misc]
        async with started(journal):
            for number in range(3):
                record(journal, f"{moment:%m}-{number}")
            await drained(journal)
    return journal_db


@pytest.fixture
async def autocommit(three_months: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(three_months, autocommit=True) as conn:
        yield conn


def left_in(url: str) -> tuple[list[str], set[dt.date]]:
    """The request ids of the rows left, in order, and the months of the chains left."""
    with psycopg.connect(url) as conn:
        rows = [row[0] for row in conn.execute("SELECT request_id FROM journal.calls ORDER BY occurred_at")]
        return rows, {row[0] for row in conn.execute("SELECT month FROM journal.chains")}


AFTER_JANUARY = ["02-0", "02-1", "02-2", "03-0", "03-1", "03-2"]


async def test_a_partition_is_dropped_once_its_rows_are_older_than_the_retention(
    three_months: str, autocommit: psycopg.AsyncConnection[Any], journal_key: SigningKey
) -> None:
    # 12 months at least: January 2025's rows (up to 1 February 2025) go in February 2026.
    assert await drop_expired(autocommit, EXPIRED - dt.timedelta(hours=1), 12) == []
    assert await drop_expired(autocommit, EXPIRED, 12) == ["calls_2025_01"]
    rows, chain_months = left_in(three_months)
    assert rows == AFTER_JANUARY
    assert dt.date(2025, 1, 1) not in chain_months
    with psycopg.connect(three_months) as conn:
        assert all(not report.problems for report in verify(conn, journal_key.verifier(), TIMING))


async def test_inserts_go_on_while_the_retention_waits_for_a_reader_of_the_old_month(
    three_months: str, autocommit: psycopg.AsyncConnection[Any]
) -> None:
    """An auditor reading January holds the drop back, never the gateways' inserts into the journal."""
    async with await psycopg.AsyncConnection.connect(three_months) as auditor:
        await auditor.execute("SELECT count(*) FROM journal.calls WHERE occurred_at < '2025-02-01'")
        dropping = asyncio.create_task(drop_expired(autocommit, EXPIRED, 12))
        async with await psycopg.AsyncConnection.connect(three_months) as gateway:
            await _until_waiting(gateway, autocommit.info.backend_pid)
            # The lock an INSERT into journal.calls takes, asked for the way a writer would.
            await gateway.execute("SET lock_timeout = '2s'")
            await gateway.execute("LOCK TABLE journal.calls IN ROW EXCLUSIVE MODE")
            await gateway.rollback()
        assert not dropping.done()
        await auditor.rollback()
    assert await asyncio.wait_for(dropping, 10) == ["calls_2025_01"]
    assert left_in(three_months)[0] == AFTER_JANUARY


async def _until_waiting(conn: psycopg.AsyncConnection[Any], pid: int) -> None:
    """Until the backend ``pid`` waits (for the reader), so the probe comes after its request."""
    for _ in range(200):
        cursor = await conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = await cursor.fetchone()
        await conn.rollback()
        if row is not None and row[0] in {"Lock", "Timeout"}:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the retention never waited for the reader")


async def test_a_detach_cut_short_and_a_table_detached_but_not_dropped_are_finished(
    three_months: str, autocommit: psycopg.AsyncConnection[Any]
) -> None:
    """A gateway stopped in the middle of a run leaves work the next run ends."""
    async with await psycopg.AsyncConnection.connect(three_months) as auditor:
        await auditor.execute("SELECT count(*) FROM journal.calls WHERE occurred_at < '2025-03-01'")
        async with await psycopg.AsyncConnection.connect(three_months, autocommit=True) as cut:
            detaching = asyncio.create_task(
                cut.execute("ALTER TABLE journal.calls DETACH PARTITION journal.calls_2025_01 CONCURRENTLY")
            )
            await _until_waiting(autocommit, cut.info.backend_pid)
            await autocommit.execute("SELECT pg_terminate_backend(%s)", (cut.info.backend_pid,))
            with pytest.raises(psycopg.OperationalError):
                await detaching
        await auditor.rollback()
    await autocommit.execute("ALTER TABLE journal.calls DETACH PARTITION journal.calls_2025_02")
    assert await drop_expired(autocommit, EXPIRED + dt.timedelta(days=31), 12) == [
        "calls_2025_01",
        "calls_2025_02",
    ]
    rows, chain_months = left_in(three_months)
    assert rows == ["03-0", "03-1", "03-2"]
    assert chain_months == {dt.date(2025, 3, 1)}


async def test_a_second_run_at_the_same_time_leaves_the_months_to_the_first(
    three_months: str, autocommit: psycopg.AsyncConnection[Any]
) -> None:
    async with await psycopg.AsyncConnection.connect(three_months, autocommit=True) as other:
        await other.execute("SELECT pg_advisory_lock(%s)", (0x6A6F75726E616C + 1,))
        assert await drop_expired(autocommit, EXPIRED, 12) == []
        await other.execute("SELECT pg_advisory_unlock(%s)", (0x6A6F75726E616C + 1,))
    assert await drop_expired(autocommit, EXPIRED, 12) == ["calls_2025_01"]


async def test_the_writer_applies_the_retention_off_its_own_connection(
    three_months: str, journal_key: SigningKey
) -> None:
    """A writer whose clock says February 2026 drops January 2025 by itself, and keeps writing."""
    journal = journal_on(three_months, journal_key, retention_months=12)
    assert journal.writer is not None
    journal.writer._clock = lambda: EXPIRED
    async with started(journal):
        for _ in range(200):
            if "01-0" not in left_in(three_months)[0]:
                break
            await asyncio.sleep(0.05)
        record(journal, "02-2026")
        await drained(journal)
        journal.admit()  # raises while PostgreSQL counts as unreachable
    assert left_in(three_months)[0] == [*AFTER_JANUARY, "02-2026"]
