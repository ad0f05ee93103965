"""The gateway's own API on the gateway fixture: introspection, usage statistics, proofs avoided, access."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
import redis

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from devstack.redis import RedisProcess
from gateway.grpc.api import method_access
from gateway.pings import PINGS, Window, clear_window, declare_window
from runtime.providers import BY_NAME
from tests.gateway.conftest import Mesh
from tests.people import lefebvre_briefly
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"


def stub_of(mesh: Mesh) -> Any:
    return gateway_pb2_grpc.GatewayServiceStub(mesh.channel)


def person(name: str = "LEFEBVRE") -> cnaf_pb2.GetQuotientFamilialByIdentityRequest:
    return cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_briefly(nom_naissance=name))


def test_access_is_read_from_the_contract() -> None:
    """Lookup, introspection, usage and delegations need a token; proofs and pings are anonymous."""
    holders = {"Lookup", "IntrospectToken", "GetUsageStatistics", "ListDelegations"}
    every = {m for m in holders if method_access(m).every_token}
    anonymous = {m for m in ("GetProofsAvoided", "ListProviderAvailability") if method_access(m).anonymous}
    assert every == holders
    assert anonymous == {"GetProofsAvoided", "ListProviderAvailability"}


async def test_introspection_describes_the_token(mesh: Mesh) -> None:
    """Token id, habilitation, SIRET, scopes, expiry and rate limit; no recipient needed."""
    exp = int(time.time()) + 7200
    token = mesh.factory.token(exp=exp, rate_limit=7, scopes=["cnaf_enfants", "cnaf_adresse"])
    call = stub_of(mesh).IntrospectToken(
        gateway_pb2.IntrospectTokenRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    answer = await call
    claims = mesh.factory.claims()
    assert len(answer.token_id) == 36
    assert answer.habilitation == claims["sub"]
    assert answer.siret == claims["siret"]
    assert list(answer.scopes) == ["cnaf_adresse", "cnaf_enfants"]
    assert answer.expires_at.seconds == exp
    assert answer.rate_limit_per_second == 7
    trailers = dict(await call.trailing_metadata())
    assert "ratelimit-remaining" in trailers
    default = await stub_of(mesh).IntrospectToken(
        gateway_pb2.IntrospectTokenRequest(), metadata=(("authorization", mesh.factory.bearer()),)
    )
    assert default.rate_limit_per_second == 20


async def test_introspection_without_a_token_is_refused(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub_of(mesh).IntrospectToken(gateway_pb2.IntrospectTokenRequest())
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.UNAUTHENTICATED, "00101")


async def test_usage_statistics_count_the_token_calls(mesh: Mesh) -> None:
    """Two successes and one not found of the quotient familial, by day, API and outcome."""
    token = mesh.factory.token()
    metadata = (("authorization", f"Bearer {token}"), ("x-recipient", RECIPIENT))
    cnaf = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    await cnaf.GetQuotientFamilialByIdentity(person(), metadata=metadata)
    await cnaf.GetQuotientFamilialByIdentity(person(), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError):
        await cnaf.GetQuotientFamilialByIdentity(person("PERSONNE"), metadata=metadata)
    stub = stub_of(mesh)
    deadline = time.monotonic() + 5
    while True:
        answer = await stub.GetUsageStatistics(gateway_pb2.GetUsageStatisticsRequest(), metadata=metadata)
        counted = {(c.api, c.outcome): c.calls for c in answer.counts}
        if sum(counted.values()) >= 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert counted == {
        (gateway_pb2.API_QUOTIENT_FAMILIAL, "OK"): 2,
        (gateway_pb2.API_QUOTIENT_FAMILIAL, "NOT_FOUND"): 1,
    }
    assert {c.day for c in answer.counts} == {time.strftime("%Y-%m-%d", time.gmtime())}


@pytest.mark.parametrize("days", [-1, 63])
async def test_usage_window_is_bounded(mesh: Mesh, days: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub_of(mesh).GetUsageStatistics(
            gateway_pb2.GetUsageStatisticsRequest(days=days),
            metadata=(("authorization", mesh.factory.bearer()),),
        )
    status = rich_status(caught.value)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.violated_fields == {"days"}


async def test_proofs_avoided_is_public_and_not_rate_limited(mesh: Mesh) -> None:
    """No token, far more calls than any burst, every one answered; successes of the last 30 days."""
    stub = stub_of(mesh)
    answers = await asyncio.gather(
        *(stub.GetProofsAvoided(gateway_pb2.GetProofsAvoidedRequest()) for _ in range(60))
    )
    assert all(a.days == 30 for a in answers)
    pings = await asyncio.gather(
        *(stub.ListProviderAvailability(gateway_pb2.ListProviderAvailabilityRequest()) for _ in range(60))
    )
    assert [p.ping for p in pings[0].providers] == [ping.id for ping in PINGS]
    assert {p.provider for p in pings[0].providers} <= set(BY_NAME)
    assert all(p.name and p.HasField("last_update") and not p.HasField("until") for p in pings[0].providers)


async def test_lookup_needs_a_recipient_and_a_subject(mesh: Mesh) -> None:
    stub = stub_of(mesh)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Lookup(
            gateway_pb2.LookupRequest(identite=person().identite),
            metadata=(("authorization", mesh.factory.bearer()),),
        )
    assert rich_status(caught.value).api_code == "00203"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Lookup(
            gateway_pb2.LookupRequest(),
            metadata=(("authorization", mesh.factory.bearer()), ("x-recipient", RECIPIENT)),
        )
    assert rich_status(caught.value).api_code == "00366"


async def test_a_lookup_without_recipient_spends_no_quota(mesh: Mesh) -> None:
    """The recipient is checked before the rate limit, for a Lookup as for a direct call."""
    # One call a second, a bucket of one: a single spent call would refuse the next ones (00429).
    token = mesh.factory.token(rate_limit=1)
    stub = stub_of(mesh)
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Lookup(
                gateway_pb2.LookupRequest(identite=person().identite),
                metadata=(("authorization", f"Bearer {token}"),),
            )
        assert rich_status(caught.value).api_code == "00203"
    call = stub.IntrospectToken(
        gateway_pb2.IntrospectTokenRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    await call
    assert dict(await call.trailing_metadata())["ratelimit-remaining"] == "0"


async def test_two_ok_calls_raise_the_proofs_avoided_by_two(mesh: Mesh) -> None:
    """Proofs avoided count the successful provider calls, and only them."""
    stub = stub_of(mesh)
    before = (await stub.GetProofsAvoided(gateway_pb2.GetProofsAvoidedRequest())).proofs_avoided
    metadata = (("authorization", mesh.factory.bearer()), ("x-recipient", RECIPIENT))
    cnaf = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    await cnaf.GetQuotientFamilialByIdentity(person(), metadata=metadata)
    await cnaf.GetQuotientFamilialByIdentity(person(), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError):
        await cnaf.GetQuotientFamilialByIdentity(person("PERSONNE"), metadata=metadata)
    deadline = time.monotonic() + 5
    proofs = before
    while proofs < before + 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        proofs = (await stub.GetProofsAvoided(gateway_pb2.GetProofsAvoidedRequest())).proofs_avoided
    # A flush more, so a third count (the refusal's) would have landed too.
    await asyncio.sleep(0.5)
    proofs = (await stub.GetProofsAvoided(gateway_pb2.GetProofsAvoidedRequest())).proofs_avoided
    assert proofs == before + 2


@pytest.mark.parametrize("method", ["Lookup", "IntrospectToken", "GetUsageStatistics", "GetProofsAvoided"])
async def test_a_malformed_body_is_invalid_argument_00400(mesh: Mesh, method: str) -> None:
    """The gateway's own methods answer bytes that are no message as provider methods do: 00400."""
    send: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = mesh.channel.unary_unary(
        f"/apiparticulier.gateway.v1.GatewayService/{method}",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await send(
            b"\x0a\xff", metadata=(("authorization", mesh.factory.bearer()), ("x-recipient", RECIPIENT))
        )
    status = rich_status(refused.value)
    assert (status.code, status.api_code, status.violated_fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "00400",
        {"request"},
    )


async def test_a_maintenance_window_over_grpc(mesh: Mesh, redis_server: RedisProcess) -> None:
    """The ping an operator put in maintenance says so, with the window's end; the others do not."""
    store = redis.Redis.from_url(redis_server.url)
    now = time.time()
    declare_window(store, "cnav_allocation_rentree_scolaire", Window(now - 1, now + 900), now)
    try:
        answer = await stub_of(mesh).ListProviderAvailability(gateway_pb2.ListProviderAvailabilityRequest())
    finally:
        clear_window(store, "cnav_allocation_rentree_scolaire")
        store.close()
    (ars,) = [p for p in answer.providers if p.status == gateway_pb2.PROVIDER_STATUS_MAINTENANCE]
    assert (ars.ping, ars.provider) == ("cnav_allocation_rentree_scolaire", "cnaf")
    assert ars.until.ToNanoseconds() / 1e9 == pytest.approx(now + 900, abs=0.01)
