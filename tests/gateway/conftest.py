"""A real gateway on loopback, in front of a real cnaf service and a recording c2s stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from devstack.redis import RedisProcess, free_port
from gateway.app import build_server
from gateway.settings import GatewaySettings
from runtime.errors import ErrorSource, provider_not_found
from runtime.providers import PROVIDERS
from runtime.server import GrpcServer, ServiceDefinition
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from services.common.settings import ProviderSettings
from services.mesr.app import MESR
from services.mesr.settings import MesrSettings
from tests.gateway.tokens import SigningKey, TokenFactory, ed25519_key, es256_key

DEFAULT_DEADLINE_SECONDS = 5.0
C2S_SERVICE = c2s_pb2.DESCRIPTOR.services_by_name["C2sService"].full_name


@dataclass
class Seen:
    """What the c2s stand-in saw of one call."""

    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class RecordingC2s(c2s_pb2_grpc.C2sServiceServicer):
    """A c2s provider stand-in that records its calls' metadata and deadline."""

    calls: list[Seen] = field(default_factory=list)

    async def GetComplementaireSanteSolidaireByIdentity(
        self, request: c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest, context: Any
    ) -> c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse:
        self.calls.append(
            Seen(
                {k: v for k, v in context.invocation_metadata() if isinstance(v, str)},
                context.time_remaining(),
            )
        )
        if request.identite.nom_naissance == "INCONNU":
            raise provider_not_found(ErrorSource("40", "RNCPS"), "absent")
        if request.identite.nom_naissance == "LENT":  # slower than any deadline of the tests
            await asyncio.sleep(10)
        response = c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse()
        response.data.est_beneficiaire = True
        return response

    async def GetComplementaireSanteSolidaireByFranceConnect(
        self, request: c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectRequest, context: Any
    ) -> c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectResponse:
        raise NotImplementedError


@dataclass
class Mesh:
    """The running gateway and what stands behind it."""

    channel: grpc.aio.Channel
    cnaf_channel: grpc.aio.Channel
    c2s: RecordingC2s
    factory: TokenFactory
    eddsa: TokenFactory
    keys_dir: Path
    port: int
    """The gateway's port on 127.0.0.1."""


def _write_keys(directory: Path) -> tuple[SigningKey, SigningKey]:
    es, ed = es256_key("es-test"), ed25519_key("ed-test")
    es.write(directory)
    ed.write(directory)
    return es, ed


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """A Redis of the test's own: it can be stopped, and nobody else's commands show in its stats."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SigningKey, SigningKey]:
    """A key directory as the admin CLI writes it, with one ES256 and one EdDSA key."""
    directory = tmp_path_factory.mktemp("keys")
    es, ed = _write_keys(directory)
    return directory, es, ed


def gateway_settings(keys: Path, redis_url: str, **overrides: Any) -> GatewaySettings:
    """Gateway settings for the tests: port 0, test keys, the test Redis."""
    values: dict[str, Any] = {
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "keys_dir": keys,
        "redis_url": redis_url,
        "journal_hmac_key": "test-journal-key",
        "default_deadline_seconds": DEFAULT_DEADLINE_SECONDS,
        "usage_flush_seconds": 0.2,
        "provider_channels": 1,
        # Several test processes share two cores: a loop busy for a quarter of a second is no Redis
        # outage. The tests of outages set their own, short, timeouts.
        "redis_timeout_seconds": 2.0,
        # Many tests send one request many times at once; the lock's own tests turn it on.
        "duplicate_call_lock": False,
        # Providers the tests do not start point at a port nobody listens on.
        **{provider.address_setting: f"127.0.0.1:{free_port()}" for provider in PROVIDERS},
    }
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture(scope="module")
async def mesh(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> AsyncIterator[Mesh]:
    """A gateway in front of a real cnaf service and a recording c2s, with a real Redis."""
    directory, es, ed = keys_dir
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    recording = RecordingC2s()
    c2s = GrpcServer(
        ProviderSettings(grpc_host="127.0.0.1", grpc_port=0),
        [
            ServiceDefinition(
                C2S_SERVICE, lambda server: c2s_pb2_grpc.add_C2sServiceServicer_to_server(recording, server)
            )
        ],
    )
    mesr = MESR.server(MesrSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    await c2s.start()
    await mesr.start()
    gateway = build_server(
        gateway_settings(
            directory,
            redis_server.url,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            c2s_address=f"127.0.0.1:{c2s.port}",
            mesr_address=f"127.0.0.1:{mesr.port}",
        )
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    cnaf_channel = grpc.aio.insecure_channel(f"127.0.0.1:{cnaf.port}")
    try:
        yield Mesh(
            channel, cnaf_channel, recording, TokenFactory(es), TokenFactory(ed), directory, gateway.port
        )
    finally:
        await cnaf_channel.close(None)
        await channel.close(None)
        await gateway.stop(0)
        await c2s.stop(0)
        await mesr.stop(0)
        await cnaf.stop(0)
