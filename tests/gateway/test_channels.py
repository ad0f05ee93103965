"""The gateway's channels to a real provider stopped and started again on the same port.

Found by a fault drill: once the provider served again, the gateway still answered
37001 (provider unavailable) for 1.6 to 3.9 s, the library's reconnection backoff.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess, free_port
from gateway.app import build_server
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.rich_status import rich_status

OUTAGE_SECONDS = 6.0


async def outcome(stub: cnaf_pb2_grpc.CnafServiceAsyncStub, header: str) -> str:
    try:
        await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(header), timeout=2)
    except grpc.aio.AioRpcError as error:
        return rich_status(error).api_code
    return "OK"


async def test_a_provider_serving_again_is_reached_within_a_second(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> None:
    """Down for 6 s (long enough for the backoff to grow), then back on its port: served within 1 s."""
    directory, es256, _ = keys_dir
    port = free_port()
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=port))
    await cnaf.start()
    gateway = build_server(gateway_settings(directory, redis_server.url, cnaf_address=f"127.0.0.1:{port}"))
    await gateway.start()
    header = TokenFactory(es256).bearer(rate_limit=RATE_LIMIT_MAX_PER_SECOND)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = cnaf_pb2_grpc.CnafServiceStub(channel)
            assert await outcome(stub, header) == "OK"
            await cnaf.stop(0)
            down_until = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < down_until:
                assert await outcome(stub, header) == "37001"
                await asyncio.sleep(0.2)
            cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=port))
            await cnaf.start()
            back_at = time.monotonic()
            while (answer := await outcome(stub, header)) != "OK":
                assert answer == "37001"
                assert time.monotonic() - back_at < 1.0, "the provider serving again was not reached in 1 s"
                await asyncio.sleep(0.02)
    finally:
        await gateway.stop(0)
        await cnaf.stop(0)
