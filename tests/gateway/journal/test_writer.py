"""The writer: rows chained and signed in PostgreSQL, migrations once, partitions kept for the retention."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg

from gateway.journal import Journal
from gateway.journal.schema import MIGRATIONS, migrate
from gateway.journal.verify import verify
from tests.gateway.journal.conftest import (
    HMAC_KEY,
    TIMING,
    SigningKey,
    journal_on,
    lefebvre,
    quotient_call,
    started,
)


def record(journal: Journal, request_id: str, status: str = "OK") -> None:
    journal.record(quotient_call(request_id, lefebvre(), status, "" if status == "OK" else "35003"))


async def drained(journal: Journal) -> None:
    assert journal.writer is not None
    for _ in range(200):
        if journal.writer.spooled == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{journal.writer.spooled} rows still spooled")


async def test_rows_are_written_in_order_chained_and_signed(journal_db: str, journal_key: SigningKey) -> None:
    """Every record is one row, in order, with what the journal holds and no identity; the chain verifies."""
    async with started(journal_on(journal_db, journal_key)) as journal:
        for number in range(120):
            record(journal, f"req-{number}", "OK" if number % 3 else "NOT_FOUND")
        await drained(journal)
    with psycopg.connect(journal_db) as conn:
        rows = conn.execute(
            "SELECT seq, request_id, habilitation, recipient, api, provider, status, code, latency_us, "
            "subject_digest FROM journal.calls ORDER BY chain_id, seq"
        ).fetchall()
        assert [row[1] for row in rows] == [f"req-{number}" for number in range(120)]
        assert [row[0] for row in rows] == list(range(1, 121))
        digest = Journal(HMAC_KEY).subject_digest(lefebvre())
        assert rows[0][2:] == (
            "CCAS de Lyon",
            "13002526500013",
            "cnaf.quotient_familial",
            "cnaf",
            "NOT_FOUND",
            "35003",
            1500,
            digest,
        )
        text = str(conn.execute("SELECT * FROM journal.calls").fetchall()).upper()
        # No identity in clear (a birth year could be a chance substring of a hash's bytes).
        assert "LEFEBVRE" not in text and "ALEXIS" not in text
        reports = verify(conn, journal_key.verifier(), TIMING)
    assert [report.problems for report in reports] == [[]]
    # Closing the writer signed its last head.
    assert reports[0].rows == 120 and reports[0].signed_seq == 120 and reports[0].unsigned == 0


async def test_several_gateways_starting_together_migrate_once(journal_db: str) -> None:
    """Concurrent migrations: one applies each version, the others find it applied."""

    async def one() -> list[int]:
        async with await psycopg.AsyncConnection.connect(journal_db, autocommit=True) as conn:
            return await migrate(conn)

    applied = await asyncio.gather(*(one() for _ in range(6)))
    versions = [version for version, _ in MIGRATIONS]
    assert sorted(version for run in applied for version in run) == versions
    with psycopg.connect(journal_db) as conn:
        assert [row[0] for row in conn.execute("SELECT version FROM journal.schema_migrations")] == versions


async def test_rows_of_two_months_make_two_chains(journal_db: str, journal_key: SigningKey) -> None:
    """Crossing a month starts a new chain, so that a partition holds whole chains."""
    moments = iter(
        [dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=dt.UTC), dt.datetime(2026, 2, 1, tzinfo=dt.UTC)]
    )
    journal = journal_on(journal_db, journal_key)
    journal._clock = lambda: next(moments)
    async with started(journal):
        record(journal, "january")
        record(journal, "february")
        await drained(journal)
    with psycopg.connect(journal_db) as conn:
        chains = conn.execute("SELECT month FROM journal.chains ORDER BY month").fetchall()
        assert [row[0] for row in chains] == [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
        reports = verify(conn, journal_key.verifier(), TIMING)
    assert [(report.rows, report.problems) for report in reports] == [(1, []), (1, [])]


async def test_a_call_refused_at_shutdown_keeps_its_row_with_what_its_caller_got(
    journal_db: str, journal_key: SigningKey
) -> None:
    """00504 rows are kept even when fail_closed would refuse: the call got no answer to refuse."""
    journal = journal_on(journal_db, journal_key)
    assert journal.writer is not None
    async with started(journal):
        journal.writer.down = True  # as after a failed write: record() would turn calls into 00503
        refused = journal.record_refused(quotient_call("stopping-1", None, "UNAVAILABLE", "00504"))
        assert refused.refusal is None and refused.status == "UNAVAILABLE"
        journal.writer.down = False
        await drained(journal)
    with psycopg.connect(journal_db) as conn:
        rows = conn.execute("SELECT request_id, status, code FROM journal.calls").fetchall()
    assert rows == [("stopping-1", "UNAVAILABLE", "00504")]
