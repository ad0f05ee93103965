"""The keepalive the mesh's servers accept: the mesh's own channels' pings, but not a flood of them.

The gateway's channels that the servers keep are in tests/gateway/test_channels.py.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.keepalive import KEEPALIVE, Keepalive
from runtime.server import GrpcServer
from runtime.settings import ServerSettings

# grpc-core's channels ping at most once a second: 15 times what the mesh's servers accept.
EVERY_SECOND = Keepalive(interval_seconds=1.0, timeout_seconds=1.0)


@pytest.mark.timing
async def test_a_caller_pinging_too_often_loses_its_connection() -> None:
    """A caller of a server of the mesh (a client of the gateway) pinging every second: GOAWAY.

    ``MAX_PING_STRIKES`` of its pings too soon pass, the next one brings the GOAWAY, which
    breaks the caller's stream: the servers accept the mesh's keepalive, not any.
    """
    assert KEEPALIVE.interval_seconds / 2 > EVERY_SECOND.interval_seconds
    server = GrpcServer(ServerSettings(grpc_host="127.0.0.1", grpc_port=0), [])
    await server.start()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}", options=list(EVERY_SECOND.channel_options())
    )
    try:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        # A ping a second: the GOAWAY comes with the third too soon (MAX_PING_STRIKES), some 3 s in.
        async with asyncio.timeout(5):
            with pytest.raises(grpc.aio.AioRpcError) as broken:
                await watch.read()
        assert (broken.value.code(), broken.value.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            "Too many pings",
        )
    finally:
        await channel.close()
        await server.stop(0)
