"""``GATEWAY_WORKERS``: one gateway, several processes on one port, real processes and a real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiparticulier.cnaf.v1 import cnaf_pb2
from devstack.processes import Child, ProcessGroup
from devstack.redis import RedisProcess, free_port
from runtime.server import GrpcServer, ServiceDefinition, bind_socket
from services.common.settings import ProviderSettings
from tests.conftest import run_python
from tests.gateway.grpc.test_proxy import metadata
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import lefebvre

pytestmark = pytest.mark.timing  # processes killed, frozen, raced: run alone (`make test`)

QUOTIENT_FAMILIAL = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
PROVIDER_DELAY_SECONDS = 0.6
CONNECTIONS = 16


ASKED: list[float] = []
"""When each call reached the cnaf stand-in (`time.monotonic`; it serves in the tests' process)."""


async def slow_answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    """A cnaf stand-in's quotient familial: an empty answer, after a delay."""
    ASKED.append(time.monotonic())
    await asyncio.sleep(PROVIDER_DELAY_SECONDS)
    return b""


@dataclass
class Workers:
    """A gateway of two workers and what it needs."""

    group: ProcessGroup
    supervisor: Child
    metrics_ports: tuple[int, int]
    rest_port: int
    factory: TokenFactory
    env: dict[str, str]


@pytest.fixture
async def slow_cnaf() -> AsyncIterator[int]:
    service, method = QUOTIENT_FAMILIAL.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(slow_answer)}
    )
    server = GrpcServer(
        ProviderSettings(grpc_host="127.0.0.1", grpc_port=0),
        [ServiceDefinition(service, lambda server: server.add_generic_rpc_handlers((handler,)))],
    )
    await server.start()
    yield server.port
    await server.stop(0)


def listeners(port: int) -> int:
    """How many sockets listen on loopback TCP ``port``: one a worker, the port shared (SO_REUSEPORT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local, listening = f"0100007F:{port:04X}", "0A"
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == listening)


@pytest.fixture
async def workers(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey], slow_cnaf: int, tmp_path: Path
) -> AsyncIterator[Workers]:
    directory, es256, _ = keys_dir
    metrics = free_port()
    while True:  # worker i serves its metrics on METRICS_PORT + i: both must be free
        try:
            bind_socket("127.0.0.1", metrics + 1, reuse_port=False).close()
            break
        except OSError:
            metrics = free_port()
    rest = free_port()
    env = {
        "KEYS_DIR": str(directory),
        "REDIS_URL": redis_server.url,
        "JOURNAL_HMAC_KEY": "workers-journal-key",
        "CNAF_ADDRESS": f"127.0.0.1:{slow_cnaf}",
        "GATEWAY_WORKERS": "2",
        # One request sent on every connection at once: the duplicate-call lock would refuse all but one.
        "DUPLICATE_CALL_LOCK": "false",
        "METRICS_PORT": str(metrics),
        "REST_PORT": str(rest),
        "REST_HOST": "127.0.0.1",
        "SHUTDOWN_NOTICE_SECONDS": "0.3",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_LEVEL": "warning",
        "WORKER_HEARTBEAT_TIMEOUT_SECONDS": "1",
    }
    group = ProcessGroup(tmp_path / "logs")
    try:
        supervisor = await asyncio.to_thread(group.start, "gateway", ["-m", "gateway"], env)
        # The group waits for one worker's gRPC health: the other may not listen on the REST port yet.
        for _ in range(300):
            if listeners(rest) == 2:
                break
            await asyncio.sleep(0.05)
        assert listeners(rest) == 2, "both workers listen on the REST port"
        yield Workers(group, supervisor, (metrics, metrics + 1), rest, TokenFactory(es256), env)
    finally:
        await asyncio.to_thread(group.close)


def worker_pids(supervisor: int) -> list[int]:
    """The workers the supervisor started (multiprocessing's resource tracker aside)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def calls_counted(port: int) -> float:
    """The quotient familial calls a worker counted, from its own metrics port."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "grpc_server_handled_total" and sample.labels["grpc_method"] == QUOTIENT_FAMILIAL
    )


def channels(port: int) -> list[grpc.aio.Channel]:
    # A subchannel pool of its own: each channel opens its own connection, as separate callers do.
    return [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS)
    ]


async def call(channel: grpc.aio.Channel, header: str) -> str:
    request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre()).SerializeToString()
    send: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        QUOTIENT_FAMILIAL, request_serializer=None, response_deserializer=None
    )
    try:
        await send(request, metadata=metadata(header), timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code().name
    return "OK"


def second_gateway(workers: Workers, how_many: str) -> subprocess.CompletedProcess[str]:
    """Start another gateway, of ``how_many`` workers, on the port the workers serve."""
    env = {**os.environ, **workers.env, "GATEWAY_WORKERS": how_many}
    env |= {"GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(workers.supervisor.port)}
    del env["METRICS_PORT"]
    return run_python("-m", "gateway", env=env)


async def test_two_workers_share_one_port_and_one_rate_limit(workers: Workers) -> None:
    pids = worker_pids(workers.supervisor.process.pid)
    assert len(pids) == 2
    open_channels = channels(workers.supervisor.port)
    try:
        header = workers.factory.bearer(rate_limit=10_000)
        assert await asyncio.gather(*(call(c, header) for c in open_channels)) == ["OK"] * CONNECTIONS
        # Both workers served calls: the kernel spread the connections over them.
        counted = [await asyncio.to_thread(calls_counted, port) for port in workers.metrics_ports]
        assert sum(counted) == CONNECTIONS
        assert all(counted), counted
        # One bucket for the token, whichever worker decides: 2 per second, a burst of 2.
        limited = workers.factory.bearer(rate_limit=2)
        started = time.monotonic()
        outcomes = await asyncio.gather(*(call(c, limited) for c in open_channels * 2))
        elapsed = time.monotonic() - started
    finally:
        for channel in open_channels:
            await channel.close(None)
    assert outcomes.count("OK") <= 2 + 2 * elapsed
    assert set(outcomes) == {"OK", "RESOURCE_EXHAUSTED"}
    answer = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{workers.rest_port}/api/ping", timeout=5)
    assert answer.status_code == 200
    # A stray gateway, alone or with workers of its own, cannot take a share of the port.
    for how_many in ("1", "2"):
        refused = await asyncio.to_thread(second_gateway, workers, how_many)
        assert refused.returncode == 1
        assert f"cannot listen on 127.0.0.1:{workers.supervisor.port}: the port is in use" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert worker_pids(workers.supervisor.process.pid) == pids  # the first gateway serves on


async def test_sigterm_drains_every_worker(workers: Workers) -> None:
    supervisor = workers.supervisor.process
    pids = worker_pids(supervisor.pid)
    open_channels = channels(workers.supervisor.port)
    try:
        header = workers.factory.bearer(rate_limit=10_000)
        in_flight = asyncio.gather(*(call(c, header) for c in open_channels))
        await asyncio.sleep(PROVIDER_DELAY_SECONDS / 3)
        supervisor.send_signal(signal.SIGTERM)
        assert await in_flight == ["OK"] * CONNECTIONS  # every call in flight on every worker finished
    finally:
        for channel in open_channels:
            await channel.close(None)
    assert await asyncio.to_thread(supervisor.wait, 10) == 0
    assert not any(alive(pid) for pid in pids)


async def ping(port: int) -> int:
    """GET /api/ping on a connection of its own: the kernel gives it to one of the live workers."""
    answer = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/api/ping", timeout=5)
    return answer.status_code


async def replaced(supervisor: int, gone: int, seconds: float) -> int:
    """The worker started in place of ``gone``, once two workers serve again, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        pids = [pid for pid in worker_pids(supervisor) if alive(pid)]
        if len(pids) == 2 and gone not in pids:
            return pids[-1]
        assert time.monotonic() < deadline, f"no worker in place of {gone} after {seconds} s"
        await asyncio.sleep(0.05)


async def test_a_killed_worker_is_back_within_seconds_while_the_other_serves(workers: Workers) -> None:
    supervisor = workers.supervisor.process
    first, second = worker_pids(supervisor.pid)
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    # The kill is delivered asynchronously: a connection the kernel queued on the dying worker's
    # socket before it closed is reset (SO_REUSEPORT), so "new" starts once it is dead.
    for _ in range(500):
        if not alive(first):
            break
        await asyncio.sleep(0.01)
    # Meanwhile the other serves every new connection.
    assert [await ping(workers.rest_port) for _ in range(10)] == [200] * 10
    await replaced(supervisor.pid, first, 30)
    back_in = time.monotonic() - killed_at
    assert supervisor.poll() is None and alive(second)
    # The new worker serves too: a share of new connections reaches it, on its metrics port.
    await until_serving(workers.metrics_ports[0])
    assert [await ping(workers.rest_port) for _ in range(10)] == [200] * 10
    assert back_in < 30


async def until_serving(metrics_port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            text = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
            if "gateway_worker_restarts 1.0" in text.text:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the new worker never served its metrics"
        await asyncio.sleep(0.2)


async def test_a_frozen_worker_is_replaced(workers: Workers) -> None:
    supervisor = workers.supervisor.process
    first, second = worker_pids(supervisor.pid)
    os.kill(first, signal.SIGSTOP)
    try:
        await replaced(supervisor.pid, first, 30)
    finally:
        if alive(first):
            os.kill(first, signal.SIGCONT)
    assert not alive(first) and alive(second)
    assert [await ping(workers.rest_port) for _ in range(10)] == [200] * 10


async def test_workers_outlive_no_supervisor(workers: Workers) -> None:
    supervisor = workers.supervisor.process
    pids = worker_pids(supervisor.pid)
    supervisor.kill()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        await asyncio.sleep(0.05)
