"""The REST front's bounded connections: sizes, times, count and strict parsing, over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contract.routes import build_routes
from gateway.rest.protocol import REFUSALS, FrontLimits
from gateway.rest.query import RECIPIENT_PARAMETER, RequestReader
from gateway.rest.server import RestServer
from gateway.settings import GatewaySettings

LIMITS = FrontLimits(
    request_line_bytes=2048,
    header_bytes=1024,
    head_bytes=4096,
    headers=16,
    body_bytes=0,
    head_timeout_seconds=0.5,
    idle_timeout_seconds=0.5,
    connections=8,
)


class Served:
    """The running server and what its application saw."""

    def __init__(self, port: int, seen: list[dict[str, Any]]) -> None:
        self.port = port
        self.seen = seen

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def exchange(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send ``data`` on a new connection; the answer's status, headers and body, read to the close."""
        reader, writer = await self.open()
        try:
            writer.write(data)
            await writer.drain()
            return parse(await asyncio.wait_for(reader.read(), 5))
        finally:
            writer.close()


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def code_of(body: bytes) -> str:
    errors = json.loads(body)["errors"]
    assert len(errors) == 1 and set(errors[0]) == {"code", "title", "detail", "source", "meta"}
    return str(errors[0]["code"])


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    seen: list[dict[str, Any]] = []

    async def echo(request: Request) -> JSONResponse:
        seen.append({"method": request.method, "authorization": request.headers.get("authorization")})
        return JSONResponse({"ok": True})

    server = RestServer(Starlette(routes=[Route("/", echo)]), LIMITS, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield Served(server.port, seen)
    finally:
        await server.stop(0)


def request(*headers: str, target: str = "/", method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def test_a_plain_request_is_served(served: Served) -> None:
    status, _, body = await served.exchange(request("Host: a", "Connection: close"))
    assert (status, json.loads(body)) == (200, {"ok": True})


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (request("Host: a", target="/?" + "q" * 3000), 414, "00442"),
        (request("Host: a", "X-Big: " + "b" * 2000), 431, "00443"),
        (request("Host: a", *(f"X-{i}: 1" for i in range(20))), 431, "00443"),
        (request("Host: a", *(f"X-{i}: {'v' * 900}" for i in range(6))), 431, "00443"),
        (request("Host: a", "Content-Length: 5") + b"hello", 413, "00441"),
        (request("Host: a", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n", 413, "00441"),
        (request(version="HTTP/1.1"), 400, "00400"),
        (request("Host: a", "Host: b"), 400, "00400"),
        (b"GET /\r\n\r\n", 400, "00400"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, "00400"),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "00400"),
    ],
    ids=[
        "request line",
        "one header",
        "header count",
        "whole head",
        "content-length body",
        "chunked body",
        "no host on 1.1",
        "two hosts",
        "http/0.9",
        "http/2.0 line",
        "garbage",
    ],
)
async def test_a_request_out_of_bounds_gets_its_v3_refusal_and_the_connection_closes(
    served: Served, data: bytes, status: int, code: str
) -> None:
    got, headers, body = await served.exchange(data)
    assert (got, code_of(body)) == (status, code)
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert served.seen == []


async def test_http_1_0_without_host_is_served(served: Served) -> None:
    status, _, _ = await served.exchange(request(version="HTTP/1.0"))
    assert status == 200


async def test_head_never_reaches_the_application(served: Served) -> None:
    status, headers, body = await served.exchange(request("Host: a", method="HEAD"))
    assert (status, headers["allow"], body) == (405, "GET", b"")
    assert served.seen == []


async def test_the_authorization_reaches_the_application_as_sent(served: Served) -> None:
    """A trailing blank after the token stays: the call path refuses it as over gRPC."""
    await served.exchange(request("Host: a", "Authorization: Bearer abc  ", "Connection: close"))
    assert served.seen == [{"method": "GET", "authorization": "Bearer abc  "}]


async def test_a_header_without_end_is_cut_at_the_head_bound(served: Served) -> None:
    """A 1 MiB header sent in pieces: refused once the head's bound is passed, the rest never read."""
    reader, writer = await served.open()
    sent, answer = 0, b""
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Huge: ")
        while sent < 1 << 20:
            writer.write(b"h" * 16384)
            await writer.drain()
            sent += 16384
            await asyncio.sleep(0.001)
    except ConnectionError:
        pass  # reset by the front, which closed with unread bytes
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        pass
    finally:
        writer.close()
    if answer:  # the refusal, when it arrived before the reset
        assert parse(answer)[0] == 431
    assert sent < 1 << 20
    assert REFUSALS.labels("head")._value.get() >= 1


async def test_a_trickling_head_is_refused_at_the_head_timeout(served: Served) -> None:
    before = REFUSALS.labels("timeout")._value.get()
    reader, writer = await served.open()
    started = time.monotonic()
    try:
        # One header line every 0.15 s, on and on, until the answer comes: the head never ends.
        answered = asyncio.ensure_future(reader.readuntil(b"}]}"))
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET / HTTP/1.1\r\n")
            while time.monotonic() - started < LIMITS.head_timeout_seconds * 4 and not answered.done():
                await asyncio.sleep(0.15)
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
        answer = await asyncio.wait_for(answered, 5)
    finally:
        writer.close()
    assert time.monotonic() - started < LIMITS.head_timeout_seconds * 4
    status, _, body = parse(answer)
    assert (status, code_of(body)) == (408, "00440")
    assert REFUSALS.labels("timeout")._value.get() == before + 1


async def test_a_silent_connection_is_closed_at_the_head_timeout(served: Served) -> None:
    reader, writer = await served.open()
    started = time.monotonic()
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    assert LIMITS.head_timeout_seconds - 0.1 < time.monotonic() - started < LIMITS.head_timeout_seconds + 1


async def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    reader, writer = await served.open()
    try:
        writer.write(request("Host: a"))
        first = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
        assert first.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)  # a second request within the idle timeout is served
        writer.write(request("Host: a"))
        await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    assert time.monotonic() - started < LIMITS.idle_timeout_seconds + 1


async def test_connections_beyond_the_cap_are_refused(served: Served) -> None:
    held = [await served.open() for _ in range(LIMITS.connections)]
    try:
        await asyncio.sleep(0.1)
        reader, writer = await served.open()
        status, _, body = parse(await asyncio.wait_for(reader.read(), 5))
        writer.close()
        assert (status, code_of(body)) == (503, "00505")
    finally:
        for _, held_writer in held:
            held_writer.close()
    await asyncio.sleep(0.1)  # the held ones closed: room again
    status, _, _ = await served.exchange(request("Host: a", "Connection: close"))
    assert status == 200


def test_the_header_bound_holds_a_token_of_the_longest_length() -> None:
    with pytest.raises(ValueError, match="REST_MAX_HEADER_BYTES"):
        FrontLimits.of(GatewaySettings(token_max_bytes=8192, rest_max_header_bytes=8192))
    assert FrontLimits.of(GatewaySettings()).header_bytes == 8192


def test_the_largest_legitimate_request_line_is_well_within_the_bound() -> None:
    """Every route's every parameter at its longest (100 letters, each percent-encoded to 6 bytes; three
    first names; the widest numbers) and the recipient: under 12 KiB, within REST_MAX_REQUEST_LINE_BYTES."""
    longest = 0
    for route in build_routes().routes:
        for path in route.http_paths:
            query: list[tuple[str, str]] = [(RECIPIENT_PARAMETER, "1" * 14)]
            for parameter in RequestReader(route).parameters:
                number = parameter.field.cpp_type == FieldDescriptor.CPPTYPE_INT32
                value = str(-(2**31)) if number else "É" * 100
                query += [(parameter.name, value)] * (3 if parameter.field.is_repeated else 1)
            line = f"GET {path}?{urllib.parse.urlencode(query)} HTTP/1.1"
            longest = max(longest, len(line.encode()))
    assert 1000 < longest < 12 * 1024 < GatewaySettings().rest_max_request_line_bytes


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    """Two requests in one write get their two answers; a refused one behind an answer is never sent
    in its place: the answer goes, then the connection closes."""
    reader, writer = await served.open()
    try:
        writer.write(request("Host: a") + request("Host: a", "Connection: close"))
        answers = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert answers.count(b"HTTP/1.1 200") == 2
    reader, writer = await served.open()
    try:
        writer.write(request("Host: a") + request("Host: a", method="HEAD"))
        answers = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert answers.startswith(b"HTTP/1.1 200") and b"405" not in answers


async def test_a_second_request_s_head_is_bounded_too(served: Served) -> None:
    reader, writer = await served.open()
    try:
        writer.write(request("Host: a"))
        await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Huge: " + b"h" * (LIMITS.head_bytes * 4))
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        answer = b""
    finally:
        writer.close()
    if answer:
        assert parse(answer)[0] == 431
    assert len(served.seen) == 1


async def test_an_upgrade_the_front_does_not_do_is_served_as_http_1_1(served: Served) -> None:
    """``curl --http2`` on plain HTTP asks for h2c: the request is answered in HTTP/1.1."""
    upgrade = request(
        "Host: a", "Connection: Upgrade, HTTP2-Settings, close", "Upgrade: h2c", "HTTP2-Settings: AAMAAABk"
    )
    status, _, _ = await served.exchange(upgrade)
    assert status == 200
