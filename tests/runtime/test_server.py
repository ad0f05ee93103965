"""The shared server runtime: health, reflection, metrics, error rendering and graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
import structlog.testing
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from devstack.redis import free_port
from runtime import server as server_module
from runtime.caller import Caller
from runtime.server import GrpcServer, PortInUseError
from services.cnaf.app import CNAF
from services.cnaf.backend import Benefit, BenefitData
from services.cnaf.sandbox import POPULATION_FILE, SandboxCnafBackend
from services.cnaf.settings import CnafSettings
from services.common.sandbox import SandboxPopulation
from services.common.settings import BackendKind
from tests.conftest import running
from tests.people import lefebvre_briefly
from tests.rich_status import rich_status

_ROOT = Path(__file__).resolve().parents[2]
_PERSON = lefebvre_briefly()


class SlowOrBrokenBackend(SandboxCnafBackend):
    """The sandbox, made slow for the RSA and broken (with personal data in the error) for the AAH."""

    def __init__(self) -> None:
        super().__init__(SandboxPopulation.load(POPULATION_FILE))
        self.closed = False

    async def benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> BenefitData:
        if benefit is Benefit.REVENU_SOLIDARITE_ACTIVE:
            await asyncio.sleep(0.5)
        if benefit is Benefit.ALLOCATION_ADULTE_HANDICAPE:
            raise ValueError(f"unexpected record for {identity.nom_naissance}")
        return await super().benefit(benefit, data_type, identity, caller)

    async def close(self) -> None:
        self.closed = True


def server_with(backend: SlowOrBrokenBackend, grace: float = 5.0) -> GrpcServer:
    settings = CnafSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, shutdown_grace_seconds=grace)
    return replace(CNAF, backends={BackendKind.SANDBOX: lambda _: backend}).server(settings)


async def test_health_and_reflection_describe_the_service() -> None:
    """Health answers SERVING for the process and the service; reflection lists every cnaf method."""
    async with running(server_with(SlowOrBrokenBackend())) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", CNAF.service_name):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        services: list[str] = []
        methods: list[str] = []
        async for answer in reflection.ServerReflectionInfo(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol=CNAF.service_name),
                ]
            )
        ):
            if answer.HasField("list_services_response"):
                services = [s.name for s in answer.list_services_response.service]
            else:
                for raw in answer.file_descriptor_response.file_descriptor_proto:
                    proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    methods += [m.name for service in proto.service for m in service.method]
        assert CNAF.service_name in services and "grpc.health.v1.Health" in services
        expected = [m.name for m in cnaf_pb2.DESCRIPTOR.services_by_name["CnafService"].methods]
        assert methods == expected and len(methods) == 16


async def test_unexpected_failure_is_internal_and_leaks_nothing() -> None:
    """An exception in a handler is INTERNAL 00000 with a fixed message: its text never reaches the caller."""
    async with running(server_with(SlowOrBrokenBackend())) as channel:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetAllocationAdulteHandicapeByIdentity(
                cnaf_pb2.GetAllocationAdulteHandicapeByIdentityRequest(identite=_PERSON)
            )
        status = rich_status(caught.value)
        assert status.code == grpc.StatusCode.INTERNAL
        assert status.api_code == "00000"
        assert "LEFEBVRE" not in status.message


async def test_metrics_count_calls_by_method_and_status() -> None:
    """The metrics port serves Prometheus text with the calls counted by method, status and code."""
    server = server_with(SlowOrBrokenBackend())
    async with running(server) as channel:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        await stub.GetAllocationSoutienFamilialByIdentity(
            cnaf_pb2.GetAllocationSoutienFamilialByIdentityRequest(identite=_PERSON)
        )
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    method = "/apiparticulier.cnaf.v1.CnafService/GetAllocationSoutienFamilialByIdentity"
    assert f'grpc_server_handled_total{{api_code="",grpc_code="OK",grpc_method="{method}"}}' in text
    assert "grpc_server_handling_seconds_bucket" in text
    assert "LEFEBVRE" not in text


async def test_graceful_stop_drains_in_flight_calls_and_closes_clients() -> None:
    """On stop, health turns NOT_SERVING, an in-flight call still completes, then clients are closed."""
    backend = SlowOrBrokenBackend()
    server = server_with(backend)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=CNAF.service_name)
        )
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        slow = asyncio.ensure_future(
            stub.GetRevenuSolidariteActiveByIdentity(
                cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=_PERSON)
            )
        )
        await asyncio.sleep(0.1)
        stopping = asyncio.ensure_future(server.stop())
        second = await watch.read()
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        answer = await slow
        assert answer.data.est_beneficiaire is True
        await stopping
        assert backend.closed
    finally:
        await channel.close(grace=None)


def test_service_process_stops_cleanly_on_sigterm() -> None:
    """`python -m services.cnaf` serves health on its port and exits 0 on SIGTERM."""
    port = free_port()
    env = {**os.environ, "GRPC_PORT": str(port), "GRPC_HOST": "127.0.0.1", "SHUTDOWN_GRACE_SECONDS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cnaf"],
        cwd=_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=CNAF.service_name)
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    events = output.decode()
    assert '"event": "shutdown_requested"' in events and '"event": "server_stopped"' in events


async def test_health_list_answers_every_service() -> None:
    """grpc.health.v1.Health/List, listed by reflection, gives each service's status (not INTERNAL)."""
    async with running(server_with(SlowOrBrokenBackend())) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest())
    statuses = {name: response.status for name, response in answer.statuses.items()}
    assert statuses == {
        "": health_pb2.HealthCheckResponse.SERVING,
        CNAF.service_name: health_pb2.HealthCheckResponse.SERVING,
    }


async def test_reflection_answers_under_v1_too() -> None:
    """Tools ask grpc.reflection.v1 first: it lists the services and describes them, itself included."""
    request_class = message_class("grpc.reflection.v1.ServerReflectionRequest")
    response_class = message_class("grpc.reflection.v1.ServerReflectionResponse")
    async with running(server_with(SlowOrBrokenBackend())) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        answers = [
            answer
            async for answer in info(
                iter(
                    [
                        request_class(list_services=""),
                        request_class(file_containing_symbol=CNAF.service_name),
                        request_class(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
                    ]
                )
            )
        ]
    services = {s.name for s in answers[0].list_services_response.service}
    assert {CNAF.service_name, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} <= services
    assert "grpc.reflection.v1alpha.ServerReflection" in services
    for answer, package in ((answers[1], "apiparticulier.cnaf.v1"), (answers[2], "grpc.reflection.v1")):
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in answer.file_descriptor_response.file_descriptor_proto
        ]
        assert package in {f.package for f in files}


async def test_a_second_server_on_a_served_port_refuses_to_start() -> None:
    """No SO_REUSEPORT: a second server on the port of a running one stops with a clear error."""
    first = server_with(SlowOrBrokenBackend())
    await first.start()
    try:
        settings = CnafSettings(grpc_host="127.0.0.1", grpc_port=first.port)
        second = GrpcServer(settings, [])
        with pytest.raises(
            PortInUseError, match=f"cannot listen on 127.0.0.1:{first.port}: the port is in use"
        ):
            await second.start()
        await second.stop(0)
        process = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cnaf"],
            cwd=_ROOT,
            env={**os.environ, "GRPC_PORT": str(first.port), "GRPC_HOST": "127.0.0.1"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert process.returncode == 1
        assert f"cannot listen on 127.0.0.1:{first.port}: the port is in use" in process.stderr
        assert "Traceback" not in process.stderr
    finally:
        await first.stop(0)


def message_class(name: str) -> Any:
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))


def test_calls_racing_sigterm_are_served_or_unavailable_never_cancelled() -> None:
    """SIGTERM under load: health turns NOT_SERVING while the port still answers, calls are
    served during the notice, then refused UNAVAILABLE; none is CANCELLED (a status clients do
    not retry)."""
    port = free_port()
    env = {
        **os.environ,
        "GRPC_PORT": str(port),
        "GRPC_HOST": "127.0.0.1",
        "SHUTDOWN_NOTICE_SECONDS": "0.5",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cnaf"], cwd=_ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        outcomes, probes = asyncio.run(hammer_through_sigterm(process, port))
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "CANCELLED" not in outcomes, outcomes
    assert outcomes["OK after SIGTERM"] > 0, outcomes  # served during the notice
    assert set(outcomes) <= {"OK", "OK after SIGTERM", "UNAVAILABLE"}, outcomes
    # Probes see NOT_SERVING, while the server still answers them, before the port closes.
    first_not_serving = probes.index("NOT_SERVING")
    assert "SERVING" not in probes[first_not_serving:]
    assert "UNAVAILABLE" not in probes[:first_not_serving]
    assert probes.count("NOT_SERVING") >= 5


async def hammer_through_sigterm(
    process: subprocess.Popen[bytes], port: int
) -> tuple[Counter[str], list[str]]:
    """Twenty callers and one health probe, from 0.5 s before SIGTERM until the server is gone."""
    outcomes: Counter[str] = Counter()
    probes: list[str] = []
    signalled = asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 20)
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=_PERSON)
        stop_at = asyncio.get_running_loop().time() + 3.0

        async def caller() -> None:
            while asyncio.get_running_loop().time() < stop_at:
                try:
                    await stub.GetQuotientFamilialByIdentity(request, timeout=5)
                    outcomes["OK after SIGTERM" if signalled.is_set() else "OK"] += 1
                except grpc.aio.AioRpcError as error:
                    outcomes[error.code().name] += 1
                    await asyncio.sleep(0.01)

        async def probe() -> None:
            await signalled.wait()
            while asyncio.get_running_loop().time() < stop_at:
                try:
                    answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                    probes.append(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
                except grpc.aio.AioRpcError as error:
                    probes.append(error.code().name)
                await asyncio.sleep(0.02)

        async def terminate() -> None:
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            signalled.set()

        await asyncio.gather(terminate(), probe(), *(caller() for _ in range(20)))
    return outcomes, probes


async def test_a_shutdown_hook_that_never_ends_is_left_behind_and_named() -> None:
    ended = asyncio.Event()

    async def never() -> None:
        await ended.wait()

    started = asyncio.get_running_loop().time()
    with structlog.testing.capture_logs() as logs:
        await server_module._within(never, 0.1)
    assert asyncio.get_running_loop().time() - started < 1.0  # returned at the bound, not never
    (overdue,) = [log for log in logs if log["event"] == "shutdown_hook_overdue"]
    assert overdue["hook"].endswith("never") and overdue["seconds"] == 0.1


async def test_the_waiting_tasks_are_named_where_they_wait() -> None:
    """An overdue shutdown step logs where the other tasks wait: each coroutine of the chain and its line."""
    ended = asyncio.Event()

    async def holds_the_stop() -> None:
        await ended.wait()

    async def outer() -> None:
        await holds_the_stop()

    task = asyncio.create_task(outer())
    await asyncio.sleep(0)
    try:
        (chain,) = [c for c in server_module.waiting_tasks() if "holds_the_stop" in c]
        waiting_at = holds_the_stop.__code__.co_firstlineno + 1
        called_at = outer.__code__.co_firstlineno + 1
        assert chain.startswith(
            f"{outer.__qualname__} ({__file__}:{called_at}) > "
            f"{holds_the_stop.__qualname__} ({__file__}:{waiting_at}) > Event.wait"
        )
    finally:
        ended.set()
        await task
