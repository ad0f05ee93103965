"""The REST front's HTTP/1.1 connections, bounded: what a hostile client can hold is fixed in advance.

uvicorn's httptools protocol parses the requests; this subclass bounds every
connection before the application sees anything (`FrontLimits`, from the
``REST_*`` settings):

- **sizes**: the request line (414, ``00442``), each header field, their count
  and the whole head (431, ``00443``), the body (413, ``00441``; a chunked one too,
  whose size is known only once the application has started). The head is fed
  to the parser at most ``REST_MAX_HEAD_BYTES`` at a time, so a connection never
  holds more than twice that while its head arrives, however long the header it sends;
- **time**: a request must arrive whole within ``REST_HEAD_TIMEOUT_SECONDS`` of
  the connection's opening or of its first byte (then 408, ``00440``, or a plain
  close for a connection that sent nothing), and a keep-alive connection idle for
  ``REST_IDLE_TIMEOUT_SECONDS`` is closed;
- **count**: beyond ``REST_MAX_CONNECTIONS`` open connections, a new one is answered
  503 ``00505`` and closed at once;
- **strict parsing** (RFC 9112): HTTP/1.0 and HTTP/1.1 only (an HTTP/0.9 request
  line is 400 ``00400``), exactly one ``Host`` on HTTP/1.1 (400), and the
  ``authorization`` and ``x-api-key`` values as sent, trailing blanks included, so
  the call path takes or refuses a token over REST exactly as over gRPC;
- **HEAD** is answered 405 ``00405`` (``Allow: GET``) without reaching the
  application: a HEAD on a data route would otherwise run the call, spend quota and
  journal an access whose data was never sent.

Each refusal is the v3 error body (`gateway.rest.errors`) with ``X-Request-ID``,
sent with ``Connection: close``; the connection is then closed. None reaches the call
path (no token was read): they are counted in ``gateway_rest_refusals`` by reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import structlog
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.auth import API_KEY_HEADER, AUTHORIZATION_KEY
from gateway.rest.errors import error_body, http_status
from gateway.settings import GatewaySettings
from runtime.context import REQUEST_ID_KEY, new_request_id
from runtime.errors import FieldViolation, api_error

_LOG = structlog.get_logger(__name__)
_AUTHORIZATION = AUTHORIZATION_KEY.encode()
_AS_SENT = frozenset({_AUTHORIZATION, API_KEY_HEADER.encode()})
"""The headers that carry a token: kept as sent."""
_LONGEST_SCHEME = len(f"{AUTHORIZATION_KEY}: Bearer ")
_VERSIONS = frozenset({"1.0", "1.1"})

REFUSALS = Counter(
    "gateway_rest_refusals",
    "Requests and connections the REST front refused before its application, by reason: request_line, "
    "header, headers, head, body, timeout, malformed, head_method, connections (the cap reached).",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class FrontLimits:
    """The bounds of the REST front's connections (the ``REST_*`` settings of `GatewaySettings`)."""

    request_line_bytes: int
    header_bytes: int
    head_bytes: int
    headers: int
    body_bytes: int
    head_timeout_seconds: float
    idle_timeout_seconds: float
    connections: int

    @classmethod
    def of(cls, settings: GatewaySettings) -> FrontLimits:
        """The limits the settings give.

        Raises:
            ValueError: ``REST_MAX_HEADER_BYTES`` cannot hold the authorization of a token of
                ``TOKEN_MAX_BYTES``.
        """
        if settings.rest_max_header_bytes < settings.token_max_bytes + _LONGEST_SCHEME:
            raise ValueError(
                f"REST_MAX_HEADER_BYTES ({settings.rest_max_header_bytes}) cannot hold the authorization "
                f"header of a token of TOKEN_MAX_BYTES ({settings.token_max_bytes})"
            )
        return cls(
            request_line_bytes=settings.rest_max_request_line_bytes,
            header_bytes=settings.rest_max_header_bytes,
            head_bytes=settings.rest_max_head_bytes,
            headers=settings.rest_max_headers,
            body_bytes=settings.rest_max_body_bytes,
            head_timeout_seconds=settings.rest_head_timeout_seconds,
            idle_timeout_seconds=settings.rest_idle_timeout_seconds,
            connections=settings.rest_max_connections,
        )


class _RefusedError(Exception):
    """Stops the parser on a request the front refuses (`BoundedHttpProtocol._refusal` says why)."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    code: str
    reason: str
    violations: Sequence[FieldViolation] = ()
    headers: Sequence[tuple[bytes, bytes]] = ()


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within `FrontLimits`; `bounded_protocol` gives it its limits."""

    limits: ClassVar[FrontLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn arms its keep-alive timer after each answer with this value.
        self.timeout_keep_alive = self.limits.idle_timeout_seconds  # type: ignore[assignment]
        self._in_head = True  # from the connection's opening or the previous request's end to this one's head
        self._reading = False  # from a request's first byte to its end
        self._head_bytes = 0
        self._url_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None
        self._refusal: _Refusal | None = None

    # -- the connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection against the cap; start the clock of its first request."""
        super().connection_made(transport)
        if len(self.connections) > self.limits.connections:
            self._refuse(_Refusal("00505", "connections"))
            return
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the request clock."""
        self._disarm_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse what came, the head at most its bound at a time."""
        if self._refusal is not None:
            return
        self._unset_keepalive_if_required()
        while data:
            # At most a head's bound goes to the parser at a time, which keeps a header until it ends:
            # what it holds of an unfinished head is bounded whatever the data around it.
            room = self.limits.head_bytes
            if self._in_head:
                room -= self._head_bytes
                if room <= 0:
                    self._refuse(_Refusal("00443", "head"))
                    return
            piece, data = data[:room], data[room:]
            if self._in_head:
                self._head_bytes += len(piece)
            if not self._feed(piece):
                return

    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False when the request was refused (and the connection is closing)."""
        try:
            self.parser.feed_data(data)
        except _RefusedError:
            pass
        except httptools.HttpParserUpgrade:
            pass  # an upgrade (h2c, websocket) the front does not do: the request is served as HTTP/1.1
        except Exception:  # httptools' errors; a refusal raised in a callback comes wrapped in one
            if self._refusal is None:
                self._refusal = _Refusal("00400", "malformed", [FieldViolation("request", "not HTTP/1.1")])
        if self._refusal is not None:
            self._refuse(self._refusal)
            return False
        return True

    def _arm_read_timer(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.limits.head_timeout_seconds, self._read_timed_out)

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self._reading:
            self._refuse(_Refusal("00440", "timeout"))
        else:  # nothing was sent: nobody to tell
            REFUSALS.labels("timeout").inc()
            self.transport.close()

    # -- the parser's callbacks --------------------------------------------------------------------

    def _stop(self, refusal: _Refusal) -> None:
        self._refusal = refusal
        raise _RefusedError

    def on_message_begin(self) -> None:
        """A request begins: it is timed from here (its head counted since the previous one ended)."""
        super().on_message_begin()
        self._url_bytes = self._header_count = self._body_bytes = 0
        self._reading = True
        self._arm_read_timer()

    def on_url(self, url: bytes) -> None:
        """Within the request line's bound (00442)."""
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.request_line_bytes:
            self._stop(_Refusal("00442", "request_line"))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Within the header count and size bounds (00443); the token's headers kept as sent."""
        self._header_count += 1
        if self._header_count > self.limits.headers:
            self._stop(_Refusal("00443", "headers"))
        if len(name) + len(value) > self.limits.header_bytes:
            self._stop(_Refusal("00443", "header"))
        lower = name.lower()
        if lower in _AS_SENT:
            # As sent: uvicorn would drop trailing blanks, which a gRPC caller's token may not have.
            self.headers.append((lower, value))
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """Strict parsing and the body's announced size, then uvicorn starts the application."""
        version = self.parser.get_http_version()
        if version not in _VERSIONS:
            violation = FieldViolation("request", "HTTP/1.0 or HTTP/1.1 only")
            self._stop(_Refusal("00400", "malformed", [violation]))
        hosts = sum(1 for name, _ in self.headers if name == b"host")
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            self._stop(_Refusal("00400", "malformed", [FieldViolation("Host", "exactly one on HTTP/1.1")]))
        for name, value in self.headers:
            # A chunked body's size is unknown until it ends, after the application started: only a
            # Content-Length within the bound is taken.
            too_long = name == b"content-length" and int(value) > self.limits.body_bytes
            if too_long or name == b"transfer-encoding":
                self._stop(_Refusal("00441", "body"))
        if self.parser.get_method() == b"HEAD":
            self._stop(_Refusal("00405", "head_method", headers=[(b"allow", b"GET")]))
        self._in_head = False
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Within the body's bound (00441)."""
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.body_bytes:
            self._stop(_Refusal("00441", "body"))
        super().on_body(body)

    def on_message_complete(self) -> None:
        """The request arrived whole: its clock stops, and what follows is the next one's head."""
        self._disarm_read_timer()
        self._in_head, self._head_bytes, self._reading = True, 0, False
        super().on_message_complete()

    # -- refusals -----------------------------------------------------------------------------------

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer ``refusal`` in the v3 error shape, then close the connection."""
        self._refusal = refusal
        self._disarm_read_timer()
        REFUSALS.labels(refusal.reason).inc()
        _LOG.debug("rest_request_refused", reason=refusal.reason, code=refusal.code)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self._in_head or cycle.response_started:
                # An answer to an earlier request, or this one's, is on its way: it goes, then the
                # connection closes; the refused request goes unanswered, as HTTP allows a pipeline.
                cycle.keep_alive = False
                self.transport.pause_reading()
                return
            cycle.disconnected = True  # refused in its body: the application's answer goes nowhere
        error = api_error(refusal.code, violations=refusal.violations)
        body = json.dumps(error_body(error), ensure_ascii=False, separators=(",", ":")).encode()
        lines = [
            STATUS_LINE[http_status(error)],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            b"%s: %s\r\n" % (REQUEST_ID_KEY.encode(), new_request_id().encode()),
            *(b"%s: %s\r\n" % pair for pair in refusal.headers),
            b"\r\n",
        ]
        if refusal.reason != "head_method":  # the answer to a HEAD has no body
            lines.append(body)
        self.transport.write(b"".join(lines))
        self.transport.close()


def bounded_protocol(limits: FrontLimits) -> type[BoundedHttpProtocol]:
    """The protocol class uvicorn builds each connection with, bounded by ``limits``."""
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), {"limits": limits})
