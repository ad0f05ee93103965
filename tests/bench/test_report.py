"""The bench's table: ratios computed from what was measured, each target checked."""

from __future__ import annotations

from collections import Counter

from bench.histogram import LatencyHistogram
from bench.loadgen import OK, LoadResult, LoadSpec
from bench.report import GATEWAY_REST, PathRun, Report, render
from bench.suite import Options


def _run(calls: int, cpu_seconds: float) -> PathRun:
    spec = LoadSpec(targets=("127.0.0.1:1",), method="/bench.v1.Bench/Call", request=b"", duration=10.0)
    latencies = LatencyHistogram()
    for _ in range(calls):
        latencies.record(1_000_000)
    load = LoadResult(spec, Counter({OK: calls}), Counter({OK: calls}), latencies, 10.0, ())
    return PathRun(load, cpu_seconds)


def test_the_rest_ratio_and_cpu_per_call_come_from_the_runs() -> None:
    report = Report(Options())
    report.high["direct"] = _run(30_000, 3.0)
    report.high["pass-through"] = _run(20_000, 4.0)
    report.high["gateway"] = _run(10_000, 8.0)
    report.high[GATEWAY_REST] = _run(7_000, 4.2)
    table = render(report)
    assert "gateway/direct 0.33   gateway/pass-through 0.50  [MISSED: >= 0.6]" in table
    assert (
        "REST/gRPC through the gateway 0.70  [MISSED: >= 0.8]; CPU per call REST 600 µs, gRPC 800 µs" in table
    )
    report.high[GATEWAY_REST] = _run(9_000, 4.5)
    assert "REST/gRPC through the gateway 0.90  [ok: >= 0.8]" in render(report)
