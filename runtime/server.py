"""grpc.aio server bootstrap shared by every process of the mesh.

A `GrpcServer` serves the process's services behind the call boundary, with
grpc.health.v1 (Check, Watch and List), server reflection (v1 and v1alpha),
Prometheus metrics on their own port, optional TLS or mTLS, and the keepalive
pings of `runtime.keepalive` accepted (calls or not, one every 15 s). It refuses to start
on a port another process serves (no SO_REUSEPORT: two servers on one port would
silently share its calls), unless it is one of the workers of one supervisor, which
share their port on purpose (`gateway.workers`).

`run_until_signalled` adds the lifecycle. SIGTERM or SIGINT sets health to
NOT_SERVING at once; for ``SHUTDOWN_NOTICE_SECONDS`` the server still serves, so
that probes and load balancers see it leave while it listens; then new calls are
refused with UNAVAILABLE (retry elsewhere) while in-flight calls finish within
``SHUTDOWN_GRACE_SECONDS``; then the listener closes and the process's clients are
closed. A second signal cuts the notice and the grace short.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from runtime import reflection
from runtime.health import HealthServicer
from runtime.interceptors import CallBoundary
from runtime.keepalive import KEEPALIVE, Keepalive
from runtime.metrics import start_metrics_server
from runtime.settings import ServerSettings
from runtime.tracing import configure_tracing
from runtime.tracing import shutdown as shutdown_tracing

_LOG = structlog.get_logger(__name__)
_HOOK_SECONDS = 10.0
"""The longest one shutdown hook may take: a client that never closes leaves the others to close."""


def waiting_tasks(most: int = 20) -> list[str]:
    """Where the event loop's other tasks wait, at most ``most`` of them.

    Each is its chain of coroutines, outermost first, ``"<name> (<file>:<line>) > …"``. Logged
    with a shutdown step that overran, so that the log names what it waited for: code
    locations only, never a variable's value.
    """
    current = asyncio.current_task()
    chains = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        links = []
        coro: Any = task.get_coro()
        while getattr(coro, "cr_frame", None) is not None:
            frame = coro.cr_frame
            links.append(f"{coro.__qualname__} ({frame.f_code.co_filename}:{frame.f_lineno})")
            coro = coro.cr_await
        chains.append(" > ".join(links) or repr(task.get_coro()))
    return sorted(chains)[:most]


async def _within(hook: Callable[[], Awaitable[None]], seconds: float) -> None:
    """Run a shutdown hook for at most ``seconds``; one overdue is logged by name and left behind."""
    try:
        async with asyncio.timeout(seconds):
            await hook()
    except TimeoutError:
        _LOG.error(
            "shutdown_hook_overdue",
            hook=getattr(hook, "__qualname__", None) or repr(hook),
            seconds=seconds,
            waiting=waiting_tasks(),
        )


# Unix signal 15, sent by Kubernetes and `kill`; and 2, sent by Ctrl-C.
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A call sent before the caller learnt that new calls are held reaches the server
# within a round trip; once none came for this long, closing the connections races no call.
_QUIET_SECONDS = 0.05


class PortInUseError(OSError):
    """The server's address cannot be bound: another process serves it, most likely."""


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    """One gRPC service a process serves: its full name and how to register it."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]


ShutdownHook = Callable[[], Awaitable[None]]


class GrpcServer:
    """A grpc.aio server with health, reflection, metrics and TLS, built from settings."""

    def __init__(
        self,
        settings: ServerSettings,
        services: Sequence[ServiceDefinition],
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        on_shutdown: Sequence[ShutdownHook] = (),
        reuse_port: bool = False,
        keepalive: Keepalive = KEEPALIVE,
    ) -> None:
        """Prepare the server; nothing is bound until `start`.

        Args:
            settings: The process's settings.
            services: What the process serves.
            interceptors: Interceptors placed after the call boundary, in call order.
            on_shutdown: Coroutines that close the process's clients, run after the drain.
            reuse_port: Bind with ``SO_REUSEPORT``: for the workers of one supervisor, which
                share their port on purpose, and never otherwise.
            keepalive: The keepalive whose pings the server accepts; the mesh's own but in tests.
        """
        self._settings = settings
        self._services = tuple(services)
        self._on_shutdown = tuple(on_shutdown)
        # Call order is list order: the call boundary always comes first so that
        # every refusal of a later interceptor is rendered and counted.
        age_ms = int(settings.max_connection_age_seconds * 1000)
        self._boundary = CallBoundary()
        self._server = grpc.aio.server(
            interceptors=[self._boundary, *interceptors],
            options=[
                ("grpc.max_connection_age_ms", age_ms),
                # In-flight calls on an aged connection get the drain grace to finish.
                ("grpc.max_connection_age_grace_ms", int(settings.shutdown_grace_seconds * 1000)),
                # grpcio sets SO_REUSEPORT by default: a second process started on a served
                # port would bind it too and silently take half of its calls.
                ("grpc.so_reuseport", int(reuse_port)),
                # The callers' keepalive pings, which grpc-core's defaults answer with a GOAWAY.
                *keepalive.server_options(),
            ],
        )
        self._health = HealthServicer()
        self._cut_short = asyncio.Event()
        self._metrics_server: Any = None
        self.port = 0
        self.metrics_port: int | None = None

    async def start(self) -> None:
        """Register everything, bind the ports and start serving."""
        for service in self._services:
            service.add_to_server(self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable([*(s.name for s in self._services), health.SERVICE_NAME], self._server)
        address = f"{self._settings.grpc_host}:{self._settings.grpc_port}"
        credentials = _server_credentials(self._settings)
        try:
            if credentials is None:
                self.port = self._server.add_insecure_port(address)
            else:
                self.port = self._server.add_secure_port(address, credentials)
        except RuntimeError:
            raise PortInUseError(
                f"cannot listen on {address}: the port is in use, most likely by another server"
            ) from None
        await self._server.start()
        for name in ("", *(s.name for s in self._services)):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self._settings.metrics_port is not None:
            self._metrics_server, self.metrics_port = start_metrics_server(
                self._settings.grpc_host.strip("[]") or "::", self._settings.metrics_port
            )
        _LOG.info(
            "server_started",
            port=self.port,
            metrics_port=self.metrics_port,
            tls=credentials is not None,
            services=[s.name for s in self._services],
        )

    async def stop(self, grace: float | None = None, notice: float = 0.0) -> None:
        """Drain and stop, then close the process's clients and metrics.

        Args:
            grace: Seconds in-flight calls get to finish; SHUTDOWN_GRACE_SECONDS by default.
            notice: Seconds the server keeps serving after health turned NOT_SERVING,
                before it refuses new calls (UNAVAILABLE) and drains.
        """
        grace = self._settings.shutdown_grace_seconds if grace is None else grace
        await self._health.enter_graceful_shutdown()
        await self._wait(asyncio.sleep(notice), notice)
        self._boundary.stop_taking_calls()
        loop = asyncio.get_running_loop()
        drained_by = loop.time() + grace
        await self._wait(self._boundary.quiet(_QUIET_SECONDS), grace)
        remaining = 0 if self._cut_short.is_set() else max(0.0, drained_by - loop.time())
        stopping = asyncio.ensure_future(self._server.stop(remaining))
        # Once the server has told its connections to go away, the held calls are refused.
        await asyncio.sleep(0)
        self._boundary.release_refused()
        # grpc.aio's stop returns once every handler has ended: one that outlives its
        # cancellation would hold the rest of the shutdown; it is named and left behind.
        done, _ = await asyncio.wait((stopping,), timeout=remaining + _HOOK_SECONDS)
        if not done:
            _LOG.error("grpc_stop_overdue", seconds=remaining + _HOOK_SECONDS, waiting=waiting_tasks())
        for hook in self._on_shutdown:
            await _within(hook, _HOOK_SECONDS)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        _LOG.info("server_stopped")

    async def run_until_signalled(self) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully.

        A second signal during the drain stops the server at once.
        """
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        forced: list[asyncio.Task[None]] = []

        def on_signal(signum: signal.Signals) -> None:
            if stop_requested.is_set():
                _LOG.warning("forced_shutdown", signal=signum.name)
                self._cut_short.set()
                forced.append(loop.create_task(self._server.stop(0)))
                return
            _LOG.info("shutdown_requested", signal=signum.name)
            stop_requested.set()

        for signum in _HANDLED_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
        # Here, where the process starts serving, not in start(): tests run several servers in one process.
        configure_tracing(self._settings)
        try:
            try:
                await self.start()
            except PortInUseError as error:
                _LOG.error("server_not_started", reason="port_in_use", port=self._settings.grpc_port)
                raise SystemExit(str(error)) from None
            # What start-up made (modules, descriptors, routes) lives as long as the process:
            # out of every collection, it no longer makes each full one walk the whole heap.
            gc.collect()
            gc.freeze()
            await stop_requested.wait()
            await self.stop(notice=self._settings.shutdown_notice_seconds)
        finally:
            for signum in _HANDLED_SIGNALS:
                loop.remove_signal_handler(signum)
            shutdown_tracing()

    async def _wait(self, awaitable: Awaitable[None], seconds: float) -> None:
        """Wait for ``awaitable`` at most ``seconds``, less if a second signal cuts the shutdown short."""
        waiting = asyncio.ensure_future(awaitable)
        cut = asyncio.ensure_future(self._cut_short.wait())
        await asyncio.wait((waiting, cut), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiting, cut):
            task.cancel()
        await asyncio.gather(waiting, cut, return_exceptions=True)


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` as the servers of the mesh bind theirs, not listening yet.

    ``SO_REUSEADDR`` always, ``SO_REUSEPORT`` only when asked; an empty host or ``[::]``
    is every interface, IPv4 and IPv6.

    Raises:
        PortInUseError: the address cannot be bound (another process serves it, most likely).
    """
    bare = host.strip("[]") or "::"
    family, kind, protocol, _, address = socket.getaddrinfo(
        bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    bound = socket.socket(family, kind, protocol)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
        if family == socket.AF_INET6 and bare == "::":
            bound.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        bound.bind(address)
    except OSError:
        bound.close()
        raise PortInUseError(
            f"cannot listen on {host}:{port}: the port is in use, most likely by another server"
        ) from None
    return bound


def _server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    client_ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def run_process(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a process's main coroutine on uvloop, one loop for the whole process."""
    uvloop.run(main())
