"""The APIs' error ratios shared by every gateway process through Redis (the ratio pings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import redis.asyncio

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from devstack.redis import RedisProcess, free_port
from gateway.app import GatewayServer, build_server
from gateway.availability import BUCKET_SECONDS, AvailabilityTracker
from gateway.pings import RATIO_WINDOW_SECONDS
from gateway.ratios import SharedErrorRatios, bucket_key
from runtime.server import GrpcServer, ServiceDefinition
from services.common.settings import ProviderSettings
from tests.gateway.conftest import C2S_SERVICE, RecordingC2s, gateway_settings
from tests.gateway.tokens import SIRET, SigningKey, TokenFactory

NOW = 1_800_000_000.0
RSA = "cnaf.revenu_solidarite_active"
C2S_PING = "/api/securite_sociale_complementaire_sante_solidaire/ping"


def _worker(client: redis.asyncio.Redis, clock: list[float]) -> tuple[AvailabilityTracker, SharedErrorRatios]:
    tracker = AvailabilityTracker({"cnaf": ()}, retry_seconds=1, stale_seconds=60, clock=lambda: clock[0])
    ratios = SharedErrorRatios(
        client,
        tracker.drain_counts,
        window_seconds=RATIO_WINDOW_SECONDS,
        bucket_seconds=BUCKET_SECONDS,
        clock=lambda: clock[0],
    )
    return tracker, ratios


def _calls(tracker: AvailabilityTracker, ok: int, failed: int) -> None:
    for _ in range(ok):
        tracker.observe("cnaf", grpc.StatusCode.OK, RSA)
    for _ in range(failed):
        tracker.observe("cnaf", grpc.StatusCode.DEADLINE_EXCEEDED, RSA)


async def test_two_workers_read_the_ratio_of_both(private_redis: RedisProcess) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    clock = [NOW]
    first, first_ratios = _worker(client, clock)
    second, second_ratios = _worker(client, clock)
    try:
        assert await second_ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) == {RSA: None}
        _calls(first, ok=0, failed=2)
        await first_ratios.flush()  # the background flush of the first worker
        _calls(second, ok=8, failed=0)
        # 2 failures of 10 calls: 20 %, though the second worker saw none.
        assert await second_ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) == {RSA: 0.2}
        assert await first_ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) == {RSA: 0.2}
        # A flush adds only what was counted since the last one.
        await first_ratios.flush()
        assert await first_ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) == {RSA: 0.2}
        # Ten minutes on, the calls are out of the window; their buckets expire in Redis.
        clock[0] = NOW + RATIO_WINDOW_SECONDS + BUCKET_SECONDS
        assert await second_ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) == {RSA: None}
        start = int(NOW // BUCKET_SECONDS * BUCKET_SECONDS)
        expiry = time.time() + await client.ttl(bucket_key(RSA, start))
        assert start + RATIO_WINDOW_SECONDS < expiry <= start + RATIO_WINDOW_SECONDS + 3 * BUCKET_SECONDS
    finally:
        await client.aclose()


async def test_counts_not_written_wait_for_redis(private_redis: RedisProcess) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url, socket_timeout=0.5)
    clock = [NOW]
    tracker, ratios = _worker(client, clock)
    try:
        private_redis.stop()
        _calls(tracker, ok=1, failed=1)
        await ratios.flush()  # Redis is down: kept
        assert await ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) is None
        private_redis.start()
        assert await ratios.error_ratios([RSA], RATIO_WINDOW_SECONDS) == {RSA: 0.5}
    finally:
        await client.aclose()


# -- two gateways ----------------------------------------------------------------------------------


@pytest.fixture
async def c2s() -> AsyncIterator[GrpcServer]:
    """A c2s stand-in whose 'LENT' calls outlast any short deadline (a failure the ratio counts)."""
    recording = RecordingC2s()
    server = GrpcServer(
        ProviderSettings(grpc_host="127.0.0.1", grpc_port=0),
        [
            ServiceDefinition(
                C2S_SERVICE, lambda s: c2s_pb2_grpc.add_C2sServiceServicer_to_server(recording, s)
            )
        ],
    )
    await server.start()
    yield server
    await server.stop(0)


async def _gateway(redis_url: str, keys: Path, c2s_port: int, deadline: float) -> GatewayServer:
    gateway = build_server(
        gateway_settings(
            keys,
            redis_url,
            rest_host="127.0.0.1",
            rest_port=0,
            metrics_port=free_port(),
            c2s_address=f"127.0.0.1:{c2s_port}",
            default_deadline_seconds=deadline,
        )
    )
    assert isinstance(gateway, GatewayServer)
    await gateway.start()
    return gateway


async def test_a_gateway_s_ping_sees_the_failures_another_gateway_met(
    private_redis: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey], c2s: GrpcServer
) -> None:
    """Gateway A's calls time out; gateway B, which made none, answers the c2s ping bad_gateway."""
    directory, es, _ = keys_dir
    first = await _gateway(private_redis.url, directory, c2s.port, deadline=0.3)
    second = await _gateway(private_redis.url, directory, c2s.port, deadline=5.0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{first.port}")
    try:
        assert second.rest is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.rest.port}") as http:
            assert (await http.get(C2S_PING)).json()["status"] == "ok"
            stub = c2s_pb2_grpc.C2sServiceStub(channel)
            token = TokenFactory(es, scopes=["complementaire_sante_solidaire"]).bearer()
            metadata = (("authorization", token), ("x-recipient", SIRET))
            request = c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(
                identite=identity_pb2.IdentityPivot(nom_naissance="LENT")
            )
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetComplementaireSanteSolidaireByIdentity(request, metadata=metadata)
                assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            deadline = time.monotonic() + 10
            while True:  # the first gateway flushes its counts in the background, every second
                answer = await http.get(C2S_PING)
                if answer.status_code == 502 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert answer.status_code == 502
            assert answer.json()["status"] == "bad_gateway"
    finally:
        await channel.close(None)
        await first.stop(0)
        await second.stop(0)
