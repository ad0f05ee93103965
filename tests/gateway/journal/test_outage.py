"""PostgreSQL stopped mid-load: fail_closed refuses until it is back, buffer spools; none answered lost."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from prometheus_client import REGISTRY

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.postgres import PostgresProcess
from devstack.redis import RedisProcess
from gateway.bounds import RATE_LIMIT_BURST_MAX, RATE_LIMIT_MAX_PER_SECOND
from gateway.journal.verify import verify
from tests.gateway.journal.conftest import (
    TIMING,
    JournalledMesh,
    SigningKey,
    journalled_gateway,
    keys_dir,
    lefebvre,
)
from tests.gateway.tokens import SigningKey as TokenKey
from tests.gateway.tokens import TokenFactory
from tests.rich_status import rich_status

pytestmark = pytest.mark.timing  # bounds in wall time: run alone (`make test`)

__all__ = ["keys_dir"]

LOAD_SECONDS = 4.0
STOP_AT, OUTAGE_SECONDS = 0.8, 1.5
WORKERS = 6


@pytest.fixture
def postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL of its own, which the test stops and starts again."""
    server = PostgresProcess(settings={"fsync": "off"})
    server.start()
    yield server
    server.close()


@dataclass
class Answered:
    """What each call got, by request id: its status name and API Particulier code."""

    outcomes: dict[str, tuple[str, str]]
    during_outage: collections.Counter[str]
    first_refusal: float | None
    """Seconds from the outage's start to the first call refused 00503, if any was."""

    def with_status(self, status: str, code: str = "") -> set[str]:
        return {
            rid
            for rid, outcome in self.outcomes.items()
            if outcome[0] == status and (not code or outcome[1] == code)
        }


async def load(
    mesh: JournalledMesh,
    postgres: PostgresProcess,
    *,
    frozen: bool = False,
    seconds: float = LOAD_SECONDS,
    outage_seconds: float = OUTAGE_SECONDS,
) -> Answered:
    """Calls from several workers for ``seconds``; PostgreSQL is stopped at STOP_AT for ``outage_seconds``.

    ``frozen``: stopped with SIGSTOP (no answer, sockets open) rather than shut down.
    """
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    token = mesh.factory.token()
    numbers = itertools.count()
    outcomes: dict[str, tuple[str, str]] = {}
    during: collections.Counter[str] = collections.Counter()
    down = asyncio.Event()
    end = time.monotonic() + seconds
    outage_at: list[float] = []
    refusals: list[float] = []

    async def worker() -> None:
        while time.monotonic() < end:
            rid = f"00000000-0000-4000-8000-{next(numbers):012d}"
            metadata = (
                ("authorization", f"Bearer {token}"),
                ("x-recipient", "13002526500013"),
                ("x-request-id", rid),
            )
            try:
                await stub.GetQuotientFamilialByIdentity(lefebvre(), metadata=metadata, timeout=5)
                outcomes[rid] = ("OK", "")
            except grpc.aio.AioRpcError as error:
                outcomes[rid] = (error.code().name, rich_status(error).api_code)
                if outage_at and outcomes[rid][1] == "00503":
                    refusals.append(time.monotonic() - outage_at[0])
            if down.is_set():
                during[outcomes[rid][0]] += 1

    async def outage() -> None:
        await asyncio.sleep(STOP_AT)
        outage_at.append(time.monotonic())
        await asyncio.to_thread(postgres.freeze if frozen else postgres.stop)
        down.set()
        await asyncio.sleep(outage_seconds)
        down.clear()
        await asyncio.to_thread(postgres.thaw if frozen else postgres.start)

    await asyncio.gather(outage(), *(worker() for _ in range(WORKERS)))
    return Answered(outcomes, during, min(refusals, default=None))


def journal_rows(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT request_id, status, code FROM journal.calls"
            " WHERE request_id LIKE '00000000-0000-4000-8000-%'"
        ).fetchall()


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("gateway_journal_refused_calls_total", {"reason": reason}) or 0.0


@asynccontextmanager
async def gateway_on(
    postgres: PostgresProcess,
    redis: RedisProcess,
    keys: tuple[Path, TokenKey, TokenKey],
    key: SigningKey,
    **settings: Any,
) -> AsyncIterator[JournalledMesh]:
    """A journalled gateway on ``postgres``, every call within the limiter's bounds."""
    async with journalled_gateway(
        redis.url,
        keys[0],
        postgres.url,
        key,
        TokenFactory(keys[1]),
        rate_limit_per_second=RATE_LIMIT_MAX_PER_SECOND,
        rate_limit_burst=RATE_LIMIT_BURST_MAX,
        **settings,
    ) as mesh:
        yield mesh


def intact(url: str, key: SigningKey, chains: int = 1) -> None:
    with psycopg.connect(url) as conn:
        reports = verify(conn, key.verifier(), TIMING)
    assert reports and [problem for report in reports for problem in report.problems] == []
    # Every chain's last head is signed, those the outage cut included (the gateway has stopped).
    assert [report.unsigned for report in reports] == [0] * len(reports)
    assert len(reports) >= chains, "a write failure starts a new chain"


async def test_fail_closed_refuses_while_postgres_is_down_and_keeps_every_row(
    postgres: PostgresProcess, redis_server: RedisProcess, keys_dir: Any, journal_key: SigningKey
) -> None:
    """No answer leaves once the journal cannot be written; every call, answered or refused, has its row."""
    async with gateway_on(
        postgres, redis_server, keys_dir, journal_key, journal_failure_mode="fail_closed"
    ) as mesh:
        answered = await load(mesh, postgres)
    # Answers leave only until the writer finds PostgreSQL gone: one flush, a few calls per worker.
    during = answered.during_outage
    assert during["OK"] <= WORKERS * 10 and during["OK"] < during["UNAVAILABLE"], during
    journal_refused = answered.with_status("UNAVAILABLE", "00503")
    assert journal_refused and answered.with_status("OK")
    assert set(answered.outcomes) == answered.with_status("OK") | journal_refused
    rows = journal_rows(postgres.url)
    # Each call exactly once, with what its caller got: those that left before the outage showed included.
    assert sorted(row[0] for row in rows) == sorted(answered.outcomes)
    assert {row[0]: (row[1], row[2]) for row in rows} == answered.outcomes
    intact(postgres.url, journal_key, chains=2)


async def test_buffer_answers_while_postgres_is_down_and_writes_the_spool_on_its_return(
    postgres: PostgresProcess, redis_server: RedisProcess, keys_dir: Any, journal_key: SigningKey
) -> None:
    """Within the spool's bound nothing is refused and nothing lost."""
    async with gateway_on(
        postgres, redis_server, keys_dir, journal_key, journal_failure_mode="buffer"
    ) as mesh:
        answered = await load(mesh, postgres)
    assert answered.during_outage["OK"] > WORKERS * 3
    assert set(answered.outcomes) == answered.with_status("OK")
    rows = journal_rows(postgres.url)
    assert sorted(row[0] for row in rows) == sorted(answered.outcomes)
    intact(postgres.url, journal_key, chains=2)


async def test_buffer_refuses_and_counts_what_would_overflow_the_spool(
    postgres: PostgresProcess, redis_server: RedisProcess, keys_dir: Any, journal_key: SigningKey
) -> None:
    """A full spool refuses each further call (00503) and counts it; every answered call has its row."""
    before = refused("spool_full")
    async with gateway_on(
        postgres, redis_server, keys_dir, journal_key, journal_failure_mode="buffer", journal_spool_rows=40
    ) as mesh:
        answered = await load(mesh, postgres)
    overflowed = answered.with_status("UNAVAILABLE", "00503")
    assert overflowed, answered.during_outage
    assert refused("spool_full") - before == len(overflowed)
    rows = journal_rows(postgres.url)
    assert sorted(row[0] for row in rows) == sorted(answered.with_status("OK"))
    intact(postgres.url, journal_key)


async def test_a_gateway_started_without_postgresql_refuses_until_it_comes(
    postgres: PostgresProcess, redis_server: RedisProcess, keys_dir: Any, journal_key: SigningKey
) -> None:
    """fail_closed from the start: no call is answered before the journal can be written, then calls go on."""
    postgres.stop()
    async with gateway_on(
        postgres, redis_server, keys_dir, journal_key, journal_failure_mode="fail_closed"
    ) as mesh:
        stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
        metadata = (("authorization", f"Bearer {mesh.factory.token()}"), ("x-recipient", "13002526500013"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetQuotientFamilialByIdentity(lefebvre(), metadata=metadata)
        assert rich_status(refused.value).api_code == "00503"
        await asyncio.to_thread(postgres.start)
        codes = []
        for _ in range(100):
            try:
                await stub.GetQuotientFamilialByIdentity(lefebvre(), metadata=metadata)
                break
            except grpc.aio.AioRpcError as error:
                codes.append(rich_status(error).api_code)
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the gateway did not come back to PostgreSQL")
        assert set(codes) <= {"00503"}
    intact(postgres.url, journal_key)


FREEZE_SECONDS = 3.0


async def test_a_frozen_postgresql_is_refused_within_the_timeout_plus_one_second(
    postgres: PostgresProcess, redis_server: RedisProcess, keys_dir: Any, journal_key: SigningKey
) -> None:
    """SIGSTOP (no error, sockets open): fail_closed refuses within JOURNAL_TIMEOUT_SECONDS + 1 s."""
    async with gateway_on(
        postgres, redis_server, keys_dir, journal_key, journal_failure_mode="fail_closed"
    ) as mesh:
        answered = await load(mesh, postgres, frozen=True, seconds=6.0, outage_seconds=FREEZE_SECONDS)
    # journalled_gateway's JOURNAL_TIMEOUT_SECONDS is 1.
    assert answered.first_refusal is not None and answered.first_refusal <= 1.0 + 1.0, answered.first_refusal
    assert set(answered.outcomes) == answered.with_status("OK") | answered.with_status("UNAVAILABLE", "00503")
    rows = journal_rows(postgres.url)
    assert sorted(row[0] for row in rows) == sorted(answered.outcomes)
    assert {row[0]: (row[1], row[2]) for row in rows} == answered.outcomes
    intact(postgres.url, journal_key, chains=2)


async def test_buffer_spools_while_postgresql_is_frozen(
    postgres: PostgresProcess, redis_server: RedisProcess, keys_dir: Any, journal_key: SigningKey
) -> None:
    """A frozen PostgreSQL in buffer mode: calls answered all along, each row written once after."""
    async with gateway_on(
        postgres, redis_server, keys_dir, journal_key, journal_failure_mode="buffer"
    ) as mesh:
        answered = await load(mesh, postgres, frozen=True, seconds=6.0, outage_seconds=FREEZE_SECONDS)
    assert answered.during_outage["OK"] > WORKERS * 3
    assert set(answered.outcomes) == answered.with_status("OK")
    rows = journal_rows(postgres.url)
    assert sorted(row[0] for row in rows) == sorted(answered.outcomes)
    intact(postgres.url, journal_key)
