"""The gateway's channels to real providers: stopped and started again on the same port, and quiet.

Found by a fault drill: once the provider served again, the gateway still answered
37001 (provider unavailable) for 1.6 to 3.9 s, the library's reconnection backoff.
Found by a new user of ``make run``: each provider answered the channels' keepalive
pings GOAWAY "too_many_pings" every minute or two, which broke the channel's health
Watch and put an incident on the public status with no failed call behind it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess, free_port
from gateway.app import build_server
from gateway.availability import Availability, AvailabilityTracker
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from gateway.channels import ProviderChannels
from runtime.health import HealthServicer
from runtime.keepalive import Keepalive
from runtime.server import GrpcServer
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from services.common.settings import ProviderSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.rich_status import rich_status

OUTAGE_SECONDS = 6.0
# A ping a second, grpc-core's shortest, for the mesh's 30 s: the same policy, 30 times faster.
EVERY_SECOND = Keepalive(interval_seconds=1.0, timeout_seconds=1.0)
# Four pings of a quiet channel: grpc-core's default policy sends its GOAWAY at the third too soon.
QUIET_SECONDS = 4.5


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


async def stays_ready(channel: grpc.aio.Channel, seconds: float) -> bool:
    """Whether ``channel``, READY now, is still connected ``seconds`` later, never having left READY."""
    try:
        async with asyncio.timeout(seconds):
            await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
    except TimeoutError:
        return True
    return False


@pytest.mark.timing
async def test_a_quiet_channel_keeps_its_provider_and_its_health_watch(
    keys_dir: tuple[Path, SigningKey, SigningKey],
) -> None:
    """Four keepalive pings on a quiet channel: a mesh server takes them, grpc-core's defaults tear it down.

    The gateway's channels and both providers' policies run 30 times faster than the mesh's
    (`EVERY_SECOND`). The Watch of the provider with grpc-core's default server policy, the
    mesh's servers before, breaks and the provider turns bad: the test can see the GOAWAY.
    """
    mesh = GrpcServer(ProviderSettings(grpc_host="127.0.0.1", grpc_port=0), [], keepalive=EVERY_SECOND)
    await mesh.start()
    defaults = grpc.aio.server()
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, defaults)
    defaults_port = defaults.add_insecure_port("127.0.0.1:0")
    await defaults.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    settings = gateway_settings(
        keys_dir[0],
        "redis://127.0.0.1:1",
        cnaf_address=f"127.0.0.1:{mesh.port}",
        c2s_address=f"127.0.0.1:{defaults_port}",
    )
    channels = ProviderChannels(settings, ("cnaf", "c2s"), keepalive=EVERY_SECOND)
    tracker = AvailabilityTracker(channels.pools, retry_seconds=60.0, stale_seconds=60.0)
    await tracker.start()
    (to_mesh,), (to_defaults,) = channels.pools["cnaf"], channels.pools["c2s"]
    try:
        async with asyncio.timeout(5):
            await asyncio.gather(to_mesh.channel_ready(), to_defaults.channel_ready())
        mesh_kept, defaults_kept = await asyncio.gather(
            stays_ready(to_mesh, QUIET_SECONDS), stays_ready(to_defaults, QUIET_SECONDS)
        )
        assert mesh_kept, "the mesh's server tore down a channel pinging as often as it allows"
        assert not defaults_kept, "grpc-core's default policy kept the channel: the test cannot see a GOAWAY"
        assert {state.provider: state.status for state in tracker.snapshot()} == {
            "cnaf": Availability.OK,
            "c2s": Availability.BAD_GATEWAY,
        }
    finally:
        await tracker.close()
        await channels.close()
        await mesh.stop(0)
        await defaults.stop(0)
