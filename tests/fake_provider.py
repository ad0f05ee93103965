"""A fake provider API: a real HTTP server on loopback, scripted per test.

Each test says what the provider answers on a path (status, headers, body,
delay), in order, the last answer repeating; the server records every request
it receives so the test can check the method, path, query and headers the
adapter sent. It runs in a background thread, so async code under test talks to
it over a real socket, as to the real provider.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Answer:
    """What the fake answers to one request."""

    status: int = 200
    body: Any = None
    """A dict or list is sent as JSON; str or bytes as they are; None sends no body."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""
    hang_up: bool = False
    """Close the connection without answering anything."""

    def payload(self) -> tuple[bytes, str]:
        """The body's bytes and content type."""
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


def json_answer(body: Any, status: int = 200, **headers: str) -> Answer:
    """A JSON answer with headers given as keyword arguments (underscores become dashes)."""
    return Answer(status, body, {name.replace("_", "-"): value for name, value in headers.items()})


@dataclass(frozen=True)
class Received:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def param(self, name: str) -> str | None:
        """The single value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        """The body as a urlencoded form, single values."""
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


class FakeProvider:
    """The fake provider server; use as a context manager."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """Bind a free loopback port; answer 404 on unscripted paths.

        Args:
            tls: A server-side context to serve HTTPS with (one that demands client
                certificates stands for a provider behind mutual TLS).
        """
        self._scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.received: list[Received] = []
        self._scheme = "http" if tls is None else "https"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        if tls is not None:
            # A client that fails the handshake is dropped at accept, before any request.
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # A short poll interval keeps the shutdown at the end of each test quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-provider", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of the server, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def script(self, path: str, *answers: Answer) -> None:
        """Answer requests to ``path`` with ``answers`` in turn, the last one repeating."""
        with self._lock:
            self._scripts[path].extend(answers)

    def to(self, path: str) -> list[Received]:
        """The requests received on ``path``, in order."""
        with self._lock:
            return [request for request in self.received if request.path == path]

    def _next(self, path: str) -> Answer:
        with self._lock:
            script = self._scripts.get(path)
            if not script:
                return Answer(404, {"error": "no script for this path"})
            return script.popleft() if len(script) > 1 else script[0]

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake._record(
                    Received(
                        self.command,
                        parts.path,
                        parse_qs(parts.query, keep_blank_values=True),
                        {name.lower(): value for name, value in self.headers.items()},
                        body,
                    )
                )
                answer = fake._next(parts.path)
                if answer.delay and fake._stopping.wait(answer.delay):
                    return
                if answer.hang_up:
                    self.close_connection = True
                    return
                payload, content_type = answer.payload()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its deadline passed): nothing to answer to.
                    pass

            do_GET = do_POST = do_PUT = _serve  # noqa: N815 - names imposed by BaseHTTPRequestHandler

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        return Handler

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
