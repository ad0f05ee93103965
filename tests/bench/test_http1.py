"""The load generator's HTTP/1.1 client and HTTP runs, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.http1 import Connection, get_request, http_status_name
from bench.loadgen import OK, LoadSpec, run_load


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        status, body = (200, b'{"ok":true}') if b"GET /ok" in head else (404, b"{}")
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
    writer.close()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    listening = await asyncio.start_server(_serve, "127.0.0.1", 0)
    async with listening:
        yield f"127.0.0.1:{listening.sockets[0].getsockname()[1]}"


async def test_one_connection_serves_calls_one_after_another(server: str) -> None:
    connection = await Connection.open(server)
    request = get_request(server, "/ok?a=1", [("Authorization", "Bearer t")])
    assert request.startswith(b"GET /ok?a=1 HTTP/1.1\r\nHost: ") and b"Authorization: Bearer t" in request
    assert [await connection.get(request) for _ in range(3)] == [200, 200, 200]
    assert await connection.get(get_request(server, "/nope", [])) == 404
    await connection.close()
    assert (http_status_name(200), http_status_name(404)) == (OK, "HTTP_404")


async def test_an_http_run_counts_by_status(server: str) -> None:
    spec = LoadSpec(
        (server,), "/x.Y/Z", b"", http_path="/ok", processes=1, concurrency=2, duration=0.3, warmup=0.1
    )
    result = await asyncio.to_thread(run_load, spec)
    assert set(result.statuses) == {OK}
    assert result.ok > 0
    missing = await asyncio.to_thread(
        run_load,
        LoadSpec(
            (server,), "/x.Y/Z", b"", http_path="/no", processes=1, concurrency=1, duration=0.2, warmup=0.0
        ),
    )
    assert set(missing.statuses) == {"HTTP_404"}
