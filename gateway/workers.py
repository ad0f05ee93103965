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
worker has, with status 0 if they all stopped cleanly. A worker that exits by itself
brings the others down and the supervisor exits with status 1: the orchestrator
restarts the whole gateway. A worker whose supervisor disappears drains and exits.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from types import FrameType

import structlog

from gateway.app import serve
from gateway.settings import GatewaySettings
from runtime.server import bind_socket

_LOG = structlog.get_logger("gateway")
# How often a worker checks that its supervisor is still there.
_SUPERVISOR_CHECK_SECONDS = 0.5


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
    """Run ``settings.gateway_workers`` workers until a signal or a worker's exit; the exit status.

    Raises:
        runtime.server.PortInUseError: a port of the gateway is served by another process.
    """
    grpc_port = reserve_port(settings.grpc_host, settings.grpc_port)
    rest_port = None
    if settings.rest_port is not None:
        rest_port = reserve_port(settings.rest_host, settings.rest_port)
    context = multiprocessing.get_context("spawn")  # nothing of this process's state is inherited
    workers = [
        context.Process(
            target=serve_worker,
            args=(index, grpc_port, rest_port, os.getpid()),
            name=f"gateway-worker-{index}",
        )
        for index in range(settings.gateway_workers)
    ]
    stopping = False
    told: set[int] = set()  # the workers a first signal reached

    def stop_workers(signum: int, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signum)
                told.add(worker.pid)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_workers)
    for worker in workers:
        worker.start()
    if stopping:  # a signal came while they started: the workers started after it get it too
        for pid in (worker.pid for worker in workers):
            if pid is not None and pid not in told:
                os.kill(pid, signal.SIGTERM)
    _LOG.info("workers_started", workers=len(workers), port=grpc_port, rest_port=rest_port)
    status = 0
    running = list(workers)
    while running:
        ended = multiprocessing.connection.wait([worker.sentinel for worker in running])
        for worker in [worker for worker in running if worker.sentinel in ended]:
            worker.join()
            running.remove(worker)
            if worker.exitcode != 0 or not stopping:
                status = 1
            if not stopping:
                _LOG.error("worker_exited", worker=worker.name, exit_status=worker.exitcode)
                stop_workers(signal.SIGTERM)
    _LOG.info("workers_stopped", exit_status=status)
    return status


def serve_worker(index: int, grpc_port: int, rest_port: int | None, supervisor: int) -> None:
    """One worker: a whole gateway on the shared ports, until a signal or its supervisor's end."""
    # Its own session: a terminal's Ctrl-C reaches the supervisor alone, which passes it on once.
    os.setsid()
    threading.Thread(target=_follow, args=(supervisor,), name="supervisor-watch", daemon=True).start()
    serve(worker_settings(GatewaySettings(), index, grpc_port, rest_port), reuse_port=True)


def _follow(supervisor: int) -> None:
    """Drain, as on SIGTERM, once the supervisor is gone (this process then has another parent)."""
    while os.getppid() == supervisor:
        time.sleep(_SUPERVISOR_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
