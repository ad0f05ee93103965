"""``python -m bench.journal_wal``: the journal's write-ahead file alone, on this machine's disk (not a test).

`make bench` measures what the write-ahead file costs a call (paths ``gateway`` and ``no WAL``);
this tells the parts of it apart, with `gateway.journal.wal.WriteAhead` appending the benchmark's
row in a directory of ``--dir`` (default ``.run/``, on the repository's disk, as the bench's):

- appending a row (its encoding and CRC, in the event loop): CPU per row;
- one row at a time, each waiting for its own ``fdatasync`` (concurrency 1): latency p50, p99;
- ``--group`` rows appended together, one ``fdatasync`` for all: latency per group, CPU per row
  (the loop's and the writing thread's).

It prints one Markdown row, with the machine's load average, for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

from gateway.journal.chain import Content
from gateway.journal.wal import WriteAhead

_ROOT = Path(__file__).resolve().parent.parent


class _Row:
    __slots__ = ("_content",)

    def __init__(self, content: Content) -> None:
        self._content = content

    def content(self) -> Content:
        return self._content

    def void(self) -> None:
        """Nothing to refuse here."""


def _row() -> _Row:
    """The row of `make bench`'s call: a quotient familial, answered OK."""
    return _Row(
        Content(
            entry_id=uuid.uuid4(),
            occurred_at=dt.datetime.now(dt.UTC),
            request_id=str(uuid.uuid4()),
            token_id=str(uuid.uuid4()),
            habilitation="CCAS de Lyon",
            recipient="13002526500013",
            method="/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
            api="cnaf.quotient_familial",
            provider="cnaf",
            status="OK",
            code="",
            latency_us=1500,
            subject_digest="ab" * 32,
        )
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(directory: Path, rows: int, alone: int, groups: int, group: int) -> dict[str, float]:
    """``rows`` rows appended at once, then ``alone`` one at a time, then ``groups`` groups of ``group``."""
    wal = WriteAhead(directory, "bench", max_bytes=1 << 40, retry_seconds=1.0)
    await asyncio.to_thread(wal.open)
    try:
        batch = [_row() for _ in range(rows)]
        began = time.process_time()
        for row in batch:
            wal.append(row)
        append_us = (time.process_time() - began) / rows * 1e6
        await wal.drain()
        latencies = []
        for row in batch[:alone]:
            began = time.perf_counter()
            await wal.append(row)
            latencies.append((time.perf_counter() - began) * 1000)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(groups):
            await asyncio.gather(*(wal.append(row) for row in batch[:group]))
        group_cpu_us = (time.process_time() - cpu) / (groups * group) * 1e6
        group_ms = (time.perf_counter() - wall) / groups * 1000
    finally:
        await asyncio.to_thread(wal.close)  # its files stay, in the temporary directory deleted after
    return {
        "append_us": append_us,
        "alone_p50_ms": _percentile(latencies, 0.50),
        "alone_p99_ms": _percentile(latencies, 0.99),
        "group_ms": group_ms,
        "group_cpu_us": group_cpu_us,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print the row."""
    parser = argparse.ArgumentParser(prog="python -m bench.journal_wal", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=_ROOT / ".run", help="where the files go (local disk)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows appended at once")
    parser.add_argument("--alone", type=int, default=300, help="rows written one at a time")
    parser.add_argument("--group", type=int, default=32, help="rows per group (the bench's concurrency)")
    parser.add_argument("--groups", type=int, default=300)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="journal-wal-", dir=args.dir) as directory:
        result = asyncio.run(measure(Path(directory), args.rows, args.alone, args.groups, args.group))
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        "| append, CPU µs/row | one row alone, p50 / p99 ms | "
        f"{args.group} rows per fsync, ms per group | CPU µs/row grouped | load average |"
    )
    print("|---:|---:|---:|---:|---|")
    print(
        f"| {result['append_us']:.1f} | {result['alone_p50_ms']:.2f} / {result['alone_p99_ms']:.2f} "
        f"| {result['group_ms']:.2f} | {result['group_cpu_us']:.1f} | {load} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
