"""A gateway reading the registry: a token's rights are its habilitation's, at the time of the call."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import timestamp_pb2

from apiparticulier.admin.v1 import admin_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess
from gateway.admin import keys
from gateway.app import build_server
from gateway.registry.model import Environment
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.registry.conftest import SIGNING_KID, SIRET, AdminApi
from tests.rich_status import rich_status

_QF = "cnaf_quotient_familial"


@dataclass
class Registered:
    """A gateway reading the admin API's registry, in front of a real cnaf service."""

    api: AdminApi
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub


@pytest.fixture
async def registered(admin_api: AdminApi, redis_server: RedisProcess) -> AsyncIterator[Registered]:
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    gateway = build_server(
        gateway_settings(
            admin_api.keys_dir,
            redis_server.url,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            registry_database_url=admin_api.database_url,
            registry_change_delay_seconds=0.02,
        )
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    try:
        yield Registered(admin_api, cnaf_pb2_grpc.CnafServiceStub(channel))
    finally:
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)


async def _habilitation(api: AdminApi, *scopes: str) -> str:
    request = admin_pb2.CreateHabilitationRequest(label="CCAS de Lyon", siret=SIRET, scopes=list(scopes))
    return (await api.stub.CreateHabilitation(request, metadata=api.as_admin())).habilitation.id


async def _token(api: AdminApi, habilitation: str, **fields: Any) -> admin_pb2.IssueTokenResponse:
    request = admin_pb2.IssueTokenRequest(habilitation_id=habilitation, **fields)
    return await api.stub.IssueToken(request, metadata=api.as_admin())


async def _code(call: Any) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return str(rich_status(error).error_info.metadata["code"])
    return "OK"


async def _quotient(mesh: Registered, jwt: str) -> str:
    return await _code(
        mesh.cnaf.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(f"Bearer {jwt}"))
    )


async def _eventually(seconds: float, check: Any, expected: str) -> float:
    """Seconds until ``check()`` answered ``expected``; fails after ``seconds``."""
    started = time.monotonic()
    while (found := await check()) != expected:
        assert time.monotonic() - started < seconds, f"still {found}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_scope_added_to_the_habilitation_opens_its_existing_token(registered: Registered) -> None:
    api = registered.api
    habilitation = await _habilitation(api, "allocation_adulte_handicape")
    issued = await _token(api, habilitation)
    await _eventually(2, lambda: _quotient(registered, issued.jwt), "00100")

    update = admin_pb2.UpdateHabilitationRequest(id=habilitation)
    update.scopes.values.extend(["allocation_adulte_handicape", _QF])
    await api.stub.UpdateHabilitation(update, metadata=api.as_admin())

    assert await _eventually(2, lambda: _quotient(registered, issued.jwt), "OK") < 2


async def test_a_revoked_token_is_refused_on_its_next_call(registered: Registered) -> None:
    api = registered.api
    issued = await _token(api, await _habilitation(api, _QF))
    await _eventually(2, lambda: _quotient(registered, issued.jwt), "OK")

    await api.stub.RevokeToken(
        admin_pb2.RevokeTokenRequest(id=issued.token.id, reason="leaked"), metadata=api.as_admin()
    )

    assert await _quotient(registered, issued.jwt) == "00105"
    await asyncio.sleep(1.5)  # the snapshot has taken the revocation too: same answer
    assert await _quotient(registered, issued.jwt) == "00105"


async def test_a_token_of_the_other_environment_is_refused_with_its_own_code(registered: Registered) -> None:
    api = registered.api
    sandbox = await _token(api, await _habilitation(api, _QF), environment=admin_pb2.ENVIRONMENT_SANDBOX)

    assert await _quotient(registered, sandbox.jwt) == "00109"


async def test_a_ban_from_a_date_holds_from_that_date(registered: Registered) -> None:
    api = registered.api
    issued = await _token(api, await _habilitation(api, _QF))
    await _eventually(2, lambda: _quotient(registered, issued.jwt), "OK")
    at = timestamp_pb2.Timestamp()
    at.FromSeconds(int(time.time()) + 2)

    banned = await api.stub.BanToken(
        admin_pb2.BanTokenRequest(id=issued.token.id, at=at, reason="contractor left", replace=True),
        metadata=api.as_admin(),
    )

    assert await _eventually(2, lambda: _quotient(registered, banned.jwt), "OK") < 2
    assert await _quotient(registered, issued.jwt) == "OK"
    assert await _eventually(4, lambda: _quotient(registered, issued.jwt), "00105") < 4


async def test_a_signed_token_the_registry_lacks_is_invalid(registered: Registered) -> None:
    api = registered.api
    habilitation = await _habilitation(api, _QF)
    assert await _quotient(registered, _signed(api, habilitation)) == "00101"


def _signed(api: AdminApi, habilitation: str) -> str:
    """A JWT the admin API's key signed, as the admin API signs them, for a token it never recorded."""
    now = int(time.time())
    claims = {
        "iss": "api-particulier-mesh",
        "aud": "api-particulier",
        "jti": str(uuid.uuid4()),
        "sub": habilitation,
        "env": Environment.PRODUCTION.value,
        "siret": SIRET,
        "scopes": [_QF],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    key = keys.load_private(api.keys_dir, SIGNING_KID)
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": SIGNING_KID, "typ": "JWT"})
