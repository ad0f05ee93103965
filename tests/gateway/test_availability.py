"""Provider availability: health Watch streams and call outcomes, with a provider stopped and restarted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from devstack.redis import RedisProcess
from gateway.app import build_server
from gateway.availability import Availability, AvailabilityTracker
from runtime.server import GrpcServer
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import lefebvre_briefly

OK = gateway_pb2.PROVIDER_STATUS_OK
BAD = gateway_pb2.PROVIDER_STATUS_BAD_GATEWAY


def test_call_outcomes_and_staleness() -> None:
    """Without health news: unknown; a failed call: bad; a success: ok; nothing for a while: unknown."""
    now = [1000.0]
    tracker = AvailabilityTracker({"cnaf": ()}, retry_seconds=1, stale_seconds=60, clock=lambda: now[0])
    assert tracker.snapshot()[0].status is Availability.UNKNOWN
    tracker.observe("cnaf", grpc.StatusCode.UNAVAILABLE)
    assert tracker.snapshot()[0].status is Availability.BAD_GATEWAY
    now[0] += 1
    tracker.observe("cnaf", grpc.StatusCode.NOT_FOUND)  # an answer, even a refusal, shows it up
    state = tracker.snapshot()[0]
    assert (state.status, state.last_ok, state.last_update) == (Availability.OK, 1001.0, 1001.0)
    tracker.observe("cnaf", grpc.StatusCode.DEADLINE_EXCEEDED)
    assert tracker.snapshot()[0].status is Availability.BAD_GATEWAY
    now[0] += 61
    state = tracker.snapshot()[0]
    assert (state.status, state.last_ok) == (Availability.UNKNOWN, 1001.0)


def cnaf_on(port: int) -> GrpcServer:
    return CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=port, shutdown_grace_seconds=0.2))


async def wait_for(read: Callable[[], Any], accept: Callable[[Any], bool], seconds: float = 30.0) -> Any:
    """The first value of ``read`` that ``accept`` takes, else the last one after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = await read()
        if accept(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_provider_stopped_then_restarted(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> None:
    """cnaf up: ok; stopped: bad_gateway; restarted on its port: ok again, with a later last_ok_status."""
    # Port 0, not a port free a moment ago: the kernel hands a port just freed to the next bind,
    # another test's server in another worker, which the gateway would then reach instead.
    cnaf = cnaf_on(0)
    await cnaf.start()
    port = cnaf.port
    gateway = build_server(
        gateway_settings(
            keys_dir[0], redis_server.url, cnaf_address=f"127.0.0.1:{port}", availability_retry_seconds=0.2
        )
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)

    async def cnaf_state() -> gateway_pb2.ProviderAvailability:
        answer = await stub.ListProviderAvailability(gateway_pb2.ListProviderAvailabilityRequest())
        return next(p for p in answer.providers if p.provider == "cnaf")

    try:
        up = await wait_for(cnaf_state, lambda s: s.status == OK)
        assert up.status == OK and up.HasField("last_ok_status")
        everyone = await stub.ListProviderAvailability(gateway_pb2.ListProviderAvailabilityRequest())
        # Nothing listens for the other providers: their watches fail.
        others = await wait_for(
            lambda: stub.ListProviderAvailability(gateway_pb2.ListProviderAvailabilityRequest()),
            lambda a: all(p.status == BAD for p in a.providers if p.provider != "cnaf"),
        )
        assert {p.provider for p in everyone.providers} == {p.provider for p in others.providers}
        assert all(p.status == BAD for p in others.providers if p.provider != "cnaf")

        await cnaf.stop(0.2)
        down = await wait_for(cnaf_state, lambda s: s.status == BAD)
        assert down.status == BAD
        assert down.last_ok_status.ToNanoseconds() <= down.last_update.ToNanoseconds()

        cnaf = cnaf_on(port)
        await cnaf.start()
        again = await wait_for(cnaf_state, lambda s: s.status == OK)
        assert again.status == OK
        assert again.last_ok_status.ToNanoseconds() > down.last_ok_status.ToNanoseconds()
    finally:
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)


async def test_a_failed_call_marks_the_provider_bad_until_a_success(
    private_redis: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> None:
    """cnaf SERVING, but its upstream times out (the DELAI sandbox person).

    The service is bad until a call succeeds; the quotient familial's ping, an error-ratio
    check, stays bad while a tenth of its calls of the last 10 minutes failed. A Redis of the
    test's own: the ratios add up every gateway's calls there, other tests' included.
    """
    cnaf = cnaf_on(0)
    await cnaf.start()
    gateway = build_server(
        gateway_settings(keys_dir[0], private_redis.url, cnaf_address=f"127.0.0.1:{cnaf.port}")
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    cnaf_stub = cnaf_pb2_grpc.CnafServiceStub(channel)
    metadata = (("authorization", TokenFactory(keys_dir[1]).bearer()), ("x-recipient", "13002526500013"))

    def asking(name: str, first: str, year: int, month: int, day: int, sex: str) -> Any:
        return cnaf_pb2.GetQuotientFamilialByIdentityRequest(
            identite=identity_pb2.IdentityPivot(
                nom_naissance=name,
                prenoms=[first],
                annee_date_naissance=year,
                mois_date_naissance=month,
                jour_date_naissance=day,
                sexe_etat_civil=sex,
                code_cog_insee_pays_naissance="99100",
            )
        )

    async def cnaf_status(ping: str = "cnaf_msa_quotient_familial") -> int:
        answer = await stub.ListProviderAvailability(gateway_pb2.ListProviderAvailabilityRequest())
        return next(p.status for p in answer.providers if p.ping == ping)

    try:
        assert await wait_for(cnaf_status, lambda s: s == OK) == OK
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await cnaf_stub.GetQuotientFamilialByIdentity(
                asking("DELAI", "MARC", 1979, 2, 28, "M"), metadata=metadata
            )
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert await cnaf_status() == BAD
        assert await cnaf_status("cnaf_msa_prime_activite") == BAD
        await cnaf_stub.GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_briefly()), metadata=metadata
        )
        assert await cnaf_status("cnaf_msa_prime_activite") == OK
        assert await cnaf_status() == BAD  # 1 call of 2 failed
    finally:
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)
