"""Three gateway processes on one Redis: a token's rate limit and its revocation hold across all three.

The gateways are real `python -m gateway` processes, the token comes from the admin
CLI, and the revocation is the CLI's, as an operator would do it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from devstack.processes import Child, Issuer, ProcessGroup, admin
from devstack.redis import RedisProcess
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.people import lefebvre_briefly
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"
RATE = 20
BURST = 5
HAMMER_SECONDS = 3.0
CNAF_SCOPES = ("cnaf_quotient_familial", "cnaf_allocataires", "cnaf_enfants", "cnaf_adresse")
REQUEST = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_briefly())


class Replicas:
    """Three gateways in front of one cnaf service, and a token limited to RATE per second."""

    def __init__(self, gateways: list[Child], token: str, redis_url: str) -> None:
        self.gateways = gateways
        self.token = token
        self.redis_url = redis_url

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"), ("x-recipient", RECIPIENT))


@pytest.fixture(scope="module")
async def replicas(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replicas]:
    """Three `python -m gateway` processes sharing the test Redis, and a token of the admin CLI."""
    directory: Path = tmp_path_factory.mktemp("replicas")
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    issuer = Issuer.create(directory / "keys", redis_server.url, kid="replicas")
    token = issuer.issue(CNAF_SCOPES, RECIPIENT, rate_limit=RATE, label="three replicas")
    group = ProcessGroup(directory / "logs")
    try:
        env = {
            "KEYS_DIR": str(directory / "keys"),
            "REDIS_URL": redis_server.url,
            "JOURNAL_HMAC_KEY": "replicas-journal-key",
            "CNAF_ADDRESS": f"127.0.0.1:{cnaf.port}",
            "RATE_LIMIT_BURST": str(BURST),
            # On two shared cores a loaded event loop can make one round trip slow; this test is about
            # the limit's accuracy, not the fail-closed mode (tested in test_ratelimit.py).
            "REDIS_TIMEOUT_SECONDS": "2",
            "GATEWAY_REPLICAS": "3",
            "LOG_LEVEL": "warning",
        }
        gateways = await asyncio.gather(
            *(asyncio.to_thread(group.start, f"gateway-{n}", ["-m", "gateway"], env) for n in range(3))
        )
        yield Replicas(list(gateways), token, redis_server.url)
    finally:
        await asyncio.to_thread(group.close)
        await cnaf.stop(0)


async def test_one_token_is_limited_across_three_replicas(replicas: Replicas) -> None:
    """Sent well over its limit to three gateways at once, the token gets rate * time + burst, within 5 %."""
    channels = [grpc.aio.insecure_channel(g.address) for g in replicas.gateways]
    stubs = [cnaf_pb2_grpc.CnafServiceStub(channel) for channel in channels]
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    stop_at = started + HAMMER_SECONDS
    last_done = started

    async def hammer(worker: int) -> None:
        nonlocal last_done
        stub = stubs[worker % len(stubs)]
        while time.monotonic() < stop_at:
            try:
                await stub.GetQuotientFamilialByIdentity(REQUEST, metadata=replicas.metadata(), timeout=5)
                name = "OK"
            except grpc.aio.AioRpcError as error:
                name = error.code().name
            outcomes[name] = outcomes.get(name, 0) + 1
            last_done = time.monotonic()

    try:
        await asyncio.gather(*(hammer(n) for n in range(6)))
    finally:
        for channel in channels:
            await channel.close(grace=None)
    allowed = RATE * (last_done - started) + BURST
    assert set(outcomes) == {"OK", "RESOURCE_EXHAUSTED"}, outcomes
    assert outcomes["RESOURCE_EXHAUSTED"] > outcomes["OK"], "the token was not sent well over its limit"
    assert 0.95 * allowed <= outcomes["OK"] <= allowed, (outcomes, allowed)


async def test_revocation_is_seen_by_every_replica_at_once(replicas: Replicas) -> None:
    """Once the admin CLI has revoked the token, the very next call to each gateway is 00105."""
    jti = jwt.decode(replicas.token, options={"verify_signature": False})["jti"]
    await asyncio.sleep(BURST / RATE + 0.1)  # the bucket refills after the previous test
    for gateway in replicas.gateways:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            await cnaf_pb2_grpc.CnafServiceStub(channel).GetQuotientFamilialByIdentity(
                REQUEST, metadata=replicas.metadata(), timeout=5
            )
    await asyncio.to_thread(admin, "revoke", jti, "--redis-url", replicas.redis_url)
    for gateway in replicas.gateways:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await cnaf_pb2_grpc.CnafServiceStub(channel).GetQuotientFamilialByIdentity(
                    REQUEST, metadata=replicas.metadata(), timeout=5
                )
        status = rich_status(caught.value)
        assert (status.code, status.api_code) == (grpc.StatusCode.UNAUTHENTICATED, "00105")
