"""The write-ahead file: its format from the journal's columns, torn lines, a gateway killed under load."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import shutil
import signal
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.processes import Child, ProcessGroup
from devstack.redis import RedisProcess
from gateway.bounds import RATE_LIMIT_BURST_MAX, RATE_LIMIT_MAX_PER_SECOND
from gateway.journal.chain import CONTENT_COLUMNS, Content
from gateway.journal.verify import Timing, verify
from gateway.journal.wal import WriteAhead, database_of, decoder, encode_row
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.journal.conftest import (
    QUOTIENT_FAMILIAL,
    RECIPIENT,
    SigningKey,
    journal_on,
    keys_dir,
    lefebvre,
    quotient_call,
    started,
)
from tests.gateway.tokens import SigningKey as TokenKey
from tests.gateway.tokens import TokenFactory

__all__ = ["keys_dir"]


def content(n: int) -> Content:
    return Content(
        entry_id=uuid.uuid4(),
        occurred_at=dt.datetime(2026, 12, 7, 20, 0, n, 123456, tzinfo=dt.UTC),
        request_id=f"wal-{n}",
        token_id="0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
        habilitation="CCAS de Lyon",
        recipient=RECIPIENT,
        method=QUOTIENT_FAMILIAL,
        api="cnaf.quotient_familial",
        provider="cnaf",
        status="OK",
        code="",
        latency_us=1500 + n,
        subject_digest="ab" * 32,
    )


class _Row:
    def __init__(self, content: Content) -> None:
        self._content = content
        self.voided = False

    def content(self) -> Content:
        return self._content

    def void(self) -> None:
        self.voided = True


def test_a_row_reads_back_whatever_the_order_of_its_segment_s_columns() -> None:
    """The format is the journal's columns by name: a segment's header orders them, not the code."""
    row = content(1)
    columns = list(reversed(CONTENT_COLUMNS))
    values = dict(zip(CONTENT_COLUMNS, encode_row(row), strict=True))
    assert decoder(columns)([values[column] for column in columns]) == row


def test_a_segment_naming_a_column_the_journal_lacks_or_lacking_a_required_one_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown \\['shoe_size'\\]"):
        decoder([*CONTENT_COLUMNS, "shoe_size"])
    with pytest.raises(ValueError, match="missing \\['request_id'\\]"):
        decoder([column for column in CONTENT_COLUMNS if column != "request_id"])


async def test_rows_are_on_disk_when_their_future_is_done_and_a_torn_tail_is_not_read(tmp_path: Path) -> None:
    """Group commit: the rows appended together share one write; what follows a torn line is not read."""
    database = database_of("postgresql://journal@127.0.0.1:5432/journal")
    wal = WriteAhead(tmp_path, database, max_bytes=1 << 20, retry_seconds=0.1)
    wal.open()
    rows = [content(n) for n in range(5)]
    futures = [wal.append(_Row(row)) for row in rows]
    assert len(set(map(id, futures))) == 1, "appended in one turn of the loop: one write"
    await futures[0]
    assert wal.settled == 5
    (segment,) = await asyncio.to_thread(lambda: list(tmp_path.glob("*.wal")))
    with segment.open("ab") as stream:
        stream.write(b"0badc0de Rtorn")  # a write cut by a crash: never acknowledged
    wal.close()  # as a killed process would leave it: nothing committed, its lock released

    other = WriteAhead(tmp_path, database, max_bytes=1 << 20, retry_seconds=0.1)
    other.open()
    (orphan,) = other.orphans()
    assert orphan.settle(landed=False) == (rows, {})
    orphan.unlock()
    stranger = WriteAhead(
        tmp_path, database_of("postgresql://elsewhere/journal"), max_bytes=1 << 20, retry_seconds=1
    )
    stranger.open()
    assert stranger.orphans() == [], "another database's rows are not replayed there"


def test_a_file_of_another_format_is_left_where_it_is(tmp_path: Path) -> None:
    """A segment naming a column this version lacks (a rollback) is not replayed, nor deleted."""
    header = json.dumps(
        {
            "format": 1,
            "process": "p",
            "database": "db",
            "first": 0,
            "columns": [*CONTENT_COLUMNS, "shoe_size"],
        }
    ).encode()
    payload = b"H" + header
    segment = tmp_path / "p-00000000.wal"
    segment.write_bytes(b"%08x %s\n" % (zlib.crc32(payload), payload))
    (tmp_path / "p.lock").touch()
    wal = WriteAhead(tmp_path, "db", max_bytes=1 << 20, retry_seconds=1)
    wal.open()
    assert wal.orphans() == []
    assert segment.exists()


async def test_a_full_write_ahead_file_refuses_its_next_row(tmp_path: Path) -> None:
    wal = WriteAhead(tmp_path, "db", max_bytes=2048, retry_seconds=0.1)
    wal.open()
    while not wal.full():
        await wal.append(_Row(content(wal.appended)))
    assert wal.size >= 2048


async def test_a_disk_that_fails_refuses_the_calls_whose_rows_it_could_not_keep(
    journal_db: str, journal_key: SigningKey, tmp_path: Path
) -> None:
    """A failed write voids its rows: their calls get 00503, their rows say so; calls are refused a while."""
    wal = tmp_path / "wal"
    # Segments of 1 KiB: a new one is due every few rows, and cannot be made without the directory.
    journal = journal_on(journal_db, journal_key, wal_dir=wal, wal_max_bytes=16 * 1024, retry_seconds=0.5)
    async with started(journal):
        kept = journal.record(quotient_call("disk-kept", None))
        await journal.durable(kept)
        assert kept.refusal is None
        await asyncio.to_thread(shutil.rmtree, wal)
        outcomes = []
        for n in range(20):
            record = journal.record(quotient_call(f"disk-{n}", None))
            await journal.durable(record)
            outcomes.append(record.code)
            if record.code:
                break
        assert outcomes[-1] == "00503", "a row that could not be written: its call refused"
        assert journal.writer is not None
        assert journal.writer.refusal() is not None, "and the calls that follow, for JOURNAL_RETRY_SECONDS"
        await asyncio.to_thread(wal.mkdir)
        await asyncio.sleep(0.6)
        again = journal.record(quotient_call("disk-again", None))
        await journal.durable(again)
        assert again.refusal is None
    with psycopg.connect(journal_db) as conn:
        rows: dict[str, str] = dict(conn.execute("SELECT request_id, code FROM journal.calls").fetchall())
    assert rows[f"disk-{len(outcomes) - 1}"] == "00503", "the row says what the caller got"
    assert rows["disk-kept"] == rows["disk-again"] == ""


# -- a gateway killed under load ------------------------------------------------------------------

KILL_AFTER_SECONDS = 2.5
CALLERS = 12


@dataclass
class Calls:
    """Each call's request id and whether the gateway answered it (an answer, or an error of its own)."""

    answered: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)


def gateway_env(
    redis: RedisProcess, keys: Path, database: str, key: SigningKey, wal: Path, cnaf_port: int
) -> dict[str, str]:
    return {
        "KEYS_DIR": str(keys),
        "REDIS_URL": redis.url,
        "CNAF_ADDRESS": f"127.0.0.1:{cnaf_port}",
        "JOURNAL_HMAC_KEY": "the journal's test HMAC key, 32b",
        "JOURNAL_DATABASE_URL": database,
        "JOURNAL_SIGNING_KEY_FILE": str(key.private),
        "JOURNAL_WAL_DIR": str(wal),
        # Long enough that rows of answered calls wait in memory when the kill comes.
        "JOURNAL_FLUSH_SECONDS": "0.5",
        "JOURNAL_CHECKPOINT_SECONDS": "1",
        "RATE_LIMIT_PER_SECOND": str(RATE_LIMIT_MAX_PER_SECOND),
        "RATE_LIMIT_BURST": str(RATE_LIMIT_BURST_MAX),
        "LOG_LEVEL": "warning",
    }


@pytest.fixture
async def cnaf_port() -> AsyncIterator[int]:
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    try:
        yield cnaf.port
    finally:
        await cnaf.stop(0)


async def call_until_killed(child: Child, factory: TokenFactory) -> Calls:
    """Callers call the gateway without pause; it is killed (SIGKILL) after `KILL_AFTER_SECONDS`."""
    calls = Calls()
    numbers = itertools.count()
    token = factory.token()
    killed = asyncio.Event()

    async def caller() -> None:
        async with grpc.aio.insecure_channel(child.address) as channel:
            stub = cnaf_pb2_grpc.CnafServiceStub(channel)
            while not killed.is_set():
                rid = f"00000000-0000-4000-9000-{next(numbers):012d}"
                metadata = (
                    ("authorization", f"Bearer {token}"),
                    ("x-recipient", RECIPIENT),
                    ("x-request-id", rid),
                )
                try:
                    await stub.GetQuotientFamilialByIdentity(lefebvre(), metadata=metadata, timeout=5)
                except grpc.aio.AioRpcError as error:
                    # The gateway's own errors carry a rich status; a cut connection none.
                    (calls.answered if answered_by_the_gateway(error) else calls.unanswered).add(rid)
                else:
                    calls.answered.add(rid)

    async def kill() -> None:
        await asyncio.sleep(KILL_AFTER_SECONDS)
        child.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.process.wait)
        killed.set()

    await asyncio.gather(kill(), *(caller() for _ in range(CALLERS)))
    return calls


def answered_by_the_gateway(error: grpc.aio.AioRpcError) -> bool:
    return any(key == "grpc-status-details-bin" for key, _ in error.trailing_metadata() or ())


def rows_by_request(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT request_id, count(*) FROM journal.calls "
            "WHERE request_id LIKE '00000000-0000-4000-9000-%' GROUP BY request_id"
        ).fetchall()
    return dict(found)


def cut_last_done(wal: Path) -> bool:
    """Remove the last *done* marker of the dead process's last segment, as a kill after a COMMIT would."""
    segment = sorted(wal.glob("*.wal"))[-1]
    lines = segment.read_bytes().splitlines(keepends=True)
    for index in range(len(lines) - 1, -1, -1):
        if lines[index][9:10] == b"D":
            segment.write_bytes(b"".join(lines[:index] + lines[index + 1 :]))
            return True
    return False


@pytest.mark.timing
async def test_a_gateway_killed_under_load_has_every_answered_call_s_row_once_after_its_restart(
    redis_server: RedisProcess,
    keys_dir: tuple[Path, TokenKey, TokenKey],
    journal_db: str,
    journal_key: SigningKey,
    cnaf_port: int,
    tmp_path: Path,
) -> None:
    """SIGKILL under load; the restarted gateway replays the write-ahead file: exactly one row per answer.

    The last *done* marker is also cut from the dead process's file, so the replay must look its
    intent up in PostgreSQL (the transaction landed) rather than write its rows a second time.
    The dead process's unsigned chain tail is signed by the one that takes over: `verify` passes.
    """
    wal = tmp_path / "wal"
    env = gateway_env(redis_server, keys_dir[0], journal_db, journal_key, wal, cnaf_port)
    group = ProcessGroup(tmp_path / "logs")
    try:
        first = await asyncio.to_thread(group.start, "gateway", ["-m", "gateway"], env)
        calls = await call_until_killed(first, TokenFactory(keys_dir[1]))
        group.children.remove(first)
        assert len(calls.answered) > 100, "under load"
        await asyncio.sleep(0.5)  # a COMMIT the kill left in flight ends, or not, on the server
        before = rows_by_request(journal_db)
        assert calls.answered - set(before), "rows of answered calls were only on local disk at the kill"
        assert cut_last_done(wal)

        dead_files = set(wal.glob("*.wal"))
        second = await asyncio.to_thread(group.start, "gateway-restarted", ["-m", "gateway"], env)
        # Until the takeover is over: a try cut short by a slow PostgreSQL is tried again, its file kept.
        for _ in range(75):
            taken_over = not dead_files & set(wal.glob("*.wal"))
            if taken_over and calls.answered <= set(rows_by_request(journal_db)):
                break
            await asyncio.sleep(0.2)
        await asyncio.to_thread(group.stop, second)
    finally:
        await asyncio.to_thread(group.close)

    rows = rows_by_request(journal_db)
    assert calls.answered <= set(rows), f"{len(calls.answered - set(rows))} answered calls without their row"
    assert [rid for rid, count in rows.items() if count > 1] == [], "a row written twice"
    assert set(rows) <= calls.answered | calls.unanswered
    assert list(wal.glob("*.wal")) == [], "every file deleted once PostgreSQL holds its rows"
    with psycopg.connect(journal_db) as conn:
        reports = verify(conn, journal_key.verifier(), Timing(checkpoint_seconds=1))
    assert [problem for report in reports for problem in report.problems] == []
    assert [report.unsigned for report in reports] == [0] * len(reports), "the dead process's heads signed"
