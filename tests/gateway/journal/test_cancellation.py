"""A call its caller gives up is CANCELLED everywhere: the journal's row and the metrics, gRPC and REST.

The provider (a c2s stand-in) takes 10 s to answer ``LENT``; the caller gives up after a
fraction of a second, by cancelling its gRPC call or by closing its HTTP connection. The
gateway must then cancel the provider call, journal the call CANCELLED (not OK, as if the
data had been delivered) and count it so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from devstack.postgres import PostgresProcess
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from runtime.server import GrpcServer, ServiceDefinition
from services.common.settings import ProviderSettings
from tests.gateway.conftest import RecordingC2s, gateway_settings
from tests.gateway.journal.conftest import SigningKey as JournalKey
from tests.gateway.journal.conftest import fresh_database
from tests.gateway.tokens import SigningKey, TokenFactory

C2S_SERVICE = c2s_pb2.DESCRIPTOR.services_by_name["C2sService"].full_name
C2S_METHOD = f"/{C2S_SERVICE}/GetComplementaireSanteSolidaireByIdentity"
C2S_PATH = "/v3/dss/complementaire_sante_solidaire/identite"
RECIPIENT = "13002526500013"
GIVE_UP_SECONDS = 0.5


@dataclass
class SlowMesh:
    gateway: GatewayServer
    database_url: str
    factory: TokenFactory


@pytest.fixture(scope="module")
async def slow(
    redis_server: RedisProcess,
    postgres_server: PostgresProcess,
    keys_dir: tuple[Path, SigningKey, SigningKey],
    journal_key: JournalKey,
) -> AsyncIterator[SlowMesh]:
    """A gateway journalling to a database of its own, before a c2s that answers ``LENT`` in 10 s."""
    directory, es, _ = keys_dir
    c2s = GrpcServer(
        ProviderSettings(grpc_host="127.0.0.1", grpc_port=0),
        [
            ServiceDefinition(
                C2S_SERVICE,
                lambda server: c2s_pb2_grpc.add_C2sServiceServicer_to_server(RecordingC2s(), server),
            )
        ],
    )
    await c2s.start()
    with fresh_database(postgres_server) as url:
        gateway = build_server(
            gateway_settings(
                directory,
                redis_server.url,
                c2s_address=f"127.0.0.1:{c2s.port}",
                journal_database_url=url,
                journal_signing_key_file=journal_key.private,
                journal_flush_seconds=0.01,
                rest_host="127.0.0.1",
                rest_port=0,
            )
        )
        assert isinstance(gateway, GatewayServer)
        await gateway.start()
        try:
            yield SlowMesh(gateway, url, TokenFactory(es, scopes=["complementaire_sante_solidaire"]))
        finally:
            await gateway.stop(0)
            await c2s.stop(0)


async def journal_row(url: str, request_id: str) -> tuple[str, str]:
    """The status and code of the call's journal row, once written (within 10 s)."""
    written_by = time.monotonic() + 10
    while time.monotonic() < written_by:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT status, code FROM journal.calls WHERE request_id = %s", (request_id,)
            ).fetchone()
        if row is not None:
            return row[0], row[1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no journal row for {request_id}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_grpc_caller_who_cancels_leaves_a_cancelled_row_and_count(slow: SlowMesh) -> None:
    """A gRPC call cancelled by its caller: journalled CANCELLED, counted grpc_code="CANCELLED"."""
    request_id = str(uuid.uuid4())
    labels = {"grpc_method": C2S_METHOD, "grpc_code": "CANCELLED", "api_code": ""}
    before = sample("grpc_server_handled_total", **labels)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{slow.gateway.port}") as channel:
        stub = c2s_pb2_grpc.C2sServiceStub(channel)
        request = c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest()
        request.identite.nom_naissance = "LENT"
        call = stub.GetComplementaireSanteSolidaireByIdentity(
            request,
            metadata=(
                ("authorization", f"Bearer {slow.factory.token()}"),
                ("x-recipient", RECIPIENT),
                ("x-request-id", request_id),
            ),
        )
        await asyncio.sleep(GIVE_UP_SECONDS)
        call.cancel()
    assert await journal_row(slow.database_url, request_id) == ("CANCELLED", "")
    # The gateway's boundary and the provider's (in this process too, same method): the call
    # the gateway forwarded was cancelled with it.
    assert sample("grpc_server_handled_total", **labels) == before + 2


async def test_a_rest_caller_who_hangs_up_cancels_the_provider_call(slow: SlowMesh) -> None:
    """A REST caller closing its connection mid-call: journalled CANCELLED, counted 499, not OK."""
    assert slow.gateway.rest is not None
    request_id = str(uuid.uuid4())
    labels = {"http_route": C2S_PATH, "http_request_method": "GET"}
    before = sample("http_server_requests_total", **labels, http_response_status_code="499")
    ok_before = sample("http_server_requests_total", **labels, http_response_status_code="200")
    provider = {"grpc_method": C2S_METHOD, "grpc_code": "CANCELLED", "api_code": ""}
    provider_before = sample("grpc_server_handled_total", **provider)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{slow.gateway.rest.port}") as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(
                C2S_PATH,
                params={"nomNaissance": "LENT", "recipient": RECIPIENT},
                headers={"Authorization": f"Bearer {slow.factory.token()}", "X-Request-ID": request_id},
                timeout=GIVE_UP_SECONDS,
            )
    # Well before the provider's 10 s: the call was cancelled, not completed.
    assert await journal_row(slow.database_url, request_id) == ("CANCELLED", "")
    assert sample("http_server_requests_total", **labels, http_response_status_code="499") == before + 1
    assert sample("http_server_requests_total", **labels, http_response_status_code="200") == ok_before
    # The provider call was cancelled with it, well before its 10 s.
    assert sample("grpc_server_handled_total", **provider) == provider_before + 1
