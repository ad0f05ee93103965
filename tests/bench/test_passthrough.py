"""The pass-through proxy forwards bytes and statuses unchanged, and only to loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from bench.passthrough import PassThrough, main
from bench.suite import lefebvre


@pytest.fixture
async def proxied(cnaf_address: str) -> AsyncIterator[cnaf_pb2_grpc.CnafServiceAsyncStub]:
    """A cnaf stub whose calls go through a pass-through proxy on port 0."""
    proxy = PassThrough(cnaf_address)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((proxy,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield cnaf_pb2_grpc.CnafServiceStub(channel)
    finally:
        await channel.close(grace=None)
        await server.stop(0)
        await proxy.close()


async def test_answers_come_back_as_the_provider_sent_them(
    proxied: cnaf_pb2_grpc.CnafServiceAsyncStub,
) -> None:
    """The quotient familial of the sandbox person comes back through the proxy."""
    response = await proxied.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre())
    )
    assert response.data.quotient_familial.fournisseur == "CNAF"


async def test_errors_keep_their_status_and_details(proxied: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """A refusal of the provider reaches the caller with its status and rich details."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await proxied.GetQuotientFamilialByIdentity(cnaf_pb2.GetQuotientFamilialByIdentityRequest())
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    keys = [pair[0] for pair in raised.value.trailing_metadata() or ()]
    assert "grpc-status-details-bin" in keys


def test_upstreams_must_be_loopback() -> None:
    """The proxy refuses to forward anywhere but this machine."""
    with pytest.raises(ValueError, match="loopback"):
        main(["--port", "1", "--upstream", "10.1.2.3:50061"])
