"""Prometheus metrics of a gRPC process, served on their own port, never on the gRPC one.

Every process of the mesh registers the metrics of this module (the gateway adds
its rate limiter's, in `gateway.ratelimit`). Labels are method names, gRPC status
names, API Particulier error codes, provider names and error kinds: bounded sets
that never carry personal data. docs/OBSERVABILITY.md lists every series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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

# -- the gateway: answers of the provider services -------------------------------------------------

PROVIDER_ERRORS = Counter(
    "gateway_provider_errors",
    "Failed calls from the gateway to a provider service, by provider service, gRPC status and "
    "API Particulier code (the provider's own refusals and the gateway's PP001/PP002/PP999).",
    ["provider", "grpc_code", "api_code"],
)

AVAILABILITY_STATES = ("ok", "bad_gateway", "unknown")
"""The states of `report_availability`, as the gateway's availability pings name them."""

AvailabilitySource = Callable[[], Iterable[tuple[str, str]]]


class _AvailabilityCollector(Collector):
    """``gateway_provider_availability``, read from the gateway's tracker at each scrape."""

    def __init__(self) -> None:
        self.source: AvailabilitySource | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gateway_provider_availability",
            "Availability of each provider service as the gateway sees it (health watch and call "
            "outcomes): 1 for its current state (ok, bad_gateway, unknown), 0 for the others.",
            labels=["provider", "state"],
        )
        source = self.source
        if source is not None:
            for provider, current in source():
                for state in AVAILABILITY_STATES:
                    family.add_metric([provider, state], 1.0 if state == current else 0.0)
        yield family


_AVAILABILITY = _AvailabilityCollector()
REGISTRY.register(_AVAILABILITY)


def report_availability(source: AvailabilitySource | None) -> None:
    """Publish provider availability from ``source``, called at each scrape.

    One source per process: a later call replaces the earlier one (tests build
    several gateways in one process; each scrape must hold one series per provider).

    Args:
        source: Gives ``(provider, state)`` pairs, the state one of `AVAILABILITY_STATES`;
            None stops publishing.
    """
    _AVAILABILITY.source = source


# -- provider services: the upstream HTTP APIs -----------------------------------------------------

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
