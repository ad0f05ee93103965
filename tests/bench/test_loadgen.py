"""The load generator against a real cnaf service: counting, merging, bounds, loopback only."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2
from bench.loadgen import OK, LoadSpec, check_loopback, run_load
from bench.suite import QUOTIENT_FAMILIAL, quotient_familial_request


def quotient_familial(address: str, **fields: object) -> LoadSpec:
    """A short run of the benchmark's call against ``address``."""
    spec = LoadSpec(
        targets=(address,),
        method=QUOTIENT_FAMILIAL,
        request=quotient_familial_request(),
        processes=2,
        concurrency=2,
        duration=0.6,
        warmup=0.2,
    )
    return dataclasses.replace(spec, **fields)  # type: ignore[arg-type]


async def test_processes_count_and_merge_every_call(cnaf_address: str) -> None:
    """Two processes' calls all succeed, and the merged counts are the sums of theirs."""
    result = await asyncio.to_thread(run_load, quotient_familial(cnaf_address))

    assert len(result.workers) == 2
    assert all(worker.statuses[OK] > 0 for worker in result.workers)
    assert set(result.statuses) == {OK}
    assert result.statuses[OK] == sum(worker.statuses[OK] for worker in result.workers)
    # The measured window is a part of the run, and every call in it is timed once.
    assert 0 < result.ok <= result.statuses[OK]
    assert result.latencies.count == result.ok == sum(w.latencies.count for w in result.workers)
    assert result.throughput == pytest.approx(result.ok / 0.6)
    assert 0 < result.p50_ms() <= result.p99_ms() <= result.latencies.percentile_ms(1.0)
    assert 0.6 < result.span < 5


async def test_failed_calls_are_counted_by_status(cnaf_address: str) -> None:
    """A request the service refuses is counted under its status and never timed."""
    empty = cnaf_pb2.GetQuotientFamilialByIdentityRequest().SerializeToString()
    # A longer window than the others': the refusals it counts must not all land in the warm-up.
    spec = quotient_familial(cnaf_address, request=empty, processes=1, duration=1.5)
    result = await asyncio.to_thread(run_load, spec)

    assert set(result.statuses) == {"INVALID_ARGUMENT"}
    assert result.errors == result.measured["INVALID_ARGUMENT"] > 0
    assert result.ok == result.latencies.count == 0


async def test_max_calls_bounds_each_process(cnaf_address: str) -> None:
    """However long the run, a process stops at its call budget."""
    spec = quotient_familial(cnaf_address, duration=5.0, warmup=0.0, max_calls=7, concurrency=3)
    result = await asyncio.to_thread(run_load, spec)

    assert [worker.statuses.total() for worker in result.workers] == [7, 7]
    assert result.span < 4


@pytest.mark.parametrize("target", ["127.0.0.1:50051", "127.8.9.10:1", "[::1]:50051", "localhost:50051"])
def test_loopback_targets_are_accepted(target: str) -> None:
    """Loopback addresses, v4, v6 or by name, are fine."""
    check_loopback(target)


@pytest.mark.parametrize(
    "target",
    [
        "10.0.0.1:50051",
        "0.0.0.0:50051",
        "[::]:50051",
        "api.gouv.fr:443",
        "192.168.1.10:50051",
        "unix:/tmp/socket",
        "127.0.0.1",
        "127.0.0.1:0",
        "dns:///127.0.0.1:50051",
    ],
)
def test_other_targets_are_refused(target: str) -> None:
    """Anything that is not loopback ``host:port`` is refused before any process starts."""
    with pytest.raises(ValueError, match=r"loopback|host:port"):
        LoadSpec(targets=(target,), method=QUOTIENT_FAMILIAL, request=b"")


def test_out_of_bounds_runs_are_refused() -> None:
    """Processes, concurrency and durations have ceilings."""
    base = LoadSpec(targets=("127.0.0.1:1",), method=QUOTIENT_FAMILIAL, request=b"")
    bounds = (
        {"processes": 0},
        {"processes": 17},
        {"concurrency": 5000},
        {"duration": 3600.0},
        {"connections": 17},
    )
    for fields in bounds:
        with pytest.raises(ValueError, match="must be"):
            dataclasses.replace(base, **fields)


async def test_each_process_opens_its_own_connections() -> None:
    """``connections`` per process, each a connection of its own: what spreads calls over workers."""
    peers: set[str] = set()

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        peers.add(context.peer())
        return request

    service, method = QUOTIENT_FAMILIAL.strip("/").split("/")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {method: grpc.unary_unary_rpc_method_handler(echo)}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        spec = quotient_familial(f"127.0.0.1:{port}", concurrency=6, connections=3, duration=0.3)
        result = await asyncio.to_thread(run_load, spec)
    finally:
        await server.stop(0)
    assert result.ok > 0
    assert len(peers) == 2 * 3
