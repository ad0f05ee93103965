"""Metrics of the shared runtime and the upstream client, and the request id in every error."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, cast

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.errors import ApiError, ErrorSource, internal_error, provider_not_found
from runtime.interceptors import error_trailers
from runtime.server import GrpcServer
from runtime.upstream import UpstreamClient
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.conftest import running
from tests.fake_provider import Answer, FakeProvider, closed_port
from tests.people import lefebvre_briefly
from tests.rich_status import rich_status

QF = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
PROVIDER = ErrorSource("99", "TEST_PROVIDER")
CALLER = Caller(recipient="13002526500013", request_id="req-metrics", time_remaining=5.0)


def person(name: str, first: str, birth: tuple[int, int, int], sex: str) -> identity_pb2.IdentityPivot:
    return identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=[first],
        annee_date_naissance=birth[0],
        mois_date_naissance=birth[1],
        jour_date_naissance=birth[2],
        sexe_etat_civil=sex,
        code_cog_insee_pays_naissance="99100",
    )


LEFEBVRE = lefebvre_briefly()
INCONNU = person("INCONNU", "PAUL", (1990, 1, 1), "M")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def server() -> GrpcServer:
    return CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0))


# -- the call boundary ------------------------------------------------------------------------------


async def test_calls_latency_and_in_flight_by_method_status_and_code() -> None:
    """Each call is counted by method, status and code, and timed; in-flight is back to 0 after."""
    before = {
        status: value("grpc_server_handled_total", grpc_method=QF, grpc_code=status, api_code=code)
        for status, code in (("OK", ""), ("NOT_FOUND", "35003"), ("INVALID_ARGUMENT", "00400"))
    }
    timed = value("grpc_server_handling_seconds_count", grpc_method=QF)
    cnaf = server()
    async with running(cnaf) as channel:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        await stub.GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=LEFEBVRE)
        )
        for identity in (INCONNU, identity_pb2.IdentityPivot(nom_naissance="X")):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetQuotientFamilialByIdentity(
                    cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=identity)
                )
        async with httpx.AsyncClient() as client:
            scrape = (await client.get(f"http://127.0.0.1:{cnaf.metrics_port}/metrics")).text
    for status, code in (("OK", ""), ("NOT_FOUND", "35003"), ("INVALID_ARGUMENT", "00400")):
        after = value("grpc_server_handled_total", grpc_method=QF, grpc_code=status, api_code=code)
        assert after == before[status] + 1, status
    assert value("grpc_server_handling_seconds_count", grpc_method=QF) == timed + 3
    assert value("grpc_server_in_flight") == 0
    # The same series, served on the metrics port in the Prometheus text format.
    names = {sample.name for family in text_string_to_metric_families(scrape) for sample in family.samples}
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "grpc_server_in_flight",
    } <= names
    assert "LEFEBVRE" not in scrape and "INCONNU" not in scrape


# -- the request id in every error -----------------------------------------------------------------


async def test_errors_name_the_callers_request_id_or_the_generated_one() -> None:
    """The ErrorInfo metadata holds the call's request id: the caller's, or the one made for the call."""
    async with running(server()) as channel:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=INCONNU)
        with pytest.raises(grpc.aio.AioRpcError) as given:
            await stub.GetQuotientFamilialByIdentity(
                request, metadata=(("x-request-id", "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),)
            )
        with pytest.raises(grpc.aio.AioRpcError) as generated:
            await stub.GetQuotientFamilialByIdentity(request)
    assert (
        dict(rich_status(given.value).error_info.metadata)["request_id"]
        == "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    )
    trailers: dict[str, Any] = dict(cast("Any", generated.value.trailing_metadata()) or ())
    assert rich_status(generated.value).error_info.metadata["request_id"] == trailers["x-request-id"]


def error_info(trailers: tuple[tuple[str, str | bytes], ...]) -> error_details_pb2.ErrorInfo:
    (details,) = [v for k, v in trailers if k == "grpc-status-details-bin"]
    assert isinstance(details, bytes)
    for detail in status_pb2.Status.FromString(details).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def test_error_trailers_add_the_request_id_and_keep_the_rest() -> None:
    """The id joins code and provider in ErrorInfo; other details and trailers are left as they were."""
    error = dataclasses.replace(
        provider_not_found(PROVIDER, "absent"), extra_metadata=(("retry-after", "1"),)
    )
    trailers = error_trailers(error, "req-1")
    assert dict(error_info(trailers).metadata) == {
        "code": "99003",
        "provider": "TEST_PROVIDER",
        "request_id": "req-1",
        "title": "Entité non trouvée",
        "detail": "absent",
    }
    assert ("retry-after", "1") in trailers
    assert dict(error_info(error_trailers(internal_error(), "req-2")).metadata) == {
        "code": "00000",
        "request_id": "req-2",
        "title": "Erreur interne",
        "detail": "Une erreur interne est survenue. L'équipe technique a été notifiée.",
    }


def test_an_id_already_in_the_details_is_kept() -> None:
    """A provider's error passed through keeps the id it holds (the gateway forwarded the same one)."""
    stamped = error_trailers(provider_not_found(PROVIDER, "absent"), "from-provider")

    @dataclasses.dataclass(eq=False)
    class PassedThroughError(ApiError):
        def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
            return stamped

    error = PassedThroughError(grpc.StatusCode.NOT_FOUND, "99003", "NOT_FOUND", "", "")
    assert error_info(error_trailers(error, "at-gateway")).metadata["request_id"] == "from-provider"


# -- the upstream client ---------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


async def test_upstream_latency_by_status_class_and_errors_by_kind(fake: FakeProvider) -> None:
    """Each exchange is timed by status class; each failure counted by kind, under the provider's name."""
    fake.script("/ok", Answer(200, {"ok": True}))
    fake.script("/down", Answer(503, {}))
    fake.script("/slow", Answer(200, {}, delay=1.0))
    labels = {"provider": "TEST_PROVIDER"}
    before = {
        "2xx": value("upstream_request_seconds_count", outcome="2xx", **labels),
        "5xx": value("upstream_request_seconds_count", outcome="5xx", **labels),
        "error": value("upstream_request_seconds_count", outcome="error", **labels),
        "provider_unavailable": value("upstream_errors_total", kind="provider_unavailable", **labels),
        # httpx's read timeout and the budget's own end race; either names the failure.
        "timeout": value("upstream_errors_total", kind="timeout", **labels)
        + value("upstream_errors_total", kind="deadline", **labels),
        "econnrefused": value("upstream_errors_total", kind="econnrefused", **labels),
    }
    client = UpstreamClient(PROVIDER, fake.url, timeout_seconds=0.2)
    refused = UpstreamClient(PROVIDER, f"http://127.0.0.1:{closed_port()}")
    try:
        assert (await client.send("GET", "/ok", CALLER)).status_code == 200
        client.error_for_status(await client.send("GET", "/down", CALLER))
        with pytest.raises(Exception, match="99002"):
            await client.send("GET", "/slow?nom=LEFEBVRE", CALLER)
        with pytest.raises(Exception, match="99001"):
            await refused.send("GET", "/ok", CALLER)
    finally:
        await client.close()
        await refused.close()
    assert value("upstream_request_seconds_count", outcome="2xx", **labels) == before["2xx"] + 1
    assert value("upstream_request_seconds_count", outcome="5xx", **labels) == before["5xx"] + 1
    # The refused connection, and the slow answer when httpx's own timeout ended it first.
    assert value("upstream_request_seconds_count", outcome="error", **labels) in (
        before["error"] + 1,
        before["error"] + 2,
    )
    for kind in ("provider_unavailable", "econnrefused"):
        assert value("upstream_errors_total", kind=kind, **labels) == before[kind] + 1, kind
    timeouts = value("upstream_errors_total", kind="timeout", **labels) + value(
        "upstream_errors_total", kind="deadline", **labels
    )
    assert timeouts == before["timeout"] + 1
