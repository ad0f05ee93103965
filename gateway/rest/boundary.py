"""The REST front's call boundary: one ASGI middleware around every request.

For each HTTP request it, in this order:

1. names the request by its route template (``GET /v3/dss/quotient_familial/identite``,
   ``GET /api/{ping}/ping``; ``(no route)`` for a path of no route): never the
   path itself, which may hold a value, nor the query string, which holds identities;
2. opens the call's scope (`HttpCallScope`): the call context, request id and log
   context of `runtime.interceptors.CallScope`, and an HTTP SERVER span;
3. watches the connection: a caller that closes it before the answer cancels its
   call, which the call path journals and counts CANCELLED (`runtime.interceptors.Outcome`);
   the request is counted with the status 499, as reverse proxies log a client that
   closed the request;
4. adds the call's response metadata (``X-Request-ID``, the rate-limit headers) to
   the answer's headers, and renders an exception that no handler rendered as the
   v3 body of 50000 (logged by its type only);
5. counts the request by route template, method and HTTP status, and ends its span.

Refusals (`ApiError`) are rendered by the front's Starlette exception handler
(`gateway.rest.app`), inside this boundary.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import HTTP_DURATION, HTTP_REQUESTS
from gateway.rest.errors import error_body, http_status
from runtime import tracing
from runtime.interceptors import CallScope

SCOPE_KEY = "apiparticulier.call_scope"
"""Where the request's ASGI scope holds its `HttpCallScope`, for the exception handlers."""
NO_ROUTE = "(no route)"
"""The route template of a path no route serves."""
CLIENT_CLOSED = 499
"""The status a request whose caller closed the connection is counted with (no answer was sent)."""
JSON = "application/json"
"""The content type of every JSON answer, as the published spec documents it."""


def json_bytes(body: Any) -> bytes:
    """A JSON body as the front sends it: UTF-8, compact."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class RouteTemplates:
    """The route template of a request path: a dict of the literal paths, then the routes' patterns.

    Args:
        routes: The front's routes.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._literal: dict[str, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for route in routes:
            if isinstance(route, Route):
                if route.param_convertors:
                    self._patterns.append((route.path_regex, route.path))
                else:
                    self._literal[route.path] = route.path

    def of(self, path: str) -> str:
        """The template of the route serving ``path``; `NO_ROUTE` when none does."""
        template = self._literal.get(path)
        if template is not None:
            return template
        for pattern, template in self._patterns:
            if pattern.fullmatch(path):
                return template
        return NO_ROUTE


class HttpCallScope(CallScope):
    """The call boundary's scope for one HTTP request: HTTP metrics and span instead of gRPC's.

    Args:
        method: The HTTP method.
        route: The route template.
        metadata: The request's headers, lower-case names.
    """

    def __init__(self, method: str, route: str, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self.http_method, self.route = method, route
        self.status_code = 500
        """The answer's HTTP status, once sent; 500 until then."""
        super().__init__(f"{method} {route}", metadata)

    def _start_span(
        self, tracer: Any, metadata: Sequence[tuple[str, str | bytes]] | None
    ) -> tuple[Any, object]:
        return tracing.start_http_server_span(
            tracer, self.http_method, self.route, metadata, self.call.request_id
        )

    def _count(self, seconds: float) -> None:
        if self.outcome.status == "CANCELLED":
            self.status_code = CLIENT_CLOSED
        HTTP_DURATION.labels(self.route, self.http_method).observe(seconds)
        HTTP_REQUESTS.labels(self.route, self.http_method, str(self.status_code)).inc()

    def _end_span(self) -> None:
        tracing.end_http_server_span(self._span, self._otel_token, self.status_code, self.outcome.code)


class _Exchange:
    """One request inside the boundary: its scope, its answer's start, and the watch on its connection."""

    __slots__ = ("answered", "call_scope", "cancelled", "receive", "send", "started", "task")

    def __init__(self, call_scope: HttpCallScope, receive: Receive, send: Send) -> None:
        self.call_scope, self.receive, self.send = call_scope, receive, send
        self.started = False
        """The answer has started: its status and headers are sent."""
        self.answered = False
        """The last part of the answer is on its way: a disconnection no longer cancels anything."""
        self.cancelled = False
        """The caller went away and the call was cancelled for it."""
        self.task = asyncio.current_task()

    async def watch(self) -> None:
        """Cancel the call when its caller closes the connection before the answer."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
        if not self.answered and self.task is not None:
            self.cancelled = True
            self.task.cancel()

    async def no_body(self) -> Message:
        """What the application reads of the request: no route of the front reads a body."""
        return {"type": "http.request", "body": b"", "more_body": False}

    async def answer(self, message: Message) -> None:
        """Send a part of the answer; the start with the call's response metadata added."""
        if message["type"] == "http.response.start":
            self.started = True
            self.call_scope.status_code = message["status"]
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            for key, value in self.call_scope.call.response_metadata:
                name = key.encode("latin-1")
                if name not in present:
                    headers.append((name, value.encode("latin-1")))
            message = {**message, "headers": headers}
        elif not message.get("more_body", False):
            self.answered = True
        await self.send(message)

    async def internal(self, exc: Exception) -> None:
        """Answer 50000 in the v3 body, for an exception no handler rendered (logged by its type).

        Raises:
            Exception: ``exc`` again, when the answer had started: it cannot be replaced.
        """
        failure = self.call_scope.failed(exc)
        if self.started:
            raise exc
        body = json_bytes(error_body(failure))
        headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
        await self.answer({"type": "http.response.start", "status": http_status(failure), "headers": headers})
        await self.answer({"type": "http.response.body", "body": body, "more_body": False})


class CallBoundaryMiddleware:
    """The REST front's call boundary (see the module's docstring), a pure ASGI middleware.

    Args:
        app: The front's Starlette application.
        templates: The route template of each path.
    """

    def __init__(self, app: ASGIApp, templates: RouteTemplates) -> None:
        self._app, self._templates = app, templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside the boundary; other ASGI events (lifespan) pass through."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        call_scope = HttpCallScope(scope["method"], self._templates.of(scope["path"]), headers)
        exchange = _Exchange(call_scope, receive, send)
        scope[SCOPE_KEY] = call_scope
        watch = asyncio.create_task(exchange.watch())
        try:
            with call_scope:
                await self._serve(scope, exchange)
        except asyncio.CancelledError:
            if not exchange.cancelled or exchange.task is None:
                raise
            exchange.task.uncancel()  # the caller is gone: nobody waits for an answer
        finally:
            watch.cancel()

    async def _serve(self, scope: Scope, exchange: _Exchange) -> None:
        try:
            await self._app(scope, exchange.no_body, exchange.answer)
        except Exception as exc:
            await exchange.internal(exc)
