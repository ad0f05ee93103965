"""The duplicate-call lock: a second identical call while the first runs is 409 ``00015``.

Each provider's slow sandbox person (``answer_seconds``, 2 s) keeps a call running long enough
to send its twin.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio

from apiparticulier.common.v1 import options_pb2
from contract.routes import build_routes, contract_scopes
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from gateway.call_lock import CallLocks, lock_milliseconds
from tests.gateway.conftest import gateway_settings
from tests.gateway.test_ratelimit import command_counts
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import RECIPIENT
from tests.rich_status import rich_status
from tests.sandbox_cases import Case, method, sandbox_providers, slow_cases

_SLOW_QF = {
    "nomNaissance": "LENTEUR",
    "prenoms[]": ["BASILE"],
    "sexeEtatCivil": "M",
    "anneeDateNaissance": "1983",
    "moisDateNaissance": "6",
    "jourDateNaissance": "15",
    "codeCogInseePaysNaissance": "99100",
    "recipient": RECIPIENT,
}
"""cnaf's slow person, as the REST front's query string of the quotient familial."""
_CONFLICT: dict[str, Any] = {
    "code": "00015",
    "title": "Conflit",
    "detail": "Une requête associé à votre jeton est déjà en cours de traitement pour ces paramètres. "
    "Veuillez attendre la fin du traitement avant d'effectuer une nouvelle requête.",
    "source": None,
    "meta": {},
}
_LOCK_KEY = re.compile(r"lock:\{[0-9a-f-]{36}\}:[0-9a-f]{32}")


def test_a_lock_key_says_nothing_of_the_call_and_differs_with_any_of_its_parts() -> None:
    locks = CallLocks(b"replicas' secret")
    parts = ("habilitation", "token", "/cnaf/Method", RECIPIENT, b"LENTEUR")
    key = locks.key(*parts)

    assert re.fullmatch(r"lock:\{habilitation\}:[0-9a-f]{32}", key)
    assert locks.key(*parts) == key == CallLocks(b"replicas' secret").key(*parts)
    assert CallLocks(b"another secret").key(*parts) != key
    for changed in range(1, 5):
        other = list(parts)
        other[changed] = other[changed] + (b"!" if isinstance(other[changed], bytes) else "!")  # type: ignore[operator]
        assert locks.key(*other) != key  # type: ignore[arg-type]
    assert lock_milliseconds(9.9991) == 10000
    assert lock_milliseconds(0) == 1


@dataclass
class SlowMesh:
    """A gateway (gRPC and REST) before every provider's sandbox, with a token of every scope."""

    channel: grpc.aio.Channel
    http: httpx.AsyncClient
    factory: TokenFactory
    redis: redis.asyncio.Redis

    def token(self) -> str:
        """A new token: its calls collide with nobody else's."""
        return self.factory.token(**self.factory.claims(rate_limit=RATE_LIMIT_MAX_PER_SECOND))

    async def call(self, case: Case, token: str) -> tuple[str, float]:
        """The code of one call of ``case`` ("OK" when answered) and its seconds."""
        started = time.monotonic()
        metadata = (("authorization", f"Bearer {token}"), ("x-recipient", RECIPIENT))
        try:
            await method(self.channel, case.route)(case.request, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            return str(rich_status(error).error_info.metadata["code"]), time.monotonic() - started
        return "OK", time.monotonic() - started

    async def rest(self, token: str) -> httpx.Response:
        """cnaf's slow person's quotient familial over REST."""
        return await self.http.get(
            "/v3/dss/quotient_familial/identite",
            params=_SLOW_QF,
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture(scope="module")
async def slow_mesh(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> AsyncIterator[SlowMesh]:
    directory, es, _ = keys_dir
    async with sandbox_providers() as addresses:
        gateway = build_server(
            gateway_settings(
                directory,
                redis_server.url,
                rest_host="127.0.0.1",
                rest_port=0,
                duplicate_call_lock=True,
                **{f"{name}_address": address for name, address in addresses.items()},
            )
        )
        assert isinstance(gateway, GatewayServer)
        await gateway.start()
        assert gateway.rest is not None
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.rest.port}", timeout=10)
        store = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            yield SlowMesh(channel, http, TokenFactory(es, scopes=sorted(contract_scopes())), store)
        finally:
            await store.aclose()
            await http.aclose()
            await channel.close(None)
            await gateway.stop(0)


def _through_the_gateway(case: Case) -> Case:
    """The case as the gateway takes it: a FranceConnect subject by a sandbox FranceConnect token."""
    if case.route.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT:
        getattr(case.request, case.route.subject.name).access_token = "fc-morel"
    return case


async def _locks_held(store: redis.asyncio.Redis, count: int) -> list[str]:
    """The lock keys in Redis once ``count`` are held (the first calls past step 4), within 1.5 s."""
    deadline = time.monotonic() + 1.5
    keys = await store.keys("lock:*")
    while len(keys) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        keys = await store.keys("lock:*")
    return [key.decode() if isinstance(key, bytes) else key for key in keys]


async def test_two_identical_calls_at_once_the_second_is_refused_on_every_provider(
    slow_mesh: SlowMesh,
) -> None:
    token = slow_mesh.token()
    cases = [_through_the_gateway(case) for case in slow_cases(build_routes())]
    assert len(cases) == 10  # one slow person per provider

    first = [asyncio.create_task(slow_mesh.call(case, token)) for case in cases]
    held = await _locks_held(slow_mesh.redis, len(cases))  # every first call is waiting on its provider
    twins = await asyncio.gather(*(slow_mesh.call(case, token) for case in cases))
    answered = await asyncio.gather(*first)

    assert [code for code, _ in answered] == ["OK"] * len(cases)
    assert min(seconds for _, seconds in answered) >= 1.9
    assert [code for code, _ in twins] == ["00015"] * len(cases)
    assert max(seconds for _, seconds in twins) < 1.5  # refused at once, not after the provider
    # One lock per call, named by a keyed digest: no name, no identifier readable in Redis.
    assert len(held) == len(cases) and all(_LOCK_KEY.fullmatch(key) for key in held)
    await asyncio.sleep(0.2)
    assert await slow_mesh.redis.keys("lock:*") == []  # released once answered


async def test_the_same_call_one_after_the_other_is_answered_twice(slow_mesh: SlowMesh) -> None:
    token = slow_mesh.token()
    (case,) = [case for case in slow_cases(build_routes()) if case.route.provider == "cnaf"]

    before = await command_counts(slow_mesh.redis)
    assert (await slow_mesh.call(case, token))[0] == "OK"
    # As soon as the answer came: the lock left right after it.
    assert (await slow_mesh.call(case, token))[0] == "OK"
    await asyncio.sleep(0.2)  # the second call's release
    after = await command_counts(slow_mesh.redis)
    # The lock taken in the limiter's one round trip per call; its release, after the answer, in one DEL.
    assert after["evalsha"] - before["evalsha"] == 2
    assert after["del"] - before.get("del", 0) == 2
    assert (await slow_mesh.rest(token)).status_code == 200
    assert (await slow_mesh.rest(token)).status_code == 200


async def test_over_rest_the_twin_is_a_409_with_the_real_body(slow_mesh: SlowMesh) -> None:
    token = slow_mesh.token()

    first = asyncio.create_task(slow_mesh.rest(token))
    await asyncio.sleep(0.5)
    twin = await slow_mesh.rest(token)
    other_token = await slow_mesh.rest(slow_mesh.token())  # another token's call is its own

    assert (await first).status_code == 200
    assert other_token.status_code == 200
    assert twin.status_code == 409
    assert twin.json() == {"errors": [_CONFLICT]}
    assert "ratelimit-remaining" in twin.headers
    assert "retry-after" not in twin.headers


async def test_a_call_with_other_parameters_is_not_a_twin(slow_mesh: SlowMesh) -> None:
    token = slow_mesh.token()
    (case,) = [case for case in slow_cases(build_routes()) if case.route.provider == "cnaf"]
    other: Any = type(case.request)()
    other.CopyFrom(case.request)
    other.annee = 2025
    other.mois = 1

    results = await asyncio.gather(
        slow_mesh.call(case, token), slow_mesh.call(Case(case.route, case.person, other, answers=True), token)
    )

    assert [code for code, _ in results] == ["OK", "OK"]
