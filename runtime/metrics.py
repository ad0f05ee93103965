"""Prometheus metrics of a gRPC process, served on their own port, never on the gRPC one.

Every process of the mesh registers the metrics of this module: the call
boundary's, and the upstream HTTP kit's. The gateway adds its own
(`gateway.metrics`). Labels are method names, gRPC status names, API Particulier
error codes, provider names and error kinds: bounded sets that never carry
personal data. docs/OBSERVABILITY.md lists every series.
"""

from __future__ import annotations

import functools
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# -- every server: the call boundary -----------------------------------------------------------

CALLS = Counter(
    "grpc_server_handled",
    "Calls handled, by method, gRPC status and API Particulier code.",
    ["grpc_method", "grpc_code", "api_code"],
)
LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle a call, by method.",
    ["grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("grpc_server_in_flight", "Calls being handled right now.")

# Every call counts itself: its series are looked up once, not labelled anew each time.
_SERIES_KEPT = 4096


@functools.lru_cache(maxsize=_SERIES_KEPT)
def latency_of(method: str) -> Histogram:
    """The `LATENCY` series of a method."""
    return LATENCY.labels(method)


@functools.lru_cache(maxsize=_SERIES_KEPT)
def calls_of(method: str, status: str, api_code: str) -> Counter:
    """The `CALLS` series of a method, gRPC status name and API Particulier code."""
    return CALLS.labels(method, status, api_code)


# -- the upstream HTTP kit (`runtime.upstream`): provider services and FranceConnect ------

UPSTREAM_ERRORS = Counter(
    "upstream_errors",
    "Upstream provider calls that failed, by provider and kind of failure (timeout, dns, "
    "econnrefused, provider_unavailable, unexpected_body…).",
    ["provider", "kind"],
)
UPSTREAM_LATENCY = Histogram(
    "upstream_request_seconds",
    "Round trip of one HTTP exchange with an upstream provider, by provider and outcome "
    "(the HTTP status class, 2xx to 5xx, or error when no answer came).",
    ["provider", "outcome"],
    # Providers answer in tens to hundreds of milliseconds and are cut at 10 s by default.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def start_metrics_server(host: str, port: int) -> tuple[WSGIServer, int]:
    """Serve /metrics in a background thread; returns the server and the port it bound."""
    server, _thread = start_http_server(port, addr=host)
    return server, int(server.server_port)
