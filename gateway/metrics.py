"""The gateway's own Prometheus series, beside the call boundary's (`runtime.metrics`).

The rate limiter registers its own in `gateway.ratelimit`. docs/OBSERVABILITY.md
lists every series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PROVIDER_ERRORS = Counter(
    "gateway_provider_errors",
    "Failed calls from the gateway to a provider service, by provider service, gRPC status and "
    "API Particulier code (the provider's own refusals and the gateway's PP001/PP002/PP999).",
    ["provider", "grpc_code", "api_code"],
)

HTTP_REQUESTS = Counter(
    "http_server_requests",
    "Requests the REST front answered, by route template, method and HTTP status (499: the caller "
    "closed its connection before the answer, and its call was cancelled).",
    ["http_route", "http_request_method", "http_response_status_code"],
)
HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time to answer a REST request, by route template and method.",
    ["http_route", "http_request_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
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
