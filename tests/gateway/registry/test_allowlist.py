"""A habilitation's IP allowlist, over gRPC and REST: 403 ``00107`` from an address outside it.

The caller is the connection's peer (127.0.0.1 here); its ``X-Forwarded-For`` counts only when
that peer is a trusted proxy (``TRUSTED_PROXIES``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from apiparticulier.admin.v1 import admin_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.registry.conftest import SIRET, AdminApi
from tests.gateway.registry.test_hot_path import _code, _eventually
from tests.people import LEFEBVRE_QUERY

_QF = "cnaf_quotient_familial"
_QF_PATH = "/v3/dss/quotient_familial/identite"
_REFUSAL = {
    "code": "00107",
    "title": "Adresse IP non autorisée",
    "detail": "Votre adresse IP n'est pas autorisée à utiliser ce jeton.",
    "source": {"header": "X-Forwarded-For"},
    "meta": {},
}


@dataclass
class Allowlisted:
    """A gateway (gRPC and REST) reading the registry, in front of a real cnaf service."""

    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub
    http: httpx.AsyncClient
    api: AdminApi

    async def token(self, *allowed_ips: str) -> str:
        """A token of a new habilitation to the quotient familial allowing ``allowed_ips``."""
        request = admin_pb2.CreateHabilitationRequest(
            label="CCAS de Lyon", siret=SIRET, scopes=[_QF], allowed_ips=list(allowed_ips)
        )
        habilitation = await self.api.stub.CreateHabilitation(request, metadata=self.api.as_admin())
        issued = await self.api.stub.IssueToken(
            admin_pb2.IssueTokenRequest(habilitation_id=habilitation.habilitation.id),
            metadata=self.api.as_admin(),
        )
        jwt: str = issued.jwt
        # Known to the gateway's snapshot once the token gets past step 1 (00101 before).
        await _eventually(2, lambda: self._known(jwt), "known")
        return jwt

    async def _known(self, jwt: str) -> str:
        return "unknown" if await self.grpc(jwt) == "00101" else "known"

    async def grpc(self, jwt: str, *extra: tuple[str, str]) -> str:
        """The code of a gRPC quotient familial call ("OK" when answered)."""
        return await _code(
            self.cnaf.GetQuotientFamilialByIdentity(
                qf_request(), metadata=(*metadata(f"Bearer {jwt}"), *extra)
            )
        )

    async def rest(self, jwt: str, **headers: str) -> httpx.Response:
        """A REST quotient familial call."""
        return await self.http.get(
            _QF_PATH,
            params=LEFEBVRE_QUERY,
            headers={"Authorization": f"Bearer {jwt}", **headers},
        )


@contextlib.asynccontextmanager
async def _allowlisted(
    admin_api: AdminApi, redis_server: RedisProcess, **settings: str
) -> AsyncIterator[Allowlisted]:
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    gateway = build_server(
        gateway_settings(
            admin_api.keys_dir,
            redis_server.url,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            registry_database_url=admin_api.database_url,
            registry_change_delay_seconds=0.02,
            rest_host="127.0.0.1",
            rest_port=0,
            **settings,
        )
    )
    assert isinstance(gateway, GatewayServer)
    await gateway.start()
    assert gateway.rest is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.rest.port}", timeout=10)
    try:
        yield Allowlisted(cnaf_pb2_grpc.CnafServiceStub(channel), http, admin_api)
    finally:
        await http.aclose()
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)


@pytest.fixture
async def untrusting(admin_api: AdminApi, redis_server: RedisProcess) -> AsyncIterator[Allowlisted]:
    """No trusted proxy (the default): the peer is the caller, whatever it forwards."""
    async with _allowlisted(admin_api, redis_server) as mesh:
        yield mesh


@pytest.fixture
async def behind_a_proxy(admin_api: AdminApi, redis_server: RedisProcess) -> AsyncIterator[Allowlisted]:
    """127.0.0.1 is a trusted proxy: its ``X-Forwarded-For`` names the caller."""
    async with _allowlisted(admin_api, redis_server, trusted_proxies="127.0.0.1/32") as mesh:
        yield mesh


async def test_an_address_outside_the_list_is_refused_even_when_it_forwards_an_allowed_one(
    untrusting: Allowlisted,
) -> None:
    jwt = await untrusting.token("10.0.0.0/8")

    assert await untrusting.grpc(jwt) == "00107"
    assert await untrusting.grpc(jwt, ("x-forwarded-for", "10.1.2.3")) == "00107"
    assert await untrusting.grpc(jwt, ("forwarded", "for=10.1.2.3")) == "00107"
    for headers in ({}, {"X-Forwarded-For": "10.1.2.3"}, {"Forwarded": "for=10.1.2.3"}):
        response = await untrusting.rest(jwt, **headers)
        assert response.status_code == 403
        assert response.json() == {"errors": [_REFUSAL]}
        # Refused before the limiter, as the real API's blocklist: nothing spent, nothing told.
        assert "ratelimit-limit" not in response.headers


async def test_an_address_inside_the_list_is_admitted(untrusting: Allowlisted) -> None:
    jwt = await untrusting.token("192.0.2.0/24", "127.0.0.1/32")

    assert await untrusting.grpc(jwt) == "OK"
    assert (await untrusting.rest(jwt)).status_code == 200


async def test_a_habilitation_without_a_list_admits_every_address(untrusting: Allowlisted) -> None:
    jwt = await untrusting.token()

    assert await untrusting.grpc(jwt, ("x-forwarded-for", "not an address")) == "OK"
    assert (await untrusting.rest(jwt, **{"X-Forwarded-For": "not an address"})).status_code == 200


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_callers(
    behind_a_proxy: Allowlisted,
) -> None:
    jwt = await behind_a_proxy.token("10.0.0.0/8")

    assert await behind_a_proxy.grpc(jwt, ("x-forwarded-for", "10.1.2.3")) == "OK"
    assert (await behind_a_proxy.rest(jwt, **{"X-Forwarded-For": "10.1.2.3"})).status_code == 200
    # Hops the caller prepended are never reached: the proxy's own entry names it.
    assert await behind_a_proxy.grpc(jwt, ("x-forwarded-for", "10.1.2.3, 192.0.2.7")) == "00107"
    # The header the proxy does not write (TRUSTED_PROXY_HEADER) is the caller's own: never read.
    assert await behind_a_proxy.grpc(jwt, ("forwarded", "for=10.1.2.3")) == "00107"
    # Nothing forwarded: the proxy itself is the caller.
    assert await behind_a_proxy.grpc(jwt) == "00107"


@pytest.mark.parametrize(
    "forwarded",
    [
        "",
        ",",
        "not an address",
        "10.1.2.3:8080",
        "[10.1.2.3]",
        "10.1.2.3/8",
        "10.1.2.3, ,",
        "::ffff:",
        "9" * 4000,
    ],
)
async def test_a_malformed_forwarded_address_is_refused_never_a_crash(
    behind_a_proxy: Allowlisted, forwarded: str
) -> None:
    jwt = await behind_a_proxy.token("10.0.0.0/8")

    assert await behind_a_proxy.grpc(jwt, ("x-forwarded-for", forwarded)) == "00107"
    response = await behind_a_proxy.rest(jwt, **{"X-Forwarded-For": forwarded})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "00107"


async def test_bytes_no_address_is_made_of_are_refused_never_a_crash(behind_a_proxy: Allowlisted) -> None:
    jwt = await behind_a_proxy.token("10.0.0.0/8")

    for raw in (b"\xe9" * 200, b"10.1.2.3\xff", b"10.1.2.3, \x80"):
        response = await behind_a_proxy.http.get(
            _QF_PATH,
            params=LEFEBVRE_QUERY,
            headers=[(b"Authorization", f"Bearer {jwt}".encode()), (b"X-Forwarded-For", raw)],
        )
        assert response.status_code == 403, raw
