"""The benchmark's load generator: client processes, each an asyncio loop of unary calls.

The calls are gRPC, or HTTP/1.1 GETs for the REST front (`LoadSpec.http_path`, `bench.http1`).

`run_load` starts ``processes`` client processes (multiprocessing, spawn: no
state inherited from the parent's event loop or gRPC core). Each opens
``connections`` channels per target, each its own connection, keeps
``concurrency`` calls in flight for ``warmup + duration`` seconds, and sends back
its counts by status and a latency histogram of the calls that completed inside
the measured window. The processes start
calling together, after a barrier, so the window is the same for all of them.

Requests and responses stay bytes (identity serializers): the client spends no
time on protobuf, so what is measured is the server side.

Everything is bounded: targets must be loopback addresses, durations,
concurrency and processes have ceilings, each call has a deadline, and the
parent gives up on (and terminates) a client process that overruns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier

import grpc
import uvloop

from bench.histogram import LatencyHistogram
from bench.http1 import Connection, get_request, http_status_name

MAX_PROCESSES = 16
MAX_CONCURRENCY = 1024
MAX_SECONDS = 120.0
_READY_TIMEOUT_SECONDS = 30.0
# Slack past the end of the run for in-flight calls, result pickling and process exit.
_COLLECT_SLACK_SECONDS = 15.0
OK = grpc.StatusCode.OK.name


def check_loopback(target: str) -> None:
    """Refuse any target that is not ``host:port`` with a loopback host.

    The generator is a tool for this machine's own processes: pointed at anything
    else it would be a way to flood somebody's server.

    Raises:
        ValueError: when ``target`` is not a loopback ``host:port``.
    """
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"target must be host:port, got {target!r}")
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"target {target!r} is not a loopback address") from None
    if not address.is_loopback:
        raise ValueError(f"target {target!r} is not a loopback address")


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to call, how hard and for how long."""

    targets: tuple[str, ...]
    """Loopback ``host:port`` addresses; each client process calls all of them in turn."""
    method: str
    """Full gRPC path, ``/package.Service/Method``."""
    request: bytes
    """The serialized request, the same for every call."""
    metadata: tuple[tuple[str, str], ...] = ()
    """Metadata sent with every call."""
    processes: int = 2
    """Client processes."""
    concurrency: int = 16
    """Calls kept in flight by each process."""
    connections: int = 1
    """gRPC connections each process opens to each target, its calls spread over them: several
    let the kernel spread them over the workers of one port (SO_REUSEPORT hashes connections)."""
    duration: float = 5.0
    """Seconds measured."""
    warmup: float = 1.0
    """Seconds of calls before the measured window (counted by status, not timed)."""
    call_timeout: float = 5.0
    """Deadline of each call, in seconds."""
    max_calls: int | None = None
    """Ceiling on the calls of each process, whatever the duration."""
    use_uvloop: bool = True
    """Run the client loops on uvloop rather than asyncio's default loop."""
    http_path: str = ""
    """When set, each call is an HTTP/1.1 GET of this path and query, ``metadata`` its headers,
    instead of the gRPC ``method``; a 200 counts as OK, any other status as ``HTTP_<status>``."""

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("at least one target is needed")
        for target in self.targets:
            check_loopback(target)
        if not self.method.startswith("/") or self.method.count("/") != 2:
            raise ValueError(f"method must be /package.Service/Method, got {self.method!r}")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise ValueError(f"processes must be within 1..{MAX_PROCESSES}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be within 1..{MAX_CONCURRENCY}")
        if not 1 <= self.connections <= self.concurrency:
            raise ValueError("connections must be within 1..concurrency")
        if not 0 < self.duration <= MAX_SECONDS or not 0 <= self.warmup <= MAX_SECONDS:
            raise ValueError(f"duration and warmup must be within 0..{MAX_SECONDS} s")
        if not 0 < self.call_timeout <= MAX_SECONDS:
            raise ValueError(f"call_timeout must be within 0..{MAX_SECONDS} s")
        if self.http_path and not self.http_path.startswith("/"):
            raise ValueError(f"http_path must start with /, got {self.http_path!r}")
        if self.max_calls is not None and self.max_calls < 1:
            raise ValueError("max_calls must be positive")


@dataclass(slots=True)
class WorkerResult:
    """What one client process saw."""

    statuses: Counter[str] = field(default_factory=Counter)
    """Every call of the run (warm-up included) by final gRPC status name."""
    measured: Counter[str] = field(default_factory=Counter)
    """The calls that completed inside the measured window, by status name."""
    latencies: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Latencies of the successful calls of the measured window."""
    first_start: float = 0.0
    """Wall-clock time the first call was sent."""
    last_end: float = 0.0
    """Wall-clock time the last call completed."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The merged result of every client process."""

    spec: LoadSpec
    statuses: Counter[str]
    """Every call of the run (warm-up included) by status name."""
    measured: Counter[str]
    """Calls completed inside the measured window, by status name."""
    latencies: LatencyHistogram
    """Latencies of the successful calls of the measured window."""
    span: float
    """Seconds from the first call sent to the last call completed, over all processes."""
    workers: tuple[WorkerResult, ...]

    @property
    def ok(self) -> int:
        """Successful calls in the measured window."""
        return self.measured[OK]

    @property
    def errors(self) -> int:
        """Failed calls in the measured window."""
        return self.measured.total() - self.measured[OK]

    @property
    def throughput(self) -> float:
        """Successful calls per second in the measured window."""
        return self.ok / self.spec.duration

    def p50_ms(self) -> float:
        """Median latency of the successful calls, in milliseconds."""
        return self.latencies.percentile_ms(0.50)

    def p99_ms(self) -> float:
        """99th percentile latency of the successful calls, in milliseconds."""
        return self.latencies.percentile_ms(0.99)


def run_load(spec: LoadSpec) -> LoadResult:
    """Run the load ``spec`` describes and merge what every client process saw.

    Blocks until the run is over; call it from a thread when the caller has an
    event loop of its own.

    Raises:
        RuntimeError: when a client process fails, cannot connect, or overruns.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(spec.processes + 1)
    results: multiprocessing.Queue[tuple[int, WorkerResult | str]] = context.Queue()
    workers = [
        context.Process(target=_worker_main, args=(spec, index, barrier, results), daemon=True)
        for index in range(spec.processes)
    ]
    try:
        for worker in workers:
            worker.start()
        try:
            barrier.wait(_READY_TIMEOUT_SECONDS)
        except Exception as exc:  # BrokenBarrierError or a timeout: some worker never got ready
            raise RuntimeError("a client process did not get ready; see the errors above") from exc
        deadline = time.monotonic() + spec.warmup + spec.duration + spec.call_timeout + _COLLECT_SLACK_SECONDS
        collected: dict[int, WorkerResult] = {}
        while len(collected) < spec.processes:
            try:
                index, outcome = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("client processes overran the run's time bound") from None
            if isinstance(outcome, str):
                raise RuntimeError(f"client process {index} failed: {outcome}")  # noqa: TRY004
            collected[index] = outcome
        for worker in workers:
            worker.join(5)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(5)
        results.close()
    ordered = tuple(collected[index] for index in range(spec.processes))
    return LoadResult(
        spec=spec,
        statuses=sum((w.statuses for w in ordered), Counter()),
        measured=sum((w.measured for w in ordered), Counter()),
        latencies=LatencyHistogram.merged(w.latencies for w in ordered),
        span=max(w.last_end for w in ordered) - min(w.first_start for w in ordered),
        workers=ordered,
    )


def _worker_main(
    spec: LoadSpec,
    index: int,
    barrier: Barrier,
    results: multiprocessing.Queue[tuple[int, WorkerResult | str]],
) -> None:
    try:
        runner = uvloop.run if spec.use_uvloop else asyncio.run
        outcome: WorkerResult | str = runner(_worker(spec, barrier))
    except Exception as exc:  # reported to the parent, which raises it there
        barrier.abort()
        outcome = f"{type(exc).__name__}: {exc}"
    results.put((index, outcome))


async def _worker(spec: LoadSpec, barrier: Barrier) -> WorkerResult:
    if spec.http_path:
        return await _http_worker(spec, barrier)
    # A subchannel pool of its own per channel: each opens its own connection.
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(target, options=own_connection)
        for target in spec.targets
        for _ in range(spec.connections)
    ]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), _READY_TIMEOUT_SECONDS)
        # One multicallable per channel, made once: building it per call would be measured too.
        calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            channel.unary_unary(spec.method, request_serializer=None, response_deserializer=None)
            for channel in channels
        ]
        # Blocking the loop here is harmless: nothing is in flight until every process is ready.
        barrier.wait(_READY_TIMEOUT_SECONDS)
        return await _drive(spec, [_grpc_call(spec, call) for call in calls])
    finally:
        for channel in channels:
            await channel.close(grace=None)


async def _http_worker(spec: LoadSpec, barrier: Barrier) -> WorkerResult:
    # HTTP/1.1 answers one call at a time per connection: one connection per call in flight.
    connections = [
        await asyncio.wait_for(Connection.open(spec.targets[i % len(spec.targets)]), _READY_TIMEOUT_SECONDS)
        for i in range(spec.concurrency)
    ]
    requests = {target: get_request(target, spec.http_path, spec.metadata) for target in spec.targets}
    try:
        barrier.wait(_READY_TIMEOUT_SECONDS)

        def call_of(index: int) -> _Call:
            connection = connections[index]
            request = requests[spec.targets[index % len(spec.targets)]]

            async def call() -> str:
                try:
                    async with asyncio.timeout(spec.call_timeout):
                        return http_status_name(await connection.get(request))
                except TimeoutError:
                    return "DEADLINE_EXCEEDED"

            return call

        return await _drive(spec, [call_of(i) for i in range(spec.concurrency)])
    finally:
        for connection in connections:
            await connection.close()


_Call = Callable[[], Awaitable[str]]
"""One call of the run: its status name."""


def _grpc_call(spec: LoadSpec, call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> _Call:
    metadata = spec.metadata or None

    async def once() -> str:
        try:
            await call(spec.request, timeout=spec.call_timeout, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            return error.code().name
        return OK

    return once


async def _drive(spec: LoadSpec, calls: Sequence[_Call]) -> WorkerResult:
    result = WorkerResult(first_start=time.time())
    started = time.perf_counter()
    window_start = started + spec.warmup
    window_end = window_start + spec.duration
    budget = [spec.max_calls if spec.max_calls is not None else -1]

    async def caller(call: _Call) -> None:
        while time.perf_counter() < window_end and budget[0] != 0:
            budget[0] -= 1
            sent = time.perf_counter_ns()
            status = await call()
            done = time.perf_counter_ns()
            result.statuses[status] += 1
            if window_start <= done / 1e9 <= window_end:
                result.measured[status] += 1
                if status == OK:
                    result.latencies.record(done - sent)

    # Task i uses call i mod n (one per target, or per connection), so the calls spread evenly.
    await asyncio.gather(*(caller(calls[i % len(calls)]) for i in range(spec.concurrency)))
    result.last_end = time.time()
    return result
