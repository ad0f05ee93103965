"""Tracing in the shared runtime: off by default, set up from settings, one SERVER span per call."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from gateway.settings import GatewaySettings
from runtime import tracing
from runtime.settings import ServerSettings, TracesExporter
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from services.france_travail.settings import FranceTravailSettings
from tests.conftest import running
from tests.people import lefebvre_briefly

QF = "apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


def person(name: str, first: str, birth: tuple[int, int, int], sex: str) -> identity_pb2.IdentityPivot:
    """A sandbox person of the cnaf service."""
    return identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=[first],
        annee_date_naissance=birth[0],
        mois_date_naissance=birth[1],
        jour_date_naissance=birth[2],
        sexe_etat_civil=sex,
        code_cog_insee_pays_naissance="99100",
    )


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


@pytest.fixture
def clean_tracing() -> Iterator[None]:
    """Whatever the test configures is gone afterwards."""
    assert tracing.active_tracer() is None
    try:
        yield
    finally:
        tracing.shutdown()


def test_off_by_default(clean_tracing: None) -> None:
    """The default settings trace nothing: configuring from them installs no tracer."""
    settings = ServerSettings()
    assert settings.otel_traces_exporter is TracesExporter.NONE
    tracing.configure_tracing(settings)
    assert tracing.active_tracer() is None


@pytest.mark.parametrize("exporter", ["console", "otlp"])
def test_exporter_from_the_environment(
    clean_tracing: None, monkeypatch: pytest.MonkeyPatch, exporter: str
) -> None:
    """OTEL_TRACES_EXPORTER turns tracing on; the service name comes from the process's settings."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", exporter)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    settings = CnafSettings()
    assert settings.otel_traces_exporter.value == exporter
    tracing.configure_tracing(settings)
    assert tracing.active_tracer() is not None
    provider = tracing._STATE.provider
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "cnaf"
    assert "0.25" in provider.sampler.get_description()
    tracing.shutdown()
    assert tracing.active_tracer() is None


def test_an_installed_tracer_is_kept(spans: InMemorySpanExporter) -> None:
    """A process (or test) that installed its own tracer keeps it when a server configures tracing."""
    installed = tracing.active_tracer()
    tracing.configure_tracing(ServerSettings(otel_traces_exporter=TracesExporter.CONSOLE))
    assert tracing.active_tracer() is installed


def test_service_names() -> None:
    """Each process is named after its settings class, unless OTEL_SERVICE_NAME says otherwise."""
    assert tracing.default_service_name(GatewaySettings()) == "gateway"
    assert tracing.default_service_name(FranceTravailSettings()) == "france_travail"
    assert tracing.default_service_name(ServerSettings()) == "apiparticulier"


async def test_server_span_continues_the_callers_trace(spans: InMemorySpanExporter) -> None:
    """A call carrying a traceparent gets a SERVER span in that trace, under the caller's span."""
    async with running(CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        await cnaf_pb2_grpc.CnafServiceStub(channel).GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_briefly()),
            metadata=(("traceparent", TRACEPARENT), ("x-request-id", "8b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e")),
        )
    (span,) = spans.get_finished_spans()
    assert (span.name, span.kind) == (QF, SpanKind.SERVER)
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None and span.parent.span_id == PARENT_ID and span.parent.is_remote
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "apiparticulier.cnaf.v1.CnafService",
        "rpc.method": "GetQuotientFamilialByIdentity",
        "rpc.grpc.status_code": 0,
        "apiparticulier.request_id": "8b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_refusals_and_failures_on_the_span(spans: InMemorySpanExporter) -> None:
    """A refusal records its status and code without marking the span failed; a server fault marks it."""
    async with running(CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        for identity in (
            person("INCONNU", "PAUL", (1990, 1, 1), "M"),
            person("INDISPONIBLE", "LUCIE", (1985, 7, 14), "F"),
        ):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetQuotientFamilialByIdentity(
                    cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=identity)
                )
    not_found, unavailable = spans.get_finished_spans()
    assert not_found.parent is None  # no traceparent: a new trace
    assert not_found.attributes is not None and unavailable.attributes is not None
    assert not_found.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert not_found.attributes["apiparticulier.code"] == "35003"
    assert not_found.status.status_code is StatusCode.UNSET
    assert unavailable.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert unavailable.attributes["apiparticulier.code"] == "37001"
    assert unavailable.status.status_code is StatusCode.ERROR
    # The identity asked about is nowhere on the spans.
    for span in (not_found, unavailable):
        for value in ("INCONNU", "INDISPONIBLE", "PAUL", "LUCIE"):
            assert value not in span.to_json()


async def test_a_malformed_traceparent_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    """Garbage in traceparent is ignored: the call is served and traced in a trace of its own."""
    async with running(CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        await cnaf_pb2_grpc.CnafServiceStub(channel).GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_briefly()),
            metadata=(("traceparent", "00-not-a-trace-01"),),
        )
    (span,) = spans.get_finished_spans()
    assert span.parent is None and span.context.trace_id != TRACE_ID
