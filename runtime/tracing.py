"""OpenTelemetry tracing of the mesh: one trace per call, from the gateway to the upstream provider.

Spans are made by hand at three places, rather than by auto-instrumentation, so
that each carries only what an operator needs and never personal data:

- the call boundary of every server opens a SERVER span per unary call, child
  of the caller's W3C ``traceparent`` when the call metadata carries one;
- the gateway opens a CLIENT span around each call it forwards to a provider,
  and sends its context on in the call metadata (`traced_grpc_call`);
- the upstream HTTP client opens a CLIENT span per HTTP exchange with the
  provider, and sends its context in the ``traceparent`` header (`http_client_span`).

Attributes are bounded values: method names, gRPC status codes, API Particulier
codes, the provider's name, the HTTP method and status, the request id. URLs are
not recorded (upstream query strings hold identities), and neither are exception
texts.

Tracing is off unless ``OTEL_TRACES_EXPORTER`` says otherwise. Off, no tracer is
installed and every instrumented place tests `active_tracer` against None and
goes on: no span, context or carrier object is made on the call path.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import TypeVar

import grpc
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from runtime import errors
from runtime.settings import ServerSettings, TracesExporter

_LOG = structlog.get_logger(__name__)
_INSTRUMENTATION = "apiparticulier.mesh"

# W3C trace context only: baggage would let a caller push arbitrary values into every hop.
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_KEYS = frozenset(_PROPAGATOR.fields)

# OpenTelemetry's semantic conventions for RPC and HTTP spans, plus the mesh's own.
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
HTTP_METHOD = "http.request.method"
HTTP_STATUS_CODE = "http.response.status_code"
HTTP_ROUTE = "http.route"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
PEER_SERVICE = "peer.service"
REQUEST_ID = "apiparticulier.request_id"
API_CODE = "apiparticulier.code"
PROVIDER = "apiparticulier.provider"
ERROR_KIND = "apiparticulier.error_kind"

# The statuses that mean the server failed, not the caller (OpenTelemetry's gRPC conventions).
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_STATUS_BY_NAME = {status.name: status for status in grpc.StatusCode}

T = TypeVar("T")


class _State:
    """The process's tracing state: a tracer while tracing is on, else None."""

    __slots__ = ("owned", "provider", "tracer")

    def __init__(self) -> None:
        self.tracer: Tracer | None = None
        self.provider: TracerProvider | None = None
        self.owned = False


_STATE = _State()


def active_tracer() -> Tracer | None:
    """The tracer to make spans with, or None when tracing is off (the hot-path test)."""
    return _STATE.tracer


def install(provider: TracerProvider, *, owned: bool = False) -> None:
    """Trace with ``provider`` from now on, in this process.

    The mesh keeps its own reference rather than OpenTelemetry's global provider,
    which can be set only once per process: tests and embedders swap it.

    Args:
        provider: Where spans go.
        owned: `shutdown` flushes and shuts the provider down (true when the mesh built it).
    """
    _STATE.provider = provider
    _STATE.tracer = provider.get_tracer(_INSTRUMENTATION)
    _STATE.owned = owned


def uninstall() -> None:
    """Stop tracing (the provider, if not owned, is left to its creator)."""
    _STATE.tracer = None
    _STATE.provider = None
    _STATE.owned = False


def configure_tracing(settings: ServerSettings) -> None:
    """Turn tracing on as the settings say; nothing happens with ``OTEL_TRACES_EXPORTER=none``.

    Called once per process before it serves. A tracer already installed (by a
    test, say) is kept.

    Args:
        settings: The process's settings (``OTEL_*`` fields).
    """
    if settings.otel_traces_exporter is TracesExporter.NONE or _STATE.tracer is not None:
        return
    service_name = settings.otel_service_name or default_service_name(settings)
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_arg)),
    )
    # Batching exports off the call path, from a background thread.
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    install(provider, owned=True)
    _LOG.info(
        "tracing_enabled",
        exporter=settings.otel_traces_exporter.value,
        service_name=service_name,
        sample_ratio=settings.otel_traces_sampler_arg,
    )


def shutdown() -> None:
    """Flush the spans not yet exported and stop tracing, at the end of the process."""
    provider, owned = _STATE.provider, _STATE.owned
    uninstall()
    if provider is not None and owned:
        provider.shutdown()


def default_service_name(settings: ServerSettings) -> str:
    """The process's name from its settings class.

    ``CnafSettings`` gives ``cnaf``, ``FranceTravailSettings`` ``france_travail``,
    ``GatewaySettings`` ``gateway``; the shared base classes give ``apiparticulier``.
    """
    name = type(settings).__name__.removesuffix("Settings")
    if name in ("", "Server", "Provider"):
        return "apiparticulier"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _exporter(settings: ServerSettings) -> SpanExporter:
    if settings.otel_traces_exporter is TracesExporter.CONSOLE:
        return ConsoleSpanExporter()
    # Imported here: the OTLP exporter loads its own gRPC stubs, needless when it is not used.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint)


# -- server side ---------------------------------------------------------------------------------


def start_server_span(
    tracer: Tracer,
    method: str,
    metadata: Sequence[tuple[str, str | bytes]] | None,
    request_id: str,
) -> tuple[Span, object]:
    """Open the SERVER span of one call and make it current.

    Args:
        tracer: The active tracer.
        method: The full gRPC method, ``/package.Service/Method``.
        metadata: The call's invocation metadata, where a ``traceparent`` may be.
        request_id: The call's request id.

    Returns:
        The span and the token `end_server_span` needs to restore the previous context.
    """
    carrier = {key: value for key, value in metadata or () if key in _TRACE_KEYS and isinstance(value, str)}
    parent = _PROPAGATOR.extract(carrier) if carrier else None
    service, _, rpc_method = method.lstrip("/").partition("/")
    span = tracer.start_span(
        method.lstrip("/"),
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            RPC_SYSTEM: "grpc",
            RPC_SERVICE: service,
            RPC_METHOD: rpc_method,
            REQUEST_ID: request_id,
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return span, token


def end_server_span(span: Span, token: object, status_name: str, api_code: str) -> None:
    """Record the call's outcome on its SERVER span, end it and restore the previous context.

    Args:
        span: From `start_server_span`.
        token: From `start_server_span`.
        status_name: The gRPC status name of the answer (``OK``, ``NOT_FOUND``…).
        api_code: The API Particulier code of a refusal; empty on success.
    """
    _record_grpc_status(span, _STATUS_BY_NAME.get(status_name), api_code)
    span.end()
    otel_context.detach(token)  # type: ignore[arg-type]  # the token attach gave


def _record_grpc_status(span: Span, status: grpc.StatusCode | None, api_code: str) -> None:
    if status is not None:
        span.set_attribute(RPC_GRPC_STATUS_CODE, status.value[0])
    if api_code:
        span.set_attribute(API_CODE, api_code)
    if status is None or status in _SERVER_FAULTS:
        span.set_status(Status(StatusCode.ERROR, status.name if status is not None else None))


def start_http_server_span(
    tracer: Tracer,
    method: str,
    route: str,
    metadata: Sequence[tuple[str, str | bytes]] | None,
    request_id: str,
) -> tuple[Span, object]:
    """Open the SERVER span of one HTTP request (the gateway's REST front) and make it current.

    Named and described by the HTTP semantic conventions: ``{method} {route}``, with
    ``http.request.method`` and ``http.route`` (the template: no query string, no personal data).

    Returns:
        The span and the token `end_http_server_span` needs to restore the previous context.
    """
    carrier = {key: value for key, value in metadata or () if key in _TRACE_KEYS and isinstance(value, str)}
    parent = _PROPAGATOR.extract(carrier) if carrier else None
    span = tracer.start_span(
        f"{method} {route}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={HTTP_METHOD: method, HTTP_ROUTE: route, REQUEST_ID: request_id},
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return span, token


def end_http_server_span(span: Span, token: object, status_code: int, api_code: str) -> None:
    """Record an HTTP status on the SERVER span (500 and up an error), end it, restore the context."""
    span.set_attribute(HTTP_STATUS_CODE, status_code)
    if api_code:
        span.set_attribute(API_CODE, api_code)
    if status_code >= 500:
        span.set_status(Status(StatusCode.ERROR, str(status_code)))
    span.end()
    otel_context.detach(token)  # type: ignore[arg-type]  # the token attach gave


# -- gRPC client side (the gateway) ----------------------------------------------------------------


async def traced_grpc_call(
    tracer: Tracer,
    method: str,
    provider: str,
    metadata: tuple[tuple[str, str], ...],
    send: Callable[[tuple[tuple[str, str], ...]], Awaitable[T]],
) -> T:
    """Make one outgoing gRPC call under a CLIENT span, its context in the metadata.

    Args:
        tracer: The active tracer.
        method: The full gRPC method called.
        provider: The provider service called (``cnaf``…), as ``peer.service``.
        metadata: The metadata the call carries; ``traceparent`` is added to it.
        send: Makes the call with the metadata it is given.

    Returns:
        What ``send`` returns.

    Raises:
        grpc.aio.AioRpcError: the call failed (recorded on the span first).
    """
    service, _, rpc_method = method.lstrip("/").partition("/")
    with tracer.start_as_current_span(
        method.lstrip("/"),
        kind=SpanKind.CLIENT,
        attributes={RPC_SYSTEM: "grpc", RPC_SERVICE: service, RPC_METHOD: rpc_method, PEER_SERVICE: provider},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        try:
            answer = await send((*metadata, *carrier.items()))
        except grpc.aio.AioRpcError as error:
            code = _error_code(error)
            _record_grpc_status(span, error.code(), code)
            raise
        except BaseException:
            span.set_status(Status(StatusCode.ERROR))
            raise
        span.set_attribute(RPC_GRPC_STATUS_CODE, grpc.StatusCode.OK.value[0])
        return answer


def _error_code(error: grpc.aio.AioRpcError) -> str:
    """The API Particulier code of a provider's refusal, if it carries one."""
    details = errors.details_of(error.trailing_metadata())
    info = errors.error_info_of(details) if details is not None else None
    return str(info.metadata.get("code", "")) if info is not None else ""


# -- HTTP client side (the upstream adapters) --------------------------------------------------------


@contextlib.contextmanager
def http_client_span(
    tracer: Tracer,
    method: str,
    *,
    host: str,
    port: int | None,
    provider: str,
    headers: MutableMapping[str, str],
) -> Iterator[Span]:
    """A CLIENT span around one HTTP exchange, its context added to ``headers`` as ``traceparent``.

    The URL is not recorded: upstream query strings carry identities.

    Args:
        tracer: The active tracer.
        method: The HTTP method.
        host: The provider's host.
        port: The provider's port, if known.
        provider: The provider's name in the error model.
        headers: The request's headers, completed with the trace context.

    Yields:
        The span, for the caller to record the HTTP status on (`record_http_status`).
    """
    attributes: dict[str, str | int] = {HTTP_METHOD: method, SERVER_ADDRESS: host, PROVIDER: provider}
    if port is not None:
        attributes[SERVER_PORT] = port
    with tracer.start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        _PROPAGATOR.inject(headers)
        try:
            yield span
        except BaseException:
            span.set_status(Status(StatusCode.ERROR))
            raise


def record_http_status(span: Span, status: int) -> None:
    """Record the HTTP status of the answer; 5xx marks the span as failed."""
    span.set_attribute(HTTP_STATUS_CODE, status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def record_error_kind(kind: str) -> None:
    """Name, on the current span, the kind of upstream failure (``timeout``, ``dns``…)."""
    if _STATE.tracer is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(ERROR_KIND, kind)
        span.set_status(Status(StatusCode.ERROR, kind))
