"""The DSS response cache, measured: provider calls saved, and the latency of a hit against a miss.

One process: a Redis of its own, the sandbox cnaf service with its calls counted, and a gateway
with its REST front and two cache keys. One client sends quotient familial calls one at a time
(so that each latency is a call's alone): ``--requests`` distinct requests (one person, as many
periods), each sent ``--repeats`` times, shuffled. The first call of a request is a miss, the
others hits. Then each request once more with ``Cache-Control: no-cache``: misses again, the
provider called. ``--provider-delay-ms`` holds each provider call that long, a stand-in for the
real upstream's latency (the sandbox answers from memory)::

    python -m bench.response_cache --requests 12 --repeats 10

The calls saved depend on how often the real traffic repeats a request within the lifetime,
which this workload sets by hand: read the figure as what the cache does, not as a forecast.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import uvloop

from devstack.processes import Issuer
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from gateway.settings import GatewaySettings
from runtime.logs import configure_logging
from runtime.server import GrpcServer, ServiceDefinition
from runtime.settings import LogFormat
from services.cnaf.app import CNAF
from services.cnaf.servicer import CnafServicer
from services.cnaf.settings import CnafSettings

QF = "/v3/dss/quotient_familial/identite"
QF_METHOD = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
RECIPIENT = "13002526500013"
PERSON: dict[str, str | list[str]] = {
    "nomNaissance": "LEFEBVRE",
    "prenoms[]": ["ALEXIS"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "1982",
    "moisDateNaissance": "12",
    "jourDateNaissance": "27",
    "codeCogInseePaysNaissance": "99100",
    "codeCogInseeCommuneNaissance": "08480",
    "recipient": RECIPIENT,
}
"""The sandbox's quotient familial household (README, "Sandbox population")."""


class CountingDelay(grpc.aio.ServerInterceptor):
    """Counts the provider's calls, and holds each ``delay`` seconds first."""

    def __init__(self, delay: float) -> None:
        self.calls = 0
        self.delay = delay

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Count the call, wait, and hand it on."""
        if details.method == QF_METHOD:
            self.calls += 1
            await asyncio.sleep(self.delay)
        return await continuation(details)


def _periods(count: int) -> list[dict[str, str]]:
    """``count`` distinct months the quotient familial rules accept, the last ones first."""
    month = dt.date.today().replace(day=1)
    periods = []
    for _ in range(count):
        month = (month - dt.timedelta(days=1)).replace(day=1)
        periods.append({"annee": str(month.year), "mois": str(month.month)})
    return periods


def _summary(latencies: list[float]) -> str:
    ms = sorted(latency * 1000 for latency in latencies)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"{len(ms)} calls, median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms"


async def _workload(
    http: httpx.AsyncClient, token: str, counting: CountingDelay, requests: int, repeats: int
) -> None:
    """Send the calls, then print what they measured."""
    headers = {"Authorization": f"Bearer {token}"}
    periods = _periods(requests + 1)
    # A first call off the workload warms the connections up (its period is never asked again).
    await http.get(QF, params={**PERSON, **periods.pop()}, headers=headers)
    order = [period for period in periods for _ in range(repeats)]
    random.Random(7).shuffle(order)  # noqa: S311 - a fixed order, no secret
    latencies: dict[str, list[float]] = {"true": [], "false": []}
    before = counting.calls
    for period in order:
        started = time.perf_counter()
        answer = await http.get(QF, params={**PERSON, **period}, headers=headers)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise SystemExit(f"the sandbox answered {answer.status_code}: {answer.text}")
        latencies[answer.headers["x-response-cached"]].append(elapsed)
    provider_calls = counting.calls - before
    bypassed: list[float] = []
    for period in periods:
        started = time.perf_counter()
        answer = await http.get(
            QF, params={**PERSON, **period}, headers={**headers, "Cache-Control": "no-cache"}
        )
        bypassed.append(time.perf_counter() - started)
        if answer.headers["x-response-cached"] != "false":
            raise SystemExit("Cache-Control: no-cache was served from the cache")
    delay_ms = counting.delay * 1000
    print(f"workload: {requests} distinct requests x {repeats}, shuffled; provider delay {delay_ms:g} ms")
    print(f"upstream calls: {provider_calls} for {len(order)} calls ({len(order) - provider_calls} saved)")
    print(f"hit  (X-Response-Cached: true):  {_summary(latencies['true'])}")
    print(f"miss (first call of a request):  {_summary(latencies['false'])}")
    print(f"miss (Cache-Control: no-cache):  {_summary(bypassed)}")


def _cnaf(counting: CountingDelay) -> GrpcServer:
    """The sandbox cnaf service, its calls counted."""
    settings = CnafSettings(grpc_host="127.0.0.1", grpc_port=0)
    backend = CNAF.backend(settings)
    servicer = CnafServicer(backend)
    return GrpcServer(
        settings,
        [ServiceDefinition(CNAF.service_name, lambda server: CNAF.add_servicer(servicer, server))],
        interceptors=[counting],
        on_shutdown=[backend.close],
    )


async def measure(requests: int, repeats: int, delay_ms: float) -> None:
    """Start Redis, the cnaf service and the gateway, run the workload, stop them."""
    redis_server = RedisProcess()
    redis_server.start()
    counting = CountingDelay(delay_ms / 1000)
    cnaf = _cnaf(counting)
    await cnaf.start()
    gateway = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as keys_dir:
            issuer = Issuer.create(Path(keys_dir), redis_server.url)
            token = issuer.issue(
                ["cnaf_quotient_familial", "cnaf_allocataires"], RECIPIENT, rate_limit=10_000
            )
            keys = ",".join(
                f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"
                for kid in ("bench-new", "bench-old")
            )
            values: dict[str, Any] = {
                "grpc_host": "127.0.0.1",
                "grpc_port": 0,
                "rest_host": "127.0.0.1",
                "rest_port": 0,
                "keys_dir": Path(keys_dir),
                "redis_url": redis_server.url,
                "journal_hmac_key": "bench-journal-key",
                "cnaf_address": f"127.0.0.1:{cnaf.port}",
                "response_cache_keys": keys,
            }
            gateway = build_server(GatewaySettings(**values))
            if not isinstance(gateway, GatewayServer):
                raise TypeError("build_server built no gateway")
            await gateway.start()
            if gateway.rest is None:
                raise RuntimeError("the gateway has no REST front")
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{gateway.rest.port}", timeout=30
            ) as http:
                await _workload(http, token.strip(), counting, requests, repeats)
    finally:
        if gateway is not None:
            await gateway.stop(0)
        await cnaf.stop(0)
        redis_server.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.response_cache``: run once and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.response_cache", description=__doc__)
    parser.add_argument("--requests", type=int, default=12, help="distinct requests (months), at most 23")
    parser.add_argument("--repeats", type=int, default=10, help="times each request is sent")
    parser.add_argument("--provider-delay-ms", type=float, default=0.0, help="held on each provider call")
    args = parser.parse_args(argv)
    configure_logging("warning", LogFormat.CONSOLE)
    uvloop.run(measure(args.requests, args.repeats, args.provider_delay_ms))


if __name__ == "__main__":
    main()
