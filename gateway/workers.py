"""Worker processes: one gateway served by N processes on one port, so a pod uses all its cores.

Python runs one event loop on one core at a time. With ``GATEWAY_WORKERS`` above 1,
``python -m gateway`` is a supervisor that starts that many workers, each a whole
gateway with its own event loop, Redis connections and provider channels: they share
nothing but Redis (and so the rate limits, revocations and usage counts, exact across
workers as across replicas) and the ports. Each worker binds the gRPC port, and the
REST port when there is one, with ``SO_REUSEPORT``, and the kernel spreads the
incoming connections over them.

``SO_REUSEPORT`` is set on purpose here only, under one supervisor: a server that does
not set it (any other process of the mesh, a stray single gateway) cannot bind a port
the workers serve, and the supervisor first checks, binding without it, that nobody
serves its ports, so that a stray second gateway cannot take half the calls of a first
one. It picks the ports left at 0 then. Worker ``i`` serves its metrics on
``METRICS_PORT + i``.

Lifecycle: SIGTERM or SIGINT to the supervisor is passed to every worker, which drains
as a lone gateway does (`runtime.server.GrpcServer.run_until_signalled`); a second
signal is passed on too and cuts their drains short. The supervisor exits when every
worker has, with status 0 if they all stopped cleanly. A worker whose supervisor
disappears drains and exits.

Healing: each worker's event loop beats every `HEARTBEAT_SECONDS` into a number it
shares with the supervisor. A worker that dies (killed, crashed) is started again
while the others serve on, after a wait that doubles from `RESTART_FIRST_SECONDS`
up to `RESTART_MAX_SECONDS` for a worker that keeps dying young (under
`RESTART_RESET_SECONDS` of life); a worker whose loop has not beaten for
``WORKER_HEARTBEAT_TIMEOUT_SECONDS`` (frozen, or its loop stuck) is killed with
SIGKILL and started again the same way, its calls in flight lost: they could not
have been answered. A worker that dies before its first beat (its gateway could not
be built: a configuration mistake) is not healed: the others are stopped and the
supervisor exits with status 1, for the orchestrator to report. Each worker
publishes how many times its place was restarted (``gateway_worker_restarts``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from types import FrameType

import structlog
from prometheus_client import Gauge

from gateway.app import serve
from gateway.settings import GatewaySettings
from runtime.server import bind_socket

_LOG = structlog.get_logger("gateway")
# How often a worker checks that its supervisor is still there.
_SUPERVISOR_CHECK_SECONDS = 0.5
HEARTBEAT_SECONDS = 0.5
"""How often a worker's event loop beats."""
RESTART_FIRST_SECONDS = 0.5
"""The wait before a dead worker is started again, the first time."""
RESTART_MAX_SECONDS = 30.0
"""The longest wait before a worker that keeps dying is started again."""
RESTART_RESET_SECONDS = 60.0
"""A worker that lived this long died of something new: its next restart waits the first wait again."""
_STARTUP_SECONDS = 60.0
# How long a new worker may take to build its gateway before its first beat is overdue.

RESTARTS = Gauge(
    "gateway_worker_restarts",
    "Times the supervisor started this worker's place again after its worker died or hung "
    "(0 for the first worker of the place).",
)


@dataclass
class _Place:
    """One worker's place: the process serving it now, its heartbeat, its restarts."""

    index: int
    heartbeat: Synchronized[float]
    process: BaseProcess | None = None
    started_at: float = 0.0
    restarts: int = 0
    wait: float = RESTART_FIRST_SECONDS
    restart_at: float | None = None


def reserve_port(host: str, port: int) -> int:
    """Check that nobody serves ``host:port``, binding it as a lone server would; return the port.

    A port of 0 gives a free one, which the workers then share.

    Raises:
        PortInUseError: another process serves the port.
    """
    with bind_socket(host, port, reuse_port=False) as probe:
        return int(probe.getsockname()[1])


def worker_settings(
    settings: GatewaySettings, index: int, grpc_port: int, rest_port: int | None
) -> GatewaySettings:
    """The settings of worker ``index``: the ports the supervisor reserved, its own metrics port."""
    metrics_port = None if settings.metrics_port is None else settings.metrics_port + index
    return settings.model_copy(
        update={"grpc_port": grpc_port, "rest_port": rest_port, "metrics_port": metrics_port}
    )


def supervise(settings: GatewaySettings) -> int:
    """Run ``settings.gateway_workers`` workers until a signal, healing them meanwhile; the exit status.

    Raises:
        runtime.server.PortInUseError: a port of the gateway is served by another process.
    """
    grpc_port = reserve_port(settings.grpc_host, settings.grpc_port)
    rest_port = None
    if settings.rest_port is not None:
        rest_port = reserve_port(settings.rest_host, settings.rest_port)
    supervisor = _Supervisor(settings, (grpc_port, rest_port))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, supervisor.stop_workers)
    return supervisor.run()


class _Supervisor:
    """The workers' places, started, watched and healed until a signal."""

    def __init__(self, settings: GatewaySettings, ports: tuple[int, int | None]) -> None:
        self._context = multiprocessing.get_context("spawn")  # nothing of this process's state is inherited
        self._ports = ports
        self._heartbeat_timeout = settings.worker_heartbeat_timeout_seconds
        # No lock: one writer per number, and a worker killed while holding a lock would freeze us.
        self._places = [
            _Place(index, self._context.RawValue("d", 0.0)) for index in range(settings.gateway_workers)
        ]
        self._stopping = False
        self._status = 0

    def run(self) -> int:
        """Start every worker; heal them until a signal, then wait for their drains; the exit status."""
        for place in self._places:
            self._start(place)
        _LOG.info("workers_started", workers=len(self._places), port=self._ports[0], rest_port=self._ports[1])
        while any(place.process is not None for place in self._places):
            running = [place for place in self._places if place.process is not None]
            sentinels = [place.process.sentinel for place in running if place.process is not None]
            ended = multiprocessing.connection.wait(sentinels, timeout=HEARTBEAT_SECONDS)
            now = time.monotonic()
            for place in running:
                if place.process is not None and place.process.sentinel in ended:
                    self._ended(place, place.process, now)
            if not self._stopping:
                self._heal(now)
        _LOG.info("workers_stopped", exit_status=self._status)
        return self._status

    def stop_workers(self, signum: int, _frame: FrameType | None = None) -> None:
        """Pass ``signum`` on to every running worker; heal no more."""
        self._stopping = True
        for place in self._places:
            process = place.process
            if process is not None and process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signum)

    def _start(self, place: _Place) -> None:
        place.heartbeat.value = 0.0
        place.process = self._context.Process(
            target=serve_worker,
            args=(place.index, self._ports, os.getpid(), place.heartbeat, place.restarts),
            name=f"gateway-worker-{place.index}",
        )
        place.process.start()
        place.started_at, place.restart_at = time.monotonic(), None
        if self._stopping and place.process.pid is not None:  # a signal came while it started
            os.kill(place.process.pid, signal.SIGTERM)

    def _ended(self, place: _Place, process: BaseProcess, now: float) -> None:
        process.join()
        place.process = None
        if self._stopping:
            self._status = self._status or int(process.exitcode != 0)
        elif place.heartbeat.value == 0.0:
            _LOG.error("worker_failed_to_start", worker=process.name, exit_status=process.exitcode)
            self._status = 1
            self.stop_workers(signal.SIGTERM)
        else:
            _schedule_restart(place, process, now)

    def _heal(self, now: float) -> None:
        for place in self._places:
            process = place.process
            if process is None and place.restart_at is not None and now >= place.restart_at:
                place.restarts += 1
                self._start(place)
            elif process is not None and _hung(place, now, self._heartbeat_timeout):
                _LOG.error(
                    "worker_hung",
                    worker=process.name,
                    silent_seconds=round(now - (place.heartbeat.value or place.started_at), 1),
                )
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGKILL)  # a frozen loop drains nothing


def _schedule_restart(place: _Place, process: BaseProcess, now: float) -> None:
    """Set when the dead worker of ``place`` starts again: later each time it dies young."""
    if now - place.started_at >= RESTART_RESET_SECONDS:
        place.wait = RESTART_FIRST_SECONDS
    place.restart_at = now + place.wait
    _LOG.error(
        "worker_exited",
        worker=process.name,
        exit_status=process.exitcode,
        restart_in_seconds=place.wait,
    )
    place.wait = min(place.wait * 2, RESTART_MAX_SECONDS)


def _hung(place: _Place, now: float, timeout: float) -> bool:
    """Whether the worker of ``place`` has not beaten for ``timeout`` (its start allowed for)."""
    last = place.heartbeat.value
    if last == 0.0:
        return now - place.started_at > _STARTUP_SECONDS
    return now - last > timeout


def serve_worker(
    index: int,
    ports: tuple[int, int | None],
    supervisor: int,
    heartbeat: Synchronized[float],
    restarts: int,
) -> None:
    """One worker: a whole gateway on the shared ports, until a signal or its supervisor's end."""
    # Its own session: a terminal's Ctrl-C reaches the supervisor alone, which passes it on once.
    os.setsid()
    threading.Thread(target=_follow, args=(supervisor,), name="supervisor-watch", daemon=True).start()
    RESTARTS.set(restarts)

    async def beat() -> None:
        # From the event loop itself: a loop that stops running stops beating.
        while True:
            heartbeat.value = time.monotonic()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    settings = worker_settings(GatewaySettings(), index, *ports)
    serve(settings, reuse_port=True, beside=beat)


def _follow(supervisor: int) -> None:
    """Drain, as on SIGTERM, once the supervisor is gone (this process then has another parent)."""
    while os.getppid() == supervisor:
        time.sleep(_SUPERVISOR_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
