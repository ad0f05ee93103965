"""The bench's table: ratios computed from what was measured, each target checked."""

from __future__ import annotations

from collections import Counter

from bench.histogram import LatencyHistogram
from bench.loadgen import OK, LoadResult, LoadSpec
from bench.report import GATEWAY_REST, GATEWAY_REST_WORKERS, GATEWAY_WORKERS, NO_WAL, PathRun, Report, render
from bench.suite import Options


def _run(calls: int, cpu_seconds: float, latency_ms: float = 1.0) -> PathRun:
    spec = LoadSpec(targets=("127.0.0.1:1",), method="/bench.v1.Bench/Call", request=b"", duration=10.0)
    latencies = LatencyHistogram()
    for _ in range(calls):
        latencies.record(int(latency_ms * 1_000_000))
    load = LoadResult(spec, Counter({OK: calls}), Counter({OK: calls}), latencies, 10.0, ())
    return PathRun(load, cpu_seconds)


def _report() -> Report:
    report = Report(Options())
    report.high["direct"] = _run(30_000, 3.0)
    report.high["pass-through"] = _run(20_000, 8.0)
    report.high["gateway"] = _run(16_000, 8.0)
    report.high[GATEWAY_REST] = _run(12_000, 7.2)
    report.low["direct"] = _run(1_000, 0.5, latency_ms=1.0)
    report.low["pass-through"] = _run(1_000, 0.5, latency_ms=1.5)
    report.low["gateway"] = _run(1_000, 0.5, latency_ms=1.6)
    report.round_trips, report.round_trip_calls = {"evalsha": 1_000, "multi": 3}, 1_000
    return report


def test_each_target_of_issue_16_is_checked_from_the_runs() -> None:
    report = _report()
    table = render(report)
    assert "gRPC throughput, gateway / pass-through: 0.80  [MISSED: >= 0.85]" in table
    assert (
        "gRPC CPU per call, gateway / pass-through: 1.25  [ok: <= 1.4] (the gateway's own work: 100 µs"
        in table
    )
    assert (
        "REST / gRPC throughput through the gateway: 0.75  [MISSED: >= 0.8]; CPU per call REST 600 µs"
        in table
    )
    assert "over the pass-through: 0.100 ms  [ok: <= 0.15 ms]" in table
    assert "Redis round trip meanwhile" not in table
    report.redis_round_trip_ms = 0.0625
    assert "on the call's path): 0.062 ms" in render(report)
    assert "Redis round trips per allowed call (SLOWLOG): 1.000  [ok: exactly one]" in table

    report.high["gateway"] = _run(17_000, 12.0)
    report.high[GATEWAY_REST] = _run(14_000, 8.4)
    report.low["gateway"] = _run(1_000, 0.5, latency_ms=1.7)
    report.round_trips = {"evalsha": 1_000, "get": 1_000}
    table = render(report)
    assert "gRPC throughput, gateway / pass-through: 0.85  [ok: >= 0.85]" in table
    assert "gRPC CPU per call, gateway / pass-through: 1.76  [MISSED: <= 1.4]" in table
    assert "REST / gRPC throughput through the gateway: 0.82  [ok: >= 0.8]" in table
    assert "over the pass-through: 0.200 ms  [MISSED: <= 0.15 ms]" in table
    assert "Redis round trips per allowed call (SLOWLOG): 2.000  [MISSED: exactly one]" in table


def test_workers_are_compared_with_the_gateway_of_one() -> None:
    report = _report()
    assert "workers: not measured" in render(report)
    report.high[GATEWAY_WORKERS] = _run(24_000, 20.0)
    report.high[GATEWAY_REST_WORKERS] = _run(18_000, 14.0)
    assert "throughput of 2 workers / 1 worker: gRPC 1.50, REST 1.50" in render(report)


def test_the_write_ahead_file_is_compared_with_the_same_gateway_without() -> None:
    report = _report()
    assert "journal's write-ahead file: not measured" in render(report)
    report.high[NO_WAL] = _run(20_000, 8.0, latency_ms=0.5)
    report.low[NO_WAL] = _run(1_000, 0.5, latency_ms=1.2)
    assert (
        "journal's write-ahead file (fsync before each answer): gateway/no WAL 0.80, high-load p50 +0.50 ms, "
        "CPU +100 µs/call, low-load p50 +0.400 ms p99 +0.400 ms" in render(report)
    )
