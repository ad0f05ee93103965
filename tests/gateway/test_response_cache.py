"""The DSS routes' response cache: a real gateway (REST and gRPC) in front of a counted cnaf service."""

from __future__ import annotations

import asyncio
import base64
import collections
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis
import redis.asyncio

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from contract.routes import build_routes
from devstack.redis import RedisProcess, free_port
from gateway.app import GatewayServer, build_server
from gateway.response_cache import (
    DEFAULT_LIFETIME_SECONDS,
    LIFETIMES,
    CacheKeyError,
    ResponseCache,
    cache_keys,
    lifetime_of,
    request_key,
)
from runtime.server import GrpcServer, ServiceDefinition
from services.cnaf.app import CNAF
from services.cnaf.servicer import CnafServicer
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import LEFEBVRE_QUERY, RECIPIENT, lefebvre

QF = "/v3/dss/quotient_familial/identite"
QF_METHOD = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
ENFANT_HANDICAPE = "/v3/dss/allocation_enfant_handicape/identite"
CNOUS = "/v5/cnous/etudiant_boursier/ine"
HABILITATION = "Commune de test - prestations"


def _secret() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


class Counting(grpc.aio.ServerInterceptor):
    """Counts the calls the provider service receives, by method."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        self.calls[details.method] += 1
        return await continuation(details)


@dataclass
class Cached:
    """The running gateway with its cache, and what calls it."""

    http: httpx.AsyncClient
    channel: grpc.aio.Channel
    provider: Counting
    factory: TokenFactory
    redis: redis.Redis
    redis_url: str
    keys_dir: Path
    gateway: GatewayServer

    keys: str
    """The gateway's RESPONSE_CACHE_KEYS."""

    def bearer(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": self.factory.bearer(**{"sub": HABILITATION, "rate_limit": 1000, **claims})}

    def entries(self) -> list[bytes]:
        return sorted(self.redis.scan_iter("response-cache:*"))

    def get(self, name: bytes) -> bytes:
        value = self.redis.get(name)
        assert isinstance(value, bytes)
        return value


async def _gateway(
    redis_url: str, keys_dir: Path, cnaf_port: int, keys: str
) -> tuple[GatewayServer, httpx.AsyncClient, grpc.aio.Channel]:
    gateway = build_server(
        gateway_settings(
            keys_dir,
            redis_url,
            rest_host="127.0.0.1",
            rest_port=0,
            cnaf_address=f"127.0.0.1:{cnaf_port}",
            response_cache_keys=keys,
        )
    )
    assert isinstance(gateway, GatewayServer)
    await gateway.start()
    assert gateway.rest is not None
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.rest.port}", timeout=10)
    return gateway, http, grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")


@pytest.fixture(scope="module")
async def cnaf() -> AsyncIterator[tuple[GrpcServer, Counting]]:
    """The sandbox cnaf service, its calls counted."""
    settings = CnafSettings(grpc_host="127.0.0.1", grpc_port=0)
    backend = CNAF.backend(settings)
    servicer = CnafServicer(backend)
    counting = Counting()
    server = GrpcServer(
        settings,
        [ServiceDefinition(CNAF.service_name, lambda s: CNAF.add_servicer(servicer, s))],
        interceptors=[counting],
        on_shutdown=[backend.close],
    )
    await server.start()
    yield server, counting
    await server.stop(0)


@pytest.fixture(scope="module")
async def cached(
    redis_server: RedisProcess,
    keys_dir: tuple[Path, SigningKey, SigningKey],
    cnaf: tuple[GrpcServer, Counting],
) -> AsyncIterator[Cached]:
    """A gateway whose cache has two keys, in front of the counted cnaf service."""
    directory, es, _ = keys_dir
    server, counting = cnaf
    keys = f"new:{_secret()},old:{_secret()}"
    gateway, http, channel = await _gateway(redis_server.url, directory, server.port, keys)
    store = redis.Redis.from_url(redis_server.url)
    try:
        yield Cached(
            http, channel, counting, TokenFactory(es), store, redis_server.url, directory, gateway, keys
        )
    finally:
        await http.aclose()
        await channel.close(None)
        await gateway.stop(0)
        store.close()


@pytest.fixture(autouse=True)
def _empty_cache(redis_server: RedisProcess) -> None:
    """Each test starts without entries (the session's Redis is shared by the module's tests)."""
    store = redis.Redis.from_url(redis_server.url)
    for key in store.scan_iter("response-cache:*"):
        store.delete(key)
    store.close()


async def _qf(cached: Cached, *, headers: dict[str, str] | None = None, **claims: Any) -> httpx.Response:
    return await cached.http.get(
        QF, params=LEFEBVRE_QUERY, headers={**cached.bearer(**claims), **(headers or {})}
    )


async def test_a_repeated_dss_call_is_answered_from_the_cache_without_the_provider(cached: Cached) -> None:
    before = cached.provider.calls[QF_METHOD]
    first = await _qf(cached)
    assert first.status_code == 200, first.text
    assert first.headers["x-response-cached"] == "false"
    assert first.headers["x-cache-expires-in"] == ""
    second = await _qf(cached)
    assert second.status_code == 200
    assert second.headers["x-response-cached"] == "true"
    assert 0 < int(second.headers["x-cache-expires-in"]) <= LIFETIMES["cnaf.quotient_familial"]
    assert second.json() == first.json()
    assert cached.provider.calls[QF_METHOD] == before + 1


async def test_nothing_personal_is_readable_in_redis(cached: Cached) -> None:
    assert (await _qf(cached)).status_code == 200
    (name,) = cached.entries()
    value = cached.get(name)
    for text in ("LEFEBVRE", "ALEXIS", "1982", RECIPIENT, HABILITATION):
        assert text.encode() not in name
        assert text.encode() not in value
        assert text.upper().encode() not in value.upper()
    assert value[1 : 1 + value[0]] == b"new"  # the key id, beside the sealed answer


async def test_no_cache_from_the_caller_goes_to_the_provider_and_keeps_nothing(cached: Cached) -> None:
    before = cached.provider.calls[QF_METHOD]
    assert (await _qf(cached)).status_code == 200
    bypassed = await _qf(cached, headers={"Cache-Control": "no-cache"})
    assert bypassed.status_code == 200
    assert bypassed.headers["x-response-cached"] == "false"
    assert cached.provider.calls[QF_METHOD] == before + 2
    # Only the exact value bypasses, as in the real API.
    assert (await _qf(cached, headers={"Cache-Control": "no-cache, no-store"})).headers[
        "x-response-cached"
    ] == "true"
    assert cached.provider.calls[QF_METHOD] == before + 2


async def test_a_bypassed_call_writes_nothing(cached: Cached) -> None:
    assert (await _qf(cached, headers={"Cache-Control": "no-cache"})).status_code == 200
    assert cached.entries() == []


async def test_a_hit_is_masked_with_the_caller_s_scopes(cached: Cached) -> None:
    full = await _qf(cached)
    assert full.json()["data"]["allocataires"]
    narrow = await _qf(cached, scopes=["cnaf_quotient_familial"])
    assert narrow.headers["x-response-cached"] == "true"
    data = narrow.json()["data"]
    assert data["quotient_familial"] == full.json()["data"]["quotient_familial"]
    assert not data.get("allocataires")
    assert not data.get("adresse")


async def test_another_habilitation_never_reads_the_entry(cached: Cached) -> None:
    before = cached.provider.calls[QF_METHOD]
    assert (await _qf(cached)).status_code == 200
    other = await _qf(cached, sub="Autre commune")
    assert other.headers["x-response-cached"] == "false"
    assert cached.provider.calls[QF_METHOD] == before + 2


async def test_an_expired_entry_is_fetched_again(cached: Cached) -> None:
    before = cached.provider.calls[QF_METHOD]
    assert (await _qf(cached)).status_code == 200
    (name,) = cached.entries()
    cached.redis.pexpire(name, 1)
    await asyncio.sleep(0.05)
    again = await _qf(cached)
    assert again.headers["x-response-cached"] == "false"
    assert cached.provider.calls[QF_METHOD] == before + 2
    assert (await _qf(cached)).headers["x-response-cached"] == "true"


async def test_a_tampered_entry_is_a_miss_not_a_crash(cached: Cached) -> None:
    before = cached.provider.calls[QF_METHOD]
    assert (await _qf(cached)).status_code == 200
    (name,) = cached.entries()
    value = bytearray(cached.get(name))
    value[-1] ^= 1
    cached.redis.set(name, bytes(value), ex=60)
    answer = await _qf(cached)
    assert answer.status_code == 200
    assert answer.headers["x-response-cached"] == "false"
    assert cached.provider.calls[QF_METHOD] == before + 2


async def test_a_value_moved_under_another_entry_does_not_open(cached: Cached) -> None:
    """Each value is bound to its Redis key: copied under another habilitation's entry, it is refused."""
    assert (await _qf(cached)).status_code == 200
    (mine,) = cached.entries()
    assert (await _qf(cached, sub="Autre commune")).status_code == 200
    (theirs,) = [entry for entry in cached.entries() if entry != mine]
    cached.redis.set(theirs, cached.get(mine), ex=60)
    moved = await _qf(cached, sub="Autre commune")
    assert moved.status_code == 200
    assert moved.headers["x-response-cached"] == "false"


async def test_an_entry_written_under_a_retired_key_is_read_after_the_rotation(
    cached: Cached, cnaf: tuple[GrpcServer, Counting]
) -> None:
    """Keys 'old' then 'new': the gateway that lists 'new' first still reads what 'old' wrote."""
    server, counting = cnaf
    assert (await _qf(cached)).status_code == 200  # written under 'new', the first key
    rotated = f"newer:{_secret()},{cached.keys}"
    gateway, http, channel = await _gateway(cached.redis_url, cached.keys_dir, server.port, rotated)
    try:
        before = counting.calls[QF_METHOD]
        answer = await http.get(QF, params=LEFEBVRE_QUERY, headers=cached.bearer())
        assert answer.headers["x-response-cached"] == "true"
        assert counting.calls[QF_METHOD] == before
        # Without the key it was written under, the entry is a miss.
        alone = f"newer:{_secret()}"
        gateway2, http2, channel2 = await _gateway(cached.redis_url, cached.keys_dir, server.port, alone)
        try:
            missed = await http2.get(QF, params=LEFEBVRE_QUERY, headers=cached.bearer())
            assert missed.headers["x-response-cached"] == "false"
            assert counting.calls[QF_METHOD] == before + 1
        finally:
            await http2.aclose()
            await channel2.close(None)
            await gateway2.stop(0)
    finally:
        await http.aclose()
        await channel.close(None)
        await gateway.stop(0)


async def test_errors_are_not_kept(cached: Cached) -> None:
    query = {**LEFEBVRE_QUERY, "nomNaissance": "INCONNU"}
    for _ in range(2):
        answer = await cached.http.get(QF, params=query, headers=cached.bearer())
        assert answer.status_code == 404
        assert answer.headers["x-response-cached"] == "false"
    assert cached.entries() == []


async def test_a_route_outside_the_dss_says_it_is_not_cached(cached: Cached) -> None:
    """Every call that reaches its provider says so, as the real API does on every v3+ route.

    The cnous service is not started: the answer is the gateway's refusal (26001), with the headers.
    """
    query = {"ine": "1234567890A", "recipient": RECIPIENT}
    answer = await cached.http.get(
        CNOUS, params=query, headers=cached.bearer(scopes=["cnous_statut_boursier"])
    )
    assert answer.json()["errors"][0]["code"] == "26001", answer.text  # unreachable
    assert answer.headers["x-response-cached"] == "false"
    assert answer.headers["x-cache-expires-in"] == ""


async def test_over_grpc_the_same_facts_are_response_metadata(cached: Cached) -> None:
    stub = cnaf_pb2_grpc.CnafServiceStub(cached.channel)
    request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre())
    metadata = (("authorization", cached.bearer()["Authorization"]), ("x-recipient", RECIPIENT))
    before = cached.provider.calls[QF_METHOD]
    answers, said = [], []
    for extra in ((), (), (("cache-control", "no-cache"),)):
        call = stub.GetQuotientFamilialByIdentity(request, metadata=(*metadata, *extra))
        answers.append(await call)
        trailers = dict(tuple(await call.trailing_metadata()))
        said.append((trailers["x-response-cached"], trailers["x-cache-expires-in"]))
    assert said[0] == ("false", "")
    assert said[1][0] == "true"
    assert 0 < int(said[1][1]) <= LIFETIMES["cnaf.quotient_familial"]
    assert said[2] == ("false", "")
    assert answers[0] == answers[1] == answers[2]
    assert cached.provider.calls[QF_METHOD] == before + 2


def test_the_lifetimes_are_the_real_api_s() -> None:
    by_path = {path: lifetime_of(route) for route in build_routes().routes for path in route.http_paths}
    assert by_path[QF] == 24 * 3600
    assert by_path["/v3/dss/quotient_familial/france_connect"] == 24 * 3600
    assert by_path[ENFANT_HANDICAPE] == DEFAULT_LIFETIME_SECONDS == 3600
    assert by_path["/v3/dss/allocation_rentree_scolaire/identite"] == 3600
    assert by_path["/v4/cnous/etudiant_boursier/identite"] is None
    assert {path for path, lifetime in by_path.items() if lifetime} == {
        path for path in by_path if path.startswith("/v3/dss/")
    }


def test_the_france_connect_token_and_scopes_are_no_part_of_the_key() -> None:
    """One citizen's sessions share the entry; the certified identity decides it."""

    def request(token: str, scopes: list[str], name: str) -> bytes:
        message = cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
            france_connect=identity_pb2.FranceConnectSubject(
                access_token=token, identite_pivot=lefebvre(nom_naissance=name), scopes=scopes
            )
        )
        return request_key(message)

    assert request("a", ["cnaf_quotient_familial"], "LEFEBVRE") == request("b", [], "LEFEBVRE")
    assert request("a", [], "LEFEBVRE") != request("a", [], "DUBOIS")


SECRET = _secret()


@pytest.mark.parametrize(
    "text",
    [
        SECRET,
        "k:" + SECRET[:20],
        f"k:{SECRET},k:{_secret()}",
        f"k:{SECRET}@",
        f":{SECRET}",
        f"k\u00e9:{SECRET}",
    ],
    # Named, not shown: the keys are random, and pytest-xdist's workers must collect the same ids.
    ids=["no-kid", "short-key", "kid-twice", "not-base64url", "empty-kid", "non-ascii-kid"],
)
def test_unreadable_keys_stop_the_gateway_without_telling_them(text: str) -> None:
    with pytest.raises(CacheKeyError) as raised:
        cache_keys(text)
    assert SECRET[:8] not in str(raised.value)


def test_no_keys_no_cache() -> None:
    assert cache_keys("") == ()


async def test_redis_unreachable_is_a_miss_the_provider_answers() -> None:
    (route,) = [route for route in build_routes().routes if QF in route.http_paths]
    client = redis.asyncio.Redis(
        host="127.0.0.1", port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5
    )
    cache = ResponseCache(client, cache_keys(f"k:{_secret()}"))
    said: list[tuple[str, str]] = []

    async def fetch() -> bytes:
        return b"answer"

    try:
        answer = await cache.through(
            route,
            habilitation=HABILITATION,
            metadata=(),
            request=cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre()),
            fetch=fetch,
            response_metadata=said,
        )
    finally:
        await client.aclose()
    assert answer == b"answer"
    assert said == [("x-response-cached", "false"), ("x-cache-expires-in", "")]
