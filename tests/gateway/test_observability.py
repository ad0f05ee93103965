"""Observability end to end: a real gateway, a real cnaf service on its upstream backend, a fake API-SECU.

The request id of a call is in the error the caller gets, in the provider's log
events and in the correlation id sent upstream; one call is one trace across the
three hops; both processes' /metrics show the calls, good and bad, without a
trace of the people asked about; and tracing off makes no span at all.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest
import redis.asyncio
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from devstack.redis import RedisProcess, free_port
from gateway.app import build_server
from gateway.ratelimit import RateLimiter
from runtime import tracing
from runtime.errors import ApiError
from runtime.logs import add_call_context
from runtime.server import GrpcServer
from services.cnaf.app import CNAF
from services.cnaf.settings import PRESTATIONS, CnafSettings
from tests.fake_provider import Answer, FakeProvider, json_answer
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import lefebvre_in_capitals
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"
QF_METHOD = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
QF_PATH = "/quotient_familial"
_ROOT = Path(__file__).resolve().parents[2]

# API-SECU's answer for the sandbox's CNAF household (the shape services/cnaf/upstream.py expects).
QF_ANSWER: dict[str, Any] = {
    "allocataires": [
        {"nom_naissance": "LEFEBVRE", "prenoms": "ALEXIS GÉRÔME", "date_naissance": "1982-12-27", "sexe": "F"}
    ],
    "enfants": [],
    "adresse": None,
    "quotient_familial": {"valeur": 2550, "annee": 2026, "mois": 3, "annee_calcul": 2026, "mois_calcul": 1},
}
GOOD = json_answer(QF_ANSWER, X_APISECU_FD="00810011")
DOWN = Answer(503, {"error": "maintenance"})
NOT_REGISTERED = json_answer({"errorCode": 40406}, status=404)


@dataclass
class Observed:
    """The running mesh and where to watch it."""

    gateway: GrpcServer
    cnaf: GrpcServer
    fake: FakeProvider
    channel: grpc.aio.Channel
    factory: TokenFactory

    async def quotient_familial(
        self, request_id: str | None = None, bearer: str | None = None
    ) -> cnaf_pb2.GetQuotientFamilialByIdentityResponse:
        metadata = [("authorization", bearer or self.factory.bearer()), ("x-recipient", RECIPIENT)]
        if request_id is not None:
            metadata.append(("x-request-id", request_id))
        stub = cnaf_pb2_grpc.CnafServiceStub(self.channel)
        return await stub.GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_in_capitals()),
            metadata=tuple(metadata),
        )

    async def failure(self, request_id: str | None = None, bearer: str | None = None) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self.quotient_familial(request_id, bearer)
        return caught.value


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A fake API-SECU with a working token endpoint."""
    with FakeProvider() as provider:
        provider.script(
            "/token", json_answer({"access_token": "T1", "token_type": "Bearer", "expires_in": 600})
        )
        yield provider


@pytest.fixture
async def observed(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey], fake: FakeProvider
) -> AsyncIterator[Observed]:
    """Gateway and cnaf (upstream backend on the fake), both with a metrics port."""
    directory, es, _ = keys_dir
    cnaf = CNAF.server(
        CnafSettings.model_validate(
            {
                "grpc_host": "127.0.0.1",
                "grpc_port": 0,
                "metrics_port": 0,
                "backend": "upstream",
                "upstream_base_url": fake.url,
                "upstream_token_url": f"{fake.url}/token",
                "upstream_clients": {name: {"client_id": name, "client_secret": "s"} for name in PRESTATIONS},
                "upstream_timeout_seconds": 2.0,
            }
        )
    )
    await cnaf.start()
    gateway = build_server(
        gateway_settings(
            directory,
            redis_server.url,
            metrics_port=0,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            c2s_address=f"127.0.0.1:{free_port()}",
        )
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    try:
        yield Observed(gateway, cnaf, fake, channel, TokenFactory(es))
    finally:
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


def error_info_metadata(error: grpc.aio.AioRpcError) -> dict[str, str]:
    return dict(rich_status(error).error_info.metadata)


async def scrape(port: int | None) -> str:
    assert port is not None, "the server has no metrics port"
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return response.text


def samples(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of the samples called ``name`` in a scrape."""
    return [
        dict(sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def sandbox_identifiers() -> set[str]:
    """Every name, first name, INE and identifiant of every provider's sandbox population."""
    found: set[str] = set()
    for path in _ROOT.glob("services/*/sandbox_population.json"):
        for person in json.loads(path.read_text())["persons"]:
            identity = person.get("identite") or {}
            found.update(filter(None, [identity.get("nomNaissance"), *identity.get("prenoms", [])]))
            found.update(filter(None, [person.get("ine"), person.get("identifiant")]))
    return found


# -- request id -------------------------------------------------------------------------------------


async def test_request_id_reaches_error_logs_and_upstream(observed: Observed) -> None:
    """The caller's id is in the error's ErrorInfo, the provider's log events and X-Correlation-ID."""
    observed.fake.script(QF_PATH, DOWN)
    # add_call_context as in production: the request id is the call's, not given to each event.
    with structlog.testing.capture_logs(processors=[add_call_context]) as events:
        error = await observed.failure("5c5c5c5c-0000-4000-8000-000000000042")
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert error_info_metadata(error) == {
        "code": "37001",
        "provider": "CNAV",
        "request_id": "5c5c5c5c-0000-4000-8000-000000000042",
        "title": "Service non disponible",
        "detail": "Service du fournisseur de données temporairement indisponible ou en maintenance.",
    }
    (upstream,) = observed.fake.to(QF_PATH)
    assert upstream.headers["x-correlation-id"] == "5c5c5c5c-0000-4000-8000-000000000042"
    provider_events = [e for e in events if e["event"] in ("upstream_failure", "call_refused")]
    assert {e["event"] for e in provider_events} == {"upstream_failure", "call_refused"}
    assert all(e["request_id"] == "5c5c5c5c-0000-4000-8000-000000000042" for e in provider_events)
    # Every event of the call, in both processes, carries it.
    assert all(e.get("request_id") == "5c5c5c5c-0000-4000-8000-000000000042" for e in events if "rpc" in e)


async def test_gateway_refusal_carries_a_generated_request_id(observed: Observed) -> None:
    """A refusal of the gateway itself names the call's id, generated when the caller sent none."""
    error = await observed.failure(bearer="Bearer not-a-token")
    trailers: dict[str, Any] = dict(cast("Any", error.trailing_metadata()) or ())
    assert error_info_metadata(error)["code"] == "00101"
    assert error_info_metadata(error)["request_id"] == trailers["x-request-id"]
    assert observed.fake.to(QF_PATH) == []


# -- traces -----------------------------------------------------------------------------------------


async def wait_for_spans(exporter: InMemorySpanExporter, count: int) -> tuple[ReadableSpan, ...]:
    for _ in range(100):
        finished = exporter.get_finished_spans()
        if len(finished) >= count:
            return finished
        await asyncio.sleep(0.01)
    return exporter.get_finished_spans()


async def test_one_call_is_one_trace_from_gateway_to_upstream(
    observed: Observed, spans: InMemorySpanExporter
) -> None:
    """Gateway server span → gateway client span → cnaf server span → HTTP spans, one trace id."""
    observed.fake.script(QF_PATH, GOOD)
    answer = await observed.quotient_familial("11111111-1111-4111-8111-111111111111")
    assert answer.data.quotient_familial.valeur == 2550
    # Gateway SERVER and CLIENT, cnaf SERVER, cnaf's two HTTP exchanges (token, then the data).
    finished = await wait_for_spans(spans, 5)
    assert len(finished) == 5
    assert len({span.context.trace_id for span in finished}) == 1
    by_id = {span.context.span_id: span for span in finished}

    def parent_of(span: ReadableSpan) -> ReadableSpan | None:
        return by_id.get(span.parent.span_id) if span.parent is not None else None

    servers = [s for s in finished if s.kind is SpanKind.SERVER]
    (gateway_server,) = [s for s in servers if s.parent is None]
    (cnaf_server,) = [s for s in servers if s.parent is not None]
    gateway_client = parent_of(cnaf_server)
    assert gateway_client is not None and gateway_client.kind is SpanKind.CLIENT
    assert parent_of(gateway_client) is gateway_server
    http = sorted((s for s in finished if s.name in ("GET", "POST")), key=lambda s: s.start_time or 0)
    assert [s.name for s in http] == ["POST", "GET"]
    assert all(parent_of(s) is cnaf_server for s in http)

    for span in (gateway_server, gateway_client, cnaf_server):
        assert span.name == QF_METHOD.lstrip("/")
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.method"] == "GetQuotientFamilialByIdentity"
        assert span.attributes["rpc.grpc.status_code"] == 0
    assert gateway_client.attributes is not None
    assert gateway_client.attributes["peer.service"] == "cnaf"
    for span in (gateway_server, cnaf_server):
        assert span.attributes is not None
        assert span.attributes["apiparticulier.request_id"] == "11111111-1111-4111-8111-111111111111"
    get = http[1]
    assert get.attributes is not None
    assert get.attributes["http.response.status_code"] == 200
    assert get.attributes["apiparticulier.provider"] == "CNAV"

    # The fake provider got the trace context of the GET span.
    (upstream,) = observed.fake.to(QF_PATH)
    version, trace_id, parent_id, _flags = upstream.headers["traceparent"].split("-")
    assert (version, int(trace_id, 16), int(parent_id, 16)) == (
        "00",
        get.context.trace_id,
        get.context.span_id,
    )

    # No personal data on any span: neither the names, the birth date nor the query string.
    rendered = " ".join(f"{s.name} {dict(s.attributes or {})}" for s in finished)
    for value in ("LEFEBVRE", "ALEXIS", "GÉRÔME", "1982-12", "nomNaissance", "?"):
        assert value not in rendered


async def test_failed_call_trace_records_status_and_code(
    observed: Observed, spans: InMemorySpanExporter
) -> None:
    """A provider refusal is on both server spans and the client span: gRPC status and API code."""
    observed.fake.script(QF_PATH, NOT_REGISTERED)
    error = await observed.failure("22222222-2222-4222-8222-222222222222")
    assert error.code() is grpc.StatusCode.NOT_FOUND
    finished = await wait_for_spans(spans, 5)
    rpc_spans = [s for s in finished if s.name == QF_METHOD.lstrip("/")]
    assert len(rpc_spans) == 3
    for span in rpc_spans:
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
        assert span.attributes["apiparticulier.code"] == "35003"


async def test_tracing_off_makes_no_span(observed: Observed, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no tracer installed (the default), no span or context object is made on the call path."""
    assert tracing.active_tracer() is None
    made: list[str] = []

    def counting(name: str, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            made.append(name)
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(ReadableSpan, "__init__", counting("sdk span", ReadableSpan.__init__))
    monkeypatch.setattr(
        trace.NonRecordingSpan, "__init__", counting("non-recording span", trace.NonRecordingSpan.__init__)
    )
    monkeypatch.setattr(otel_context, "attach", counting("context attach", otel_context.attach))
    observed.fake.script(QF_PATH, GOOD, DOWN)
    await observed.quotient_familial("33333333-3333-4333-8333-333333333333")
    await observed.failure("untraced-2")
    assert made == []
    assert all("traceparent" not in request.headers for request in observed.fake.received)


# -- metrics ----------------------------------------------------------------------------------------


async def test_metrics_of_gateway_and_provider(observed: Observed) -> None:
    """Both /metrics show calls, latencies, rate limiting, provider and upstream errors; no identity."""
    observed.fake.script(QF_PATH, GOOD, DOWN, NOT_REGISTERED)
    await observed.quotient_familial()
    assert (await observed.failure()).code() is grpc.StatusCode.UNAVAILABLE
    assert (await observed.failure()).code() is grpc.StatusCode.NOT_FOUND
    assert (await observed.failure(bearer="Bearer nope")).code() is grpc.StatusCode.UNAUTHENTICATED

    gateway_text = await scrape(observed.gateway.metrics_port)
    cnaf_text = await scrape(observed.cnaf.metrics_port)
    for text in (gateway_text, cnaf_text):
        calls = samples(text, "grpc_server_handled_total")
        for status, code in (("OK", ""), ("UNAVAILABLE", "37001"), ("NOT_FOUND", "35003")):
            assert {"grpc_method": QF_METHOD, "grpc_code": status, "api_code": code} in calls
        assert {"grpc_method": QF_METHOD, "le": "0.1"} in samples(text, "grpc_server_handling_seconds_bucket")
        assert samples(text, "grpc_server_in_flight") == [{}]
        assert {"provider": "CNAV", "outcome": "2xx"} in samples(text, "upstream_request_seconds_count")
        assert {"provider": "CNAV", "outcome": "5xx"} in samples(text, "upstream_request_seconds_count")
        assert {"provider": "CNAV", "kind": "provider_unavailable"} in samples(text, "upstream_errors_total")
        assert {"provider": "cnaf", "grpc_code": "UNAVAILABLE", "api_code": "37001"} in samples(
            text, "gateway_provider_errors_total"
        )
        assert {"provider": "cnaf", "grpc_code": "NOT_FOUND", "api_code": "35003"} in samples(
            text, "gateway_provider_errors_total"
        )
        assert {"grpc_method": QF_METHOD, "grpc_code": "UNAUTHENTICATED", "api_code": "00101"} in calls
        assert {"source": "redis", "result": "allowed"} in samples(text, "gateway_rate_limit_decisions_total")
        assert {"outcome": "ok"} in samples(text, "gateway_rate_limit_redis_seconds_count")
        assert samples(text, "gateway_rate_limit_redis_errors_total") == [{}]
        assert samples(text, "gateway_rate_limit_redis_breaker_open") == [{}]
        # One state set per provider service: exactly one of ok, bad_gateway, unknown is 1.
        availability = [
            (sample.labels["provider"], sample.labels["state"], sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "gateway_provider_availability"
        ]
        assert {provider for provider, _, _ in availability} >= {"cnaf", "c2s", "mesr"}
        for provider in ("cnaf", "c2s"):
            states = {state: value for name, state, value in availability if name == provider}
            assert set(states) == {"ok", "bad_gateway", "unknown"} and sum(states.values()) == 1
        assert ("cnaf", "ok", 1.0) in availability  # it answered the last call it got

        # Whole words only: a name must not match inside a float or a method name.
        for identifier in (*sandbox_identifiers(), "08480", "1982", RECIPIENT):
            pattern = rf"(?<![\w.]){re.escape(identifier)}(?![\w.])"
            assert re.search(pattern, text, re.IGNORECASE) is None, identifier


async def test_rate_limiter_redis_latency_and_breaker() -> None:
    """Each Redis round trip is timed by outcome; the breaker gauge is 1 while Redis is away, 0 after."""
    now = [0.0]
    away = RedisProcess()  # not started yet: Redis is away
    settings = gateway_settings(Path(), away.url, redis_timeout_seconds=0.2, redis_retry_seconds=1.0)
    client = redis.asyncio.Redis.from_url(away.url, socket_connect_timeout=0.2)
    limiter = RateLimiter(client, settings, clock=lambda: now[0])
    errors = REGISTRY.get_sample_value("gateway_rate_limit_redis_errors_total") or 0.0
    failed = REGISTRY.get_sample_value("gateway_rate_limit_redis_seconds_count", {"outcome": "error"}) or 0.0
    ok = REGISTRY.get_sample_value("gateway_rate_limit_redis_seconds_count", {"outcome": "ok"}) or 0.0
    try:
        with pytest.raises(ApiError):
            await limiter.check("9b2f7a40-0000-4000-8000-000000000001", 0)
        assert REGISTRY.get_sample_value("gateway_rate_limit_redis_breaker_open") == 1
        assert REGISTRY.get_sample_value("gateway_rate_limit_redis_errors_total") == errors + 1
        assert (
            REGISTRY.get_sample_value("gateway_rate_limit_redis_seconds_count", {"outcome": "error"})
            == failed + 1
        )
        # Redis is back: past the retry delay, the next call probes it and closes the breaker.
        away.start()
        now[0] += 1.5
        assert (await limiter.check("9b2f7a40-0000-4000-8000-000000000001", 0)).allowed
        assert REGISTRY.get_sample_value("gateway_rate_limit_redis_breaker_open") == 0
        assert (
            REGISTRY.get_sample_value("gateway_rate_limit_redis_seconds_count", {"outcome": "ok"}) == ok + 1
        )
    finally:
        await limiter.close()
        await client.aclose()
        away.close()
