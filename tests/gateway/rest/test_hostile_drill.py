"""The hostile-client drill: a ``python -m gateway`` under huge, trickling and silent connections.

On loopback only, bounded in count and time: 20 connections each sending a header
without end (20 MiB offered apiece), 100 sending one header line every 0.5 s, 50
silent ones, for `DRILL_SECONDS`. Meanwhile a normal caller calls every 0.2 s on
fresh connections. The gateway's resident memory must stay within `MEMORY_BOUND_BYTES`
of what it was before the drill: every connection holds at most twice
``REST_MAX_HEAD_BYTES`` while its head arrives, and the tricklers and silent ones are
closed at ``REST_HEAD_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devstack.processes import Child, ProcessGroup
from devstack.redis import RedisProcess, free_port
from tests.gateway.tokens import SigningKey

DRILL_SECONDS = 8.0
HEAD_TIMEOUT_SECONDS = 2.0
HUGE, TRICKLING, SILENT = 20, 100, 50
HUGE_HEADER_BYTES = 20 << 20
MEMORY_BOUND_BYTES = 64 << 20
"""Growth of the gateway's resident memory the drill may cause: 170 connections of at most 64 KiB
of head each is 11 MiB; the rest is the margin for the allocator and the normal calls."""


@dataclass
class Drill:
    """What the drill saw."""

    closed_by_the_gateway: dict[str, int] = field(
        default_factory=lambda: {"huge": 0, "trickling": 0, "silent": 0}
    )
    closed_after: dict[str, float] = field(default_factory=dict)
    normal: list[int] = field(default_factory=list)
    peak_rss: int = 0


def rss(pid: int) -> int:
    """The process's resident memory, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
async def gateway(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey], tmp_path: Path
) -> AsyncIterator[tuple[Child, int]]:
    rest = free_port()
    env = {
        "KEYS_DIR": str(keys_dir[0]),
        "REDIS_URL": redis_server.url,
        "JOURNAL_HMAC_KEY": "drill-journal-key",
        "REST_PORT": str(rest),
        "REST_HOST": "127.0.0.1",
        "REST_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_SECONDS),
        "LOG_LEVEL": "warning",
    }
    group = ProcessGroup(tmp_path / "logs")
    try:
        child = await asyncio.to_thread(group.start, "gateway", ["-m", "gateway"], env)
        yield child, rest
    finally:
        await asyncio.to_thread(group.close)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the gateway closed the connection (EOF or reset) before the drill's end."""
    try:
        await asyncio.wait_for(reader.read(), DRILL_SECONDS)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def huge(port: int, drill: Drill, started: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET /api/ping HTTP/1.1\r\nHost: drill\r\nX-Huge: ")
            chunk = b"h" * (1 << 20)
            for _ in range(HUGE_HEADER_BYTES // len(chunk)):
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), DRILL_SECONDS)
        if await _closed(reader):
            drill.closed_by_the_gateway["huge"] += 1
    except TimeoutError:
        pass  # the gateway stopped reading and never closed: counted as not closed
    finally:
        writer.close()


async def trickling(port: int, drill: Drill, started: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /api/ping HTTP/1.1\r\nHost: drill\r\n")
        with contextlib.suppress(ConnectionError):
            while time.monotonic() - started < DRILL_SECONDS and not reader.at_eof():
                await asyncio.sleep(0.5)
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
        if await _closed(reader):
            drill.closed_by_the_gateway["trickling"] += 1
            drill.closed_after["trickling"] = max(
                drill.closed_after.get("trickling", 0), time.monotonic() - started
            )
    finally:
        writer.close()


async def silent(port: int, drill: Drill, started: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if await _closed(reader):
            drill.closed_by_the_gateway["silent"] += 1
            drill.closed_after["silent"] = max(
                drill.closed_after.get("silent", 0), time.monotonic() - started
            )
    finally:
        writer.close()


async def normal(port: int, drill: Drill, started: float) -> None:
    while time.monotonic() - started < DRILL_SECONDS:
        try:
            answer = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/api/ping", timeout=5)
            drill.normal.append(answer.status_code)
        except httpx.HTTPError:
            drill.normal.append(0)
        await asyncio.sleep(0.2)


async def sample_memory(pid: int, drill: Drill, started: float) -> None:
    while time.monotonic() - started < DRILL_SECONDS:
        drill.peak_rss = max(drill.peak_rss, rss(pid))
        await asyncio.sleep(0.05)


@pytest.mark.timeout(180)
async def test_hostile_connections_hold_the_gateway_under_its_memory_bound(
    gateway: tuple[Child, int],
) -> None:
    child, port = gateway
    pid = child.process.pid
    assert (
        await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/api/ping", timeout=5)
    ).status_code == 200
    baseline = rss(pid)
    drill = Drill()
    started = time.monotonic()
    await asyncio.gather(
        *(huge(port, drill, started) for _ in range(HUGE)),
        *(trickling(port, drill, started) for _ in range(TRICKLING)),
        *(silent(port, drill, started) for _ in range(SILENT)),
        normal(port, drill, started),
        sample_memory(pid, drill, started),
    )
    growth = drill.peak_rss - baseline
    print(  # the note's figures: pytest -s shows them
        f"baseline {baseline >> 20} MiB, peak {drill.peak_rss >> 20} MiB, growth {growth >> 20} MiB; "
        f"closed by the gateway {drill.closed_by_the_gateway} after at most {drill.closed_after}; "
        f"normal calls {len(drill.normal)}, all 200: {set(drill.normal) == {200}}"
    )
    assert growth < MEMORY_BOUND_BYTES
    assert drill.closed_by_the_gateway == {"huge": HUGE, "trickling": TRICKLING, "silent": SILENT}
    assert drill.closed_after["silent"] < HEAD_TIMEOUT_SECONDS + 2
    assert drill.closed_after["trickling"] < HEAD_TIMEOUT_SECONDS + 2
    assert drill.normal and set(drill.normal) == {200}
