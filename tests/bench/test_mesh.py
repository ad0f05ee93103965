"""What the benchmark reads of a gateway's metrics: its Redis round trips."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from bench.mesh import REDIS_ROUND_TRIP, redis_round_trips


def test_the_successful_round_trips_are_summed_and_counted() -> None:
    registry = CollectorRegistry()
    latency = Histogram(REDIS_ROUND_TRIP, "Redis round trips.", ["outcome"], registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        address = f"127.0.0.1:{server.server_port}"
        assert redis_round_trips(address) == (0.0, 0)
        latency.labels("ok").observe(0.002)
        latency.labels("ok").observe(0.004)
        latency.labels("error").observe(0.25)  # a failure is no round trip of a call served
        spent, made = redis_round_trips(address)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert made == 2
    assert spent == pytest.approx(0.006)
