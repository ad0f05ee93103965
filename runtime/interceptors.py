"""The call boundary: the first interceptor of every server of the mesh.

For each unary call it, in this order:

1. takes the caller's ``x-request-id`` (or makes one) and opens the call context;
2. gives the log events of the call its request id and method (`runtime.logs`);
3. when tracing is on, opens the call's SERVER span, child of the caller's
   ``traceparent`` if it sent one (see `runtime.tracing`);
4. runs the rest of the chain and the handler;
5. renders an `ApiError` as its rich gRPC status, with the request id in its
   ``ErrorInfo`` metadata, and any other exception as a bare INTERNAL status
   (logged by type only: exception texts may hold personal data);
6. sends the response metadata the layers added, counts the call and its
   latency, and ends the span with the call's status and API Particulier code.

Streaming methods (health Watch, reflection) pass through untouched.

Once `CallBoundary.stop_taking_calls` is called (the server is shutting down), a
new call does not reach its handler: it waits until `CallBoundary.release_refused`,
then is refused with UNAVAILABLE 00504, so that the caller retries it elsewhere,
while calls already running finish; health checks are still answered
(NOT_SERVING). The server releases the refused calls once its listener has closed
and its connections announce it (HTTP/2 GOAWAY): a caller told UNAVAILABLE then
sends its next call on a new connection, never into the closing one, where the
call would be CANCELLED. With `CallBoundary.refused_in_handlers` (the gateway), a
held call is refused by its handler instead, once released: it runs marked
``stopping`` (`runtime.context.CallContext`), so that the handler refuses it in its
own frame and the refusal is journalled as every other answered call; a handler
that does not refuse it (one with nothing to journal) sees its answer replaced by
the same 00504.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from runtime import metrics, tracing
from runtime.context import REQUEST_ID_KEY, REQUEST_ID_REFUSED_KEY, new_request_id, open_call
from runtime.errors import DETAILS_KEY, ApiError, internal_error, malformed_request, server_stopping

_LOG = structlog.get_logger(__name__)
# The real API reads X-Request-Id as Rails does: every character but these dropped, 255 kept.
_REQUEST_ID_DROPPED = re.compile(r"[^A-Za-z0-9_@-]")
_REQUEST_ID_LENGTH = 255
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_HEALTH_METHODS = "/grpc.health.v1.Health/"
REQUEST_ID_DETAIL = "request_id"
"""Key of the request id in the ``ErrorInfo`` metadata of every error the mesh returns."""

_Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def request_id_from(metadata: Sequence[tuple[str, str | bytes]] | None) -> tuple[str, bool]:
    """The call's request id, and whether the caller's was refused.

    The caller's ``x-request-id`` is read as the real API reads it: every character but
    letters, digits, ``_``, ``-`` and ``@`` dropped, the first 255 kept; none left is no id.
    It is the call's id only when it is then a UUID (any version, any case), since the id is
    echoed, logged, journalled and sent upstream: a free text could carry a person's name and
    birth date into all of them. Any other is refused: the call gets a new UUID, the CNAV
    routes answer 00401 (VALIDATION.md §4) and the others serve it under the new id. A provider
    also takes the gateway's word for it (`REQUEST_ID_REFUSED_KEY`).
    """
    refused, taken = False, ""
    for key, value in metadata or ():
        if key == REQUEST_ID_REFUSED_KEY:
            refused = True
        elif key == REQUEST_ID_KEY and isinstance(value, str) and not taken:
            kept = _REQUEST_ID_DROPPED.sub("", value)[:_REQUEST_ID_LENGTH]
            if _UUID.fullmatch(kept):
                taken = kept
            else:
                refused = refused or bool(kept)
    return taken or new_request_id(), refused


class Outcome:
    """A call's outcome, the one classification every record of the call uses.

    The call boundary's metrics, logs and span, and the gateway's journal and usage, all say it
    alike: ``OK``; an `ApiError`'s status name and code; ``CANCELLED`` for a call its caller
    gave up (or whose deadline passed); ``INTERNAL`` and its code for any other exception.
    """

    __slots__ = ("code", "status")

    def __init__(self) -> None:
        self.status, self.code = "OK", ""

    def classify(self, error: BaseException | None) -> None:
        """Record the outcome of a call that ended with ``error`` (None: it succeeded)."""
        if isinstance(error, ApiError):
            self.status, self.code = error.status.name, error.code
        elif isinstance(error, asyncio.CancelledError):
            self.status, self.code = grpc.StatusCode.CANCELLED.name, ""
        elif error is not None:
            self.status, self.code = grpc.StatusCode.INTERNAL.name, internal_error().code


class CallScope:
    """What the boundary does around one call, whatever its transport (gRPC here, HTTP in the gateway).

    Opening it takes the caller's request id (or makes one) and opens the call context,
    whose request id and method every log event of the call carries, and, when tracing
    is on, opens the SERVER span; `refused` and
    `failed` record and log the outcome; leaving it counts the call and its latency and
    ends the span. An exception that leaves the scope unrendered (a cancellation) is
    classified as the journal classifies it (`Outcome`).

    Args:
        method: The method's name in logs, metrics and spans (the gRPC path).
        metadata: The caller's metadata (``x-request-id``, ``traceparent``).
    """

    def __init__(self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None) -> None:
        request_id, refused = request_id_from(metadata)
        self.call = open_call(request_id, method, metadata or (), request_id_refused=refused)
        self.outcome = Outcome()
        self._method = method
        # Tracing off costs this one test: no span, context or carrier is made.
        tracer = tracing.active_tracer()
        self._span: Any = None
        self._otel_token: object = None
        if tracer is not None:
            self._span, self._otel_token = self._start_span(tracer, metadata)
        self._started = time.perf_counter()
        metrics.IN_FLIGHT.inc()

    def __enter__(self) -> CallScope:
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if error is not None and self.outcome.status == "OK":
            self.outcome.classify(error)
            if isinstance(error, asyncio.CancelledError):
                _LOG.info("call_cancelled")
        metrics.IN_FLIGHT.dec()
        self._count(time.perf_counter() - self._started)
        if self._span is not None:
            self._end_span()

    def _start_span(
        self, tracer: Any, metadata: Sequence[tuple[str, str | bytes]] | None
    ) -> tuple[Any, object]:
        """The call's SERVER span and the token that restores the context before it (gRPC's here)."""
        return tracing.start_server_span(tracer, self._method, metadata, self.call.request_id)

    def _count(self, seconds: float) -> None:
        """Count the call and its latency (in the gRPC server's series here)."""
        metrics.latency_of(self._method).observe(seconds)
        metrics.calls_of(self._method, self.outcome.status, self.outcome.code).inc()

    def _end_span(self) -> None:
        """Record the outcome on the span and end it."""
        tracing.end_server_span(self._span, self._otel_token, self.outcome.status, self.outcome.code)

    def refused(self, error: ApiError) -> ApiError:
        """Record and log a refusal; returns it."""
        self.outcome.classify(error)
        _LOG.info("call_refused", code=error.code, status=self.outcome.status)
        return error

    def failed(self, exc: BaseException) -> ApiError:
        """Record and log an unexpected failure (by type only); returns the INTERNAL error to send."""
        self.outcome.classify(exc)
        _LOG.error("call_failed", error_type=type(exc).__name__)
        return internal_error()


class CallBoundary(grpc.aio.ServerInterceptor):
    """Request context, error rendering, logging, metrics and tracing around every unary call."""

    def __init__(self) -> None:
        self.stopping = False
        self.refused_in_handlers = False
        """Whether a held call is refused by its handler (marked ``stopping``) rather than here."""
        self._in_flight = 0
        self._idle: asyncio.Event | None = None
        self._released = asyncio.Event()
        self._last_call_at = 0.0
        # The wrapper of each method's handler, made at its first call, with the handler it wraps.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    def stop_taking_calls(self) -> None:
        """Hold every new call but health checks from now on, to refuse it at `release_refused`."""
        self.stopping = True

    def release_refused(self) -> None:
        """Refuse the held calls, and every new one from now on, with UNAVAILABLE 00504."""
        self._released.set()

    async def quiet(self, seconds: float) -> None:
        """Return once no call is running and none has come for ``seconds``.

        Held calls do not count: their callers wait for the answer and send
        nothing more, so calls stop coming.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._in_flight:
                self._idle = asyncio.Event()
                await self._idle.wait()
            wait = self._last_call_at + seconds - loop.time()
            if wait <= 0 and not self._in_flight:
                return
            await asyncio.sleep(max(wait, 0))

    async def _refuse(
        self,
        scope: CallScope,
        behavior: _Behavior,
        request: Any,
        deserializer: Callable[[bytes], Any] | None,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Any:
        """Hold a call until `release_refused`, then refuse it with 00504, by its handler if it may."""
        self._call_ended()  # a held call is not one the drain waits for
        try:
            await self._released.wait()
        finally:
            self._call_started()
        if self.refused_in_handlers:
            scope.call.stopping = True
            await behavior(_decoded(request, deserializer), context)  # refuses it, journalled
        raise server_stopping()  # here, or for a handler with nothing to journal

    def _call_started(self) -> None:
        self._in_flight += 1
        self._last_call_at = asyncio.get_running_loop().time()

    def _call_ended(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the unary handler of the called method (once per method: the wrapper is kept)."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        kept = self._wrapped.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
            self._bounded(
                handler.unary_unary,  # type: ignore[arg-type]  # aio handlers are coroutines
                method,
                handler.request_deserializer,
            ),
            # Decoded inside the boundary: grpcio would answer a malformed body UNKNOWN, with
            # Python's message; the boundary answers it INVALID_ARGUMENT 00400, as any refusal.
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _bounded(
        self, behavior: _Behavior, method: str, deserializer: Callable[[bytes], Any] | None
    ) -> _Behavior:
        # Health checks are answered until the end and are no calls the drain waits for.
        counted = not method.startswith(_HEALTH_METHODS)

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # The stubs type the metadata as the sync API's; grpc.aio gives (key, value) pairs.
            metadata: Any = context.invocation_metadata()
            with CallScope(method, metadata) as scope:
                if counted:
                    self._call_started()
                try:
                    if self.stopping and counted:
                        response = await self._refuse(scope, behavior, request, deserializer, context)
                    else:
                        response = await behavior(_decoded(request, deserializer), context)
                except ApiError as error:
                    await _abort(context, scope, scope.refused(error))
                except grpc.aio.AbortError:
                    # The handler ended the call itself; its status is already on its way.
                    scope.outcome.status = "HANDLER_ABORT"
                    raise
                except Exception as exc:
                    await _abort(context, scope, scope.failed(exc))
                finally:
                    if counted:
                        self._call_ended()
                context.set_trailing_metadata(tuple(scope.call.response_metadata))
                return response

        return call


def _decoded(request: bytes, deserializer: Callable[[bytes], Any] | None) -> Any:
    """The request as its method takes it.

    Raises:
        ApiError: 00400, the bytes are not a message of the method.
    """
    if deserializer is None:
        return request
    try:
        return deserializer(request)
    except DecodeError:
        raise malformed_request() from None


async def _abort(context: grpc.aio.ServicerContext[Any, Any], scope: CallScope, error: ApiError) -> None:
    """End the call with ``error`` as its rich status, after the metadata the layers added."""
    await context.abort(
        error.status,
        str(error),
        (*scope.call.response_metadata, *error_trailers(error, scope.call.request_id)),
    )


def error_trailers(error: ApiError, request_id: str) -> tuple[tuple[str, str | bytes], ...]:
    """The error's trailers, with the request id added to its ``ErrorInfo`` metadata.

    A support request quoting the error then names the call in every log line
    and trace of the mesh. An error passed through from a provider already
    holds the same id (the gateway forwards it); one holding another id keeps it.

    Args:
        error: The error to render.
        request_id: The call's request id.

    Returns:
        Trailing metadata for ``context.abort``.
    """
    trailers = error.trailing_metadata()
    stamped: list[tuple[str, str | bytes]] = []
    for key, value in trailers:
        if key == DETAILS_KEY and isinstance(value, bytes):
            value = with_request_id(value, request_id)  # noqa: PLW2901 - the one rewritten trailer
        stamped.append((key, value))
    return tuple(stamped)


def with_request_id(details: bytes, request_id: str) -> bytes:
    """A serialized ``google.rpc.Status`` with the request id in its ``ErrorInfo`` (unless one is there)."""
    try:
        status = status_pb2.Status.FromString(details)
    except DecodeError:
        return details
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if REQUEST_ID_DETAIL in info.metadata:
                return details
            info.metadata[REQUEST_ID_DETAIL] = request_id
            detail.Pack(info)
            rewritten: bytes = status.SerializeToString()
            return rewritten
    return details
