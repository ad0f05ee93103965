"""A real gateway with its REST front on a loopback port, before every provider service (sandbox)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from contract.routes import contract_scopes
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from gateway.france_connect.clients import link
from gateway.france_connect.sandbox import SANDBOX_CLIENT_ID
from gateway.tokens import TokenRecord
from runtime.providers import PROVIDERS
from runtime.server import GrpcServer
from services.common.app import ProviderAssembly
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SIRET, SigningKey, TokenFactory
from tests.people import LEFEBVRE_QUERY

LEFEBVRE = LEFEBVRE_QUERY


@dataclass
class Front:
    """The running REST front and what calls it."""

    http: httpx.AsyncClient
    """A client whose base URL is the front's."""
    base_url: str
    factory: TokenFactory
    """Signs tokens with every scope by default."""
    token: str
    """A token with every scope and a rate limit no test reaches."""
    linked: TokenRecord
    """The token the sandbox FranceConnect client's calls count against."""
    redis: redis.Redis
    gateway: GatewayServer

    def bearer(self, token: str | None = None) -> dict[str, str]:
        """The Authorization header of ``token`` (the every-scope one by default)."""
        return {"Authorization": f"Bearer {token or self.token}"}


def _assembly(name: str) -> ProviderAssembly:  # type: ignore[type-arg]
    module = importlib.import_module(f"services.{name}.app")
    (assembly,) = [value for value in vars(module).values() if isinstance(value, ProviderAssembly)]
    return assembly


@pytest.fixture(scope="package")
async def front(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> AsyncIterator[Front]:
    """Every provider service on the sandbox backend, and the gateway with its REST front."""
    directory, es, _ = keys_dir
    providers: dict[str, GrpcServer] = {}
    for provider in PROVIDERS:
        assembly = _assembly(provider.name)
        server = assembly.server(assembly.settings(grpc_host="127.0.0.1", grpc_port=0))
        await server.start()
        providers[provider.name] = server
    gateway = build_server(
        gateway_settings(
            directory,
            redis_server.url,
            rest_host="127.0.0.1",
            rest_port=0,
            rate_limit_burst=50,
            france_connect_link_cache_seconds=0,
            **{f"{name}_address": f"127.0.0.1:{server.port}" for name, server in providers.items()},
        )
    )
    assert isinstance(gateway, GatewayServer)
    await gateway.start()
    assert gateway.rest is not None
    base_url = f"http://127.0.0.1:{gateway.rest.port}"
    factory = TokenFactory(es, scopes=sorted(contract_scopes()))
    claims = factory.claims(rate_limit=RATE_LIMIT_MAX_PER_SECOND)
    store = redis.Redis.from_url(redis_server.url)
    linked = TokenRecord(
        claims["jti"],
        claims["sub"],
        SIRET,
        tuple(claims["scopes"]),
        claims["iat"],
        claims["exp"],
        rate_limit=RATE_LIMIT_MAX_PER_SECOND,
        revoked=False,
    )
    link(store, SANDBOX_CLIENT_ID, linked)
    http = httpx.AsyncClient(base_url=base_url, timeout=10)
    try:
        yield Front(http, base_url, factory, factory.token(**claims), linked, store, gateway)
    finally:
        await http.aclose()
        store.close()
        await gateway.stop(0)
        for server in providers.values():
            await server.stop(0)
