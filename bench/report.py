"""What `make bench` measured, and the table it prints: the data of a run and its rendering."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from bench.loadgen import OK, LoadResult

if TYPE_CHECKING:
    from bench.suite import Options

_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.name

GATEWAY_REST = "gateway REST"
"""The REST front's path in the tables, beside ``direct``, ``pass-through`` and ``gateway``."""
NO_JOURNAL = "no journal"
"""The same gateway with its journal kept to the log event, measured in the same rounds."""


@dataclass(frozen=True, slots=True)
class PathRun:
    """One load run against one path, with the serving process's CPU over it."""

    load: LoadResult
    cpu_seconds: float

    @property
    def cpu_us_per_call(self) -> float:
        """CPU time of the serving process per call it handled, warm-up included, in µs."""
        return self.cpu_seconds / max(1, self.load.statuses.total()) * 1e6


@dataclass(slots=True)
class Report:
    """Everything the run measured, filled in phase by phase."""

    options: Options
    high: dict[str, PathRun] = field(default_factory=dict)
    low: dict[str, PathRun] = field(default_factory=dict)
    redis_commands: dict[str, int] = field(default_factory=dict)
    redis_calls: int = 0
    round_trips: dict[str, int] = field(default_factory=dict)
    round_trip_calls: int = 0
    rate_limit: LoadResult | None = None
    lookup: LoadResult | None = None
    lookup_baseline: LoadResult | None = None
    notes: dict[str, str] = field(default_factory=dict)


def render(report: Report) -> str:
    """The run as one plain-text table, with the targets of issue 6 checked."""
    options = report.options
    lines: list[str] = []
    add = lines.append
    add(
        f"high load: {options.processes} client processes x {options.concurrency} in flight, "
        f"{options.duration:.0f} s measured after {options.warmup:.0f} s warm-up, "
        f"best of {options.rounds} rounds"
    )
    add(f"{'path':<14}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU µs/call':>13}")
    for name in ("direct", "pass-through", "gateway", GATEWAY_REST, NO_JOURNAL):
        path_run = report.high.get(name)
        if path_run is None:
            add(f"{name:<14}{report.notes.get('gateway', 'not measured'):>49}")
            continue
        load = path_run.load
        add(
            f"{name:<14}{load.throughput:>10.0f}{load.p50_ms():>9.2f}{load.p99_ms():>9.2f}"
            f"{load.errors:>8}{path_run.cpu_us_per_call:>13.0f}"
        )
    gateway, direct, passthrough = (report.high.get(n) for n in ("gateway", "direct", "pass-through"))
    if gateway and direct and passthrough:
        to_direct = gateway.load.throughput / direct.load.throughput
        to_pass = gateway.load.throughput / passthrough.load.throughput
        add(
            f"gateway/direct {to_direct:.2f}   gateway/pass-through {to_pass:.2f}  "
            f"{_check(to_pass >= 0.6, '>= 0.6')}"
        )
    add(_rest_line(report))
    add(_journal_line(report))
    add("")
    add(f"low load: 1 client, 1 in flight, {options.low_load_duration:.0f} s")
    add(f"{'path':<14}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, path_run in report.low.items():
        load = path_run.load
        add(f"{name:<14}{load.throughput:>10.0f}{load.p50_ms():>9.3f}{load.p99_ms():>9.3f}{load.errors:>8}")
    if "gateway" in report.low:
        added = report.low["gateway"].load.p50_ms() - report.low["direct"].load.p50_ms()
        over_pass = report.low["gateway"].load.p50_ms() - report.low["pass-through"].load.p50_ms()
        add(
            f"latency the gateway adds at p50: {added:.3f} ms over direct "
            f"({over_pass:.3f} ms over pass-through)  {_check(added < 1.0, '< 1 ms')}"
        )
    add("")
    add(_redis_lines(report))
    if gateway is not None:
        per_call = gateway.cpu_us_per_call
        add(
            f"gateway CPU per call: {per_call:.0f} µs (user+system, all threads), "
            f"so about {1e6 / per_call:.0f} calls/s per core"
        )
    add("")
    add(_rate_limit_line(report))
    add(_lookup_line(report))
    return "\n".join(lines)


def _rest_line(report: Report) -> str:
    grpc_run, rest_run = report.high.get("gateway"), report.high.get(GATEWAY_REST)
    if grpc_run is None or rest_run is None or not grpc_run.load.throughput:
        return "REST front: not measured"
    ratio = rest_run.load.throughput / grpc_run.load.throughput
    return (
        f"REST/gRPC through the gateway {ratio:.2f}  {_check(ratio >= 0.8, '>= 0.8')}; CPU per call "
        f"REST {rest_run.cpu_us_per_call:.0f} µs, gRPC {grpc_run.cpu_us_per_call:.0f} µs"
    )


def _journal_line(report: Report) -> str:
    """The gateway with its journal in PostgreSQL against the same gateway without, in the same run."""
    with_journal, without = report.high.get("gateway"), report.high.get(NO_JOURNAL)
    if with_journal is None or without is None:
        return "journal in PostgreSQL: not measured"
    low_with, low_without = report.low.get("gateway"), report.low.get(NO_JOURNAL)
    latency = ""
    if low_with is not None and low_without is not None:
        latency = f", low-load p50 {low_with.load.p50_ms() - low_without.load.p50_ms():+.3f} ms"
    ratio = with_journal.load.throughput / without.load.throughput
    return (
        f"journal in PostgreSQL: gateway/no journal {ratio:.2f}, "
        f"CPU {with_journal.cpu_us_per_call - without.cpu_us_per_call:+.0f} µs/call{latency}"
    )


def _redis_lines(report: Report) -> str:
    if not report.round_trips or not report.redis_calls:
        return "Redis commands per call: " + report.notes.get("gateway", "not measured")
    scripts = report.redis_commands.get("evalsha", 0) + report.redis_commands.get("eval", 0)
    per_call = _per_call(report.redis_commands, report.redis_calls)
    round_trips = sum(report.round_trips.values()) / report.round_trip_calls
    on_path = sum(v for v in report.round_trips.values() if v >= report.round_trip_calls / 2)
    return (
        f"Redis, high load (INFO commandstats / {report.redis_calls} OK calls): "
        f"EVALSHA+EVAL {scripts / report.redis_calls:.3f} per call; all commands {per_call}\n"
        f"Redis, low load (SLOWLOG, client commands only / {report.round_trip_calls} calls): "
        f"{round_trips:.3f} per call ({_per_call(report.round_trips, report.round_trip_calls)})  "
        f"{_check(on_path == report.round_trip_calls, 'one round trip per call')}"
    )


def _per_call(counts: dict[str, int], calls: int) -> str:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {count / calls:.3f}" for name, count in ordered)


def _rate_limit_line(report: Report) -> str:
    options = report.options
    result = report.rate_limit
    if result is None:
        return "rate-limit accuracy: " + report.notes.get("rate_limit", "not measured")
    admitted = result.statuses[OK]
    refused = result.statuses[_RESOURCE_EXHAUSTED]
    other = {name: count for name, count in result.statuses.items() if name not in {OK, _RESOURCE_EXHAUSTED}}
    allowed = options.rate_limit * result.span + options.burst
    return (
        f"rate-limit accuracy (3 gateways, one token, {options.rate_limit}/s, burst {options.burst}, "
        f"{result.span:.2f} s, {result.statuses.total() / result.span:.0f} calls/s offered): "
        f"admitted {admitted}, allowed {allowed:.0f} (rate x time + burst), refused {refused}, "
        f"other {other or 0}  "
        f"{_check(admitted <= allowed, 'admitted <= allowed')}"
    )


def _lookup_line(report: Report) -> str:
    if report.lookup is None or report.lookup_baseline is None:
        return "fan-out lookup over six delayed providers: " + report.notes.get("lookup", "not measured")
    delay = report.options.fanout_delay_ms
    slowest = report.lookup_baseline.p50_ms()
    lookup = report.lookup
    if lookup.ok == 0:
        return f"fan-out lookup: every call failed ({dict(lookup.measured)})"
    ratio = lookup.p50_ms() / slowest
    return (
        f"fan-out lookup, six providers delayed {delay:.0f} ms: p50 {lookup.p50_ms():.1f} ms, "
        f"p99 {lookup.p99_ms():.1f} ms; one delayed provider alone p50 {slowest:.1f} ms; "
        f"ratio {ratio:.2f}  {_check(ratio <= 1.2, '<= 1.2')}"
    )


def _check(passed: bool, target: str) -> str:
    return f"[{'ok' if passed else 'MISSED'}: {target}]"


def machine() -> str:
    """Cores, CPU model, Python and grpcio versions, and the load when the run ended."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, grpcio {grpc.__version__}; "
        f"load average {' '.join(load)}"
    )
