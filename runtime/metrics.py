"""Prometheus metrics of a gRPC process, served on their own port, never on the gRPC one.

Labels are method names, status names and API Particulier error codes: bounded
sets that never carry personal data.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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


def start_metrics_server(host: str, port: int) -> tuple[WSGIServer, int]:
    """Serve /metrics in a background thread; returns the server and the port it bound."""
    server, _thread = start_http_server(port, addr=host)
    return server, int(server.server_port)
