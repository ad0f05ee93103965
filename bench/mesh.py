"""What a benchmark run reads from Redis and from a gateway's metrics: commands and round trips.

The processes of a run are started and stopped by `devstack.processes.ProcessGroup`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

REDIS_ROUND_TRIP = "gateway_rate_limit_redis_seconds"
"""The gateway's histogram of the rate limiter's Redis round trips (`gateway.ratelimit`)."""


def redis_round_trips(metrics_address: str) -> tuple[float, int]:
    """Seconds spent in, and number of, the successful Redis round trips a gateway has made so far."""
    text = httpx.get(f"http://{metrics_address}/metrics", timeout=10).text
    total, count = 0.0, 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("outcome") != "ok":
                continue
            if sample.name == f"{REDIS_ROUND_TRIP}_sum":
                total += sample.value
            elif sample.name == f"{REDIS_ROUND_TRIP}_count":
                count += int(sample.value)
    return total, count


def command_counts(client: redis.Redis) -> dict[str, int]:
    """Calls of each command since Redis started, from INFO commandstats (script commands included)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def command_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Commands run between two `command_counts`, without the INFO calls that took them."""
    deltas = {name: count - before.get(name, 0) for name, count in after.items() if name != "info"}
    return {name: count for name, count in deltas.items() if count}


SCRIPT_CLIENT = "?:0"
"""The client address Redis logs for commands a Lua script runs (they are not round trips)."""


def client_commands_from_slowlog(entries: Iterable[Mapping[str, object]], own_name: str) -> dict[str, int]:
    """Commands clients sent over the network, from `redis.Redis.slowlog_get` entries.

    Commands a script runs are logged with the address `SCRIPT_CLIENT` and are
    skipped, and so are those of the connection named ``own_name`` (the benchmark's own).
    """
    counts: dict[str, int] = {}
    for entry in entries:
        address, name, command = entry.get("client_address"), entry.get("client_name"), entry.get("command")
        if isinstance(address, bytes):
            address = address.decode()
        if isinstance(name, bytes):
            name = name.decode()
        if isinstance(command, bytes):
            command = command.decode(errors="replace")
        if address == SCRIPT_CLIENT or name == own_name or not isinstance(command, str) or not command:
            continue
        verb = command.split(" ", 1)[0].lower()
        counts[verb] = counts.get(verb, 0) + 1
    return counts
