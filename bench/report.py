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
NO_WAL = "no WAL"
"""The same gateway, its journal in PostgreSQL without the write-ahead file (``JOURNAL_WAL_DIR=``)."""
GATEWAY_WORKERS = "gateway x2"
"""gRPC through a gateway of two workers (`gateway.workers`)."""
GATEWAY_REST_WORKERS = "REST x2"
"""The REST front of the gateway of two workers."""
_HIGH_LOAD_PATHS = (
    "direct",
    "pass-through",
    "gateway",
    GATEWAY_REST,
    NO_JOURNAL,
    NO_WAL,
    GATEWAY_WORKERS,
    GATEWAY_REST_WORKERS,
)

THROUGHPUT_TO_PASS_THROUGH = 0.85
"""Issue 16: gRPC through the gateway, at least this share of the pass-through's throughput."""
CPU_TO_PASS_THROUGH = 1.4
"""Issue 16: the gateway's CPU per call, at most this many times the pass-through's."""
REST_TO_GRPC = 0.8
"""Issues 12 and 16: the REST front's throughput, at least this share of the gateway's gRPC port's."""
ADDED_LATENCY_MS = 0.15
"""Issue 16: at concurrency 1, the gateway's p50 at most this much above the pass-through's."""


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
    redis_round_trip_ms: float | None = None
    """Mean Redis round trip of the gateway at low load, from its own histogram."""
    rate_limit: LoadResult | None = None
    lookup: LoadResult | None = None
    lookup_baseline: LoadResult | None = None
    notes: dict[str, str] = field(default_factory=dict)


def render(report: Report) -> str:
    """The run as one plain-text table, then each target with its verdict."""
    options = report.options
    lines: list[str] = []
    add = lines.append
    add(
        f"high load: {options.processes} client processes x {options.concurrency} in flight "
        f"({options.connections} gRPC connections each), {options.duration:.0f} s measured after "
        f"{options.warmup:.0f} s warm-up, best of {options.rounds} rounds; x2: the gateway of "
        f"{options.workers} workers"
    )
    add(f"{'path':<14}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU µs/call':>13}")
    for name in _HIGH_LOAD_PATHS:
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
        add(
            f"gateway/direct {_ratio(gateway, direct):.2f}   gateway/pass-through "
            f"{_ratio(gateway, passthrough):.2f}"
        )
    add(_workers_line(report))
    add(_journal_line(report))
    add(_wal_line(report))
    add("")
    add(f"low load: 1 client, 1 in flight, {options.low_load_duration:.0f} s")
    add(f"{'path':<14}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, path_run in report.low.items():
        load = path_run.load
        add(f"{name:<14}{load.throughput:>10.0f}{load.p50_ms():>9.3f}{load.p99_ms():>9.3f}{load.errors:>8}")
    if {"gateway", "direct", "pass-through"} <= set(report.low):
        add(
            f"latency the gateway adds at p50: {_added_ms(report, 'direct'):.3f} ms over direct, "
            f"{_added_ms(report, 'pass-through'):.3f} ms over the pass-through"
        )
    if report.redis_round_trip_ms is not None:
        add(
            f"the gateway's Redis round trip meanwhile (mean, from its own histogram, "
            f"on the call's path): {report.redis_round_trip_ms:.3f} ms"
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
    add("")
    add("targets (issue 16), ratios of this run:")
    lines.extend(f"  {line}" for line in _targets(report))
    return "\n".join(lines)


def _ratio(one: PathRun, other: PathRun) -> float:
    return one.load.throughput / other.load.throughput if other.load.throughput else 0.0


def _added_ms(report: Report, baseline: str) -> float:
    return report.low["gateway"].load.p50_ms() - report.low[baseline].load.p50_ms()


def _workers_line(report: Report) -> str:
    pairs = (("gRPC", "gateway", GATEWAY_WORKERS), ("REST", GATEWAY_REST, GATEWAY_REST_WORKERS))
    measured = [
        f"{label} {_ratio(report.high[many], report.high[one]):.2f}"
        for label, one, many in pairs
        if one in report.high and many in report.high
    ]
    if not measured:
        return "workers: not measured"
    return f"throughput of {report.options.workers} workers / 1 worker: {', '.join(measured)}"


def _targets(report: Report) -> list[str]:
    """Each target of issue 16 with what this run measured and its verdict."""
    gateway, passthrough, rest = (report.high.get(n) for n in ("gateway", "pass-through", GATEWAY_REST))
    lines = []
    if gateway is not None and passthrough is not None:
        throughput = _ratio(gateway, passthrough)
        cpu = gateway.cpu_us_per_call / passthrough.cpu_us_per_call
        own = gateway.cpu_us_per_call - passthrough.cpu_us_per_call
        lines += [
            f"gRPC throughput, gateway / pass-through: {throughput:.2f}  "
            f"{_check(throughput >= THROUGHPUT_TO_PASS_THROUGH, f'>= {THROUGHPUT_TO_PASS_THROUGH}')}",
            f"gRPC CPU per call, gateway / pass-through: {cpu:.2f}  "
            f"{_check(cpu <= CPU_TO_PASS_THROUGH, f'<= {CPU_TO_PASS_THROUGH}')} "
            f"(the gateway's own work: {own:.0f} µs a call)",
        ]
    else:
        lines.append("gateway against the pass-through: not measured")
    lines.append(_rest_line(gateway, rest))
    if {"gateway", "pass-through"} <= set(report.low):
        added = _added_ms(report, "pass-through")
        lines.append(
            f"latency added at concurrency 1, p50, over the pass-through: {added:.3f} ms  "
            f"{_check(added <= ADDED_LATENCY_MS, f'<= {ADDED_LATENCY_MS} ms')}"
        )
    else:
        lines.append("latency added at low load: not measured")
    lines.append(_round_trip_line(report))
    return lines


def _rest_line(grpc_run: PathRun | None, rest_run: PathRun | None) -> str:
    if grpc_run is None or rest_run is None or not grpc_run.load.throughput:
        return "REST front: not measured"
    ratio = _ratio(rest_run, grpc_run)
    verdict = _check(ratio >= REST_TO_GRPC, f">= {REST_TO_GRPC}")
    cpu = f"REST {rest_run.cpu_us_per_call:.0f} µs, gRPC {grpc_run.cpu_us_per_call:.0f} µs"
    return f"REST / gRPC throughput through the gateway: {ratio:.2f}  {verdict}; CPU per call {cpu}"


def _round_trip_line(report: Report) -> str:
    if not report.round_trips or not report.round_trip_calls:
        return "Redis round trips per call: not measured"
    on_path = sum(v for v in report.round_trips.values() if v >= report.round_trip_calls / 2)
    return (
        f"Redis round trips per allowed call (SLOWLOG): {on_path / report.round_trip_calls:.3f}  "
        f"{_check(on_path == report.round_trip_calls, 'exactly one')}"
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


def _wal_line(report: Report) -> str:
    """The gateway (write-ahead file on) against the same gateway without it, in the same run."""
    with_wal, without = report.high.get("gateway"), report.high.get(NO_WAL)
    if with_wal is None or without is None:
        return "journal's write-ahead file: not measured"
    low_with, low_without = report.low.get("gateway"), report.low.get(NO_WAL)
    latency = ""
    if low_with is not None and low_without is not None:
        latency = (
            f", low-load p50 {low_with.load.p50_ms() - low_without.load.p50_ms():+.3f} ms"
            f" p99 {low_with.load.p99_ms() - low_without.load.p99_ms():+.3f} ms"
        )
    return (
        f"journal's write-ahead file (fsync before each answer): gateway/no WAL "
        f"{with_wal.load.throughput / without.load.throughput:.2f}, high-load p50 "
        f"{with_wal.load.p50_ms() - without.load.p50_ms():+.2f} ms, "
        f"CPU {with_wal.cpu_us_per_call - without.cpu_us_per_call:+.0f} µs/call{latency}"
    )


def _redis_lines(report: Report) -> str:
    if not report.round_trips or not report.redis_calls:
        return "Redis commands per call: " + report.notes.get("gateway", "not measured")
    scripts = report.redis_commands.get("evalsha", 0) + report.redis_commands.get("eval", 0)
    per_call = _per_call(report.redis_commands, report.redis_calls)
    round_trips = sum(report.round_trips.values()) / report.round_trip_calls
    return (
        f"Redis, high load (INFO commandstats / {report.redis_calls} OK calls): "
        f"EVALSHA+EVAL {scripts / report.redis_calls:.3f} per call; all commands {per_call}\n"
        f"Redis, low load (SLOWLOG, client commands only / {report.round_trip_calls} calls): "
        f"{round_trips:.3f} per call ({_per_call(report.round_trips, report.round_trip_calls)}): "
        "the commands below one in two calls are the usage counters' batches"
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
