"""``python -m bench.journal_scale``: the journal at national scale, a benchmark (not a test).

For each size (``--rows``, one month of partitions each) it fills a fresh database with rows as
the gateways write them (hash-chained, a signed head every ``CHECKPOINT_ROWS`` rows), with a
realistic spread: ``TOKENS`` tokens, ``RECIPIENTS`` recipients, one subject for every
``ROWS_PER_SUBJECT`` rows (a citizen is asked about a few times a month), a tenth of the calls
naming nobody. Then it measures, on that database:

- a citizen's access history (`gateway.journal.queries.provider_calls_about`, the forms of
  one person as the gateway asks them): p50 and p99 over ``QUERIES`` people;
- the auditor's search (`gateway.journal.queries.calls_about`): p50 and p99 likewise;
- ``journal verify`` (`gateway.journal.verify.verify`): rows per second;
- the monthly partition drop of the retention (`gateway.journal.schema.drop_expired`).

It prints one Markdown row per size, with the machine's load average, for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import multiprocessing
import os
import random
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from devstack.postgres import PostgresProcess
from gateway.journal.batch import checkpoints
from gateway.journal.chain import ROW_COLUMNS, Content, Head
from gateway.journal.queries import calls_about, provider_calls_about
from gateway.journal.schema import drop_expired, ensure_partitions, migrate
from gateway.journal.signing import Signer, Verifier
from gateway.journal.verify import Timing, verify_in_parallel

MONTH = dt.date(2026, 11, 1)
TOKENS, RECIPIENTS, ROWS_PER_SUBJECT = 5_000, 20_000, 4
CHAINS_ROWS, CHECKPOINT_ROWS = 200_000, 2_000
"""A chain per writer and month (200,000 rows: a gateway process's month at a low rate), a head signed
every 2,000 rows (5 s at 400 calls/s)."""
QUERIES = 200
METHOD = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"


def _subject(number: int) -> str:
    return f"{number:064x}"


def _fill(url: str, rows: int, private_key: bytes, seed: int, jobs: int) -> None:
    """``rows`` rows over MONTH in chains of CHAINS_ROWS, ``jobs`` chains written at once."""
    with psycopg.connect(url, autocommit=True) as conn:
        asyncio.run(_schema(url))
        chains = range(0, rows, CHAINS_ROWS)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            list(
                pool.map(
                    _fill_chain,
                    itertools.repeat(url),
                    itertools.repeat(rows),
                    chains,
                    itertools.repeat(private_key),
                    itertools.repeat(seed),
                )
            )
        conn.execute("ANALYZE journal.calls")


async def _schema(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await migrate(conn)
        await ensure_partitions(conn, [MONTH])


def _fill_chain(url: str, rows: int, first: int, private_key: bytes, seed: int) -> None:
    """The chain of rows ``first`` to ``first + CHAINS_ROWS`` (at most ``rows``), as a writer makes it."""
    rng = random.Random(seed * 1_000_003 + first)  # noqa: S311 - a spread of test data, not a secret
    signer = Signer(ed25519.Ed25519PrivateKey.from_private_bytes(private_key))
    subjects = max(1, rows // ROWS_PER_SUBJECT)
    seconds = 30 * 86_400
    start = dt.datetime(MONTH.year, MONTH.month, 1, tzinfo=dt.UTC)
    size = min(CHAINS_ROWS, rows - first)
    head = Head.start(MONTH)
    started = head
    points: list[Head] = []
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO journal.chains (chain_id, month, writer, started_at) VALUES (%s, %s, %s, %s)",
            (head.chain_id, MONTH, f"bench/{first}", start),
        )
        with cursor.copy(f"COPY journal.calls ({', '.join(ROW_COLUMNS)}) FROM STDIN".encode()) as copy:
            for index in range(size):
                named = rng.random() >= 0.1
                content = Content(
                    entry_id=uuid.UUID(int=rng.getrandbits(128)),
                    occurred_at=start + dt.timedelta(seconds=seconds * (first + index) / rows),
                    request_id=f"{rng.getrandbits(128):032x}",
                    token_id=f"token-{rng.randrange(TOKENS)}",
                    habilitation="CCAS",
                    recipient=f"{rng.randrange(RECIPIENTS):014d}",
                    method=METHOD,
                    api="cnaf.quotient_familial",
                    provider="cnaf",
                    status="OK",
                    code="",
                    latency_us=rng.randrange(500, 50_000),
                    subject_digest=_subject(rng.randrange(subjects)) if named else "",
                )
                head, row = head.then(content)
                copy.write_row(row)
                if head.seq % CHECKPOINT_ROWS == 0 or index == size - 1:
                    points.append(head)
        signed_at = start + dt.timedelta(seconds=seconds * (first + size) / rows)
        cursor.executemany(
            "INSERT INTO journal.checkpoints (chain_id, seq, head_hash, signed_at, key_id, signature) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (
                    chain.chain_id,
                    seq,
                    digest,
                    signed_at,
                    signer.key_id,
                    signer.sign(chain.chain_id, seq, digest, signed_at),
                )
                for chain, seq, digest in checkpoints([started], points)
            ],
        )


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _history(url: str, people: list[list[str]]) -> tuple[float, float]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        samples = []
        for digests in people:
            began = time.perf_counter()
            await provider_calls_about(conn, digests)
            samples.append((time.perf_counter() - began) * 1000)
    return _percentiles(samples)


def _search(url: str, people: list[list[str]]) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        samples = []
        for digests in people:
            began = time.perf_counter()
            calls_about(conn, digests, 1000)
            samples.append((time.perf_counter() - began) * 1000)
    return _percentiles(samples)


def _verify(url: str, verifier: Verifier, jobs: int) -> tuple[int, float]:
    began = time.perf_counter()
    reports = verify_in_parallel(url, verifier, Timing(checkpoint_seconds=86_400 * 31), jobs=jobs)
    spent = time.perf_counter() - began
    if any(report.problems for report in reports):
        raise RuntimeError("the generated journal does not verify")
    return sum(report.rows for report in reports), spent


async def _drop(url: str) -> float:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        dropped = await drop_expired(conn, dt.datetime(MONTH.year + 2, 1, 1, tzinfo=dt.UTC), 12)
        spent = time.perf_counter() - began
    if not dropped:
        raise RuntimeError("the month's partition was not dropped")
    return spent


def measure(
    server: PostgresProcess, rows: int, private_key: bytes, verifier: Verifier, *, seed: int, jobs: int
) -> dict[str, Any]:
    """Fill a fresh database with ``rows`` rows and measure it; the database is dropped after.

    ``jobs`` processes write the chains and verify them; ``private_key`` is the raw Ed25519 key
    that signs the heads, ``verifier`` holds its public key.
    """
    rng = random.Random(seed)  # noqa: S311 - a spread of test data, not a secret
    name = f"journal_scale_{rows}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
        conn.execute(f"CREATE DATABASE {name}".encode())
    url = server.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        began = time.perf_counter()
        _fill(url, rows, private_key, seed, jobs)
        filled = time.perf_counter() - began
        subjects = max(1, rows // ROWS_PER_SUBJECT)
        # The gateway asks for every form of a person: four digests, one of them in the journal.
        people = [
            [_subject(rng.randrange(subjects)), *(f"{rng.getrandbits(256):064x}" for _ in range(3))]
            for _ in range(QUERIES)
        ]
        history = asyncio.run(_history(url, people))
        search = _search(url, people)
        verified, verify_seconds = _verify(url, verifier, jobs)
        drop = asyncio.run(_drop(url))
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())
    return {
        "rows": rows,
        "fill_s": filled,
        "history_ms": history,
        "search_ms": search,
        "verify_rows_per_s": verified / verify_seconds,
        "drop_ms": drop * 1000,
        "load": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure each size and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.journal_scale", description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="a size (repeat); default 1M, 10M, 50M")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes that write and verify chains"
    )
    args = parser.parse_args(argv)
    sizes = args.rows or [1_000_000, 10_000_000, 50_000_000]
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    verifier = Verifier([key.public_key()])
    server = PostgresProcess(settings={"fsync": "off", "max_wal_size": "4GB"})
    server.start()
    print(
        "| rows | fill (s) | history p50 / p99 (ms) | search p50 / p99 (ms) "
        f"| verify (rows/s, {args.jobs} processes) "
        "| partition drop (ms) | load average |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    try:
        for rows in sizes:
            result = measure(server, rows, raw, verifier, seed=args.seed, jobs=args.jobs)
            load = " ".join(f"{value:.1f}" for value in result["load"])
            history, search = result["history_ms"], result["search_ms"]
            print(
                f"| {rows:,} | {result['fill_s']:.0f} | {history[0]:.2f} / {history[1]:.2f} "
                f"| {search[0]:.2f} / {search[1]:.2f} | {result['verify_rows_per_s']:,.0f} "
                f"| {result['drop_ms']:.0f} | {load} |",
                flush=True,
            )
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
