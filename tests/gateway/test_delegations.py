"""An editor token's calls: the recipient picks the delegation whose habilitation's rights apply.

A real gateway (gRPC and REST) reading the admin API's registry, in front of a real cnaf
service; every registry write goes through the admin API.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from apiparticulier.admin.v1 import admin_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from gateway.auth import Token
from gateway.delegations import DELEGATION_ID_KEY, delegated
from gateway.registry import store
from gateway.registry.snapshot import entries_of
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.registry.conftest import SIRET, AdminApi, admin_api, registry_url
from tests.people import LEFEBVRE_QUERY
from tests.rich_status import rich_status

__all__ = ["admin_api", "registry_url"]

SIRET_B = "21690123100011"
"""A second public body's SIRET (Luhn-valid)."""
SIRET_NONE = "21756011100015"
"""A body that delegated nothing."""
_QF = "cnaf_quotient_familial"
_AAH = "allocation_adulte_handicape"
_QF_PATH = "/v3/dss/quotient_familial/identite"
_AAH_PATH = "/v3/dss/allocation_adulte_handicape/identite"
_SLOW_SNAPSHOT_SECONDS = 1.0
"""REGISTRY_CHANGE_DELAY_SECONDS at its most: the snapshot's reload comes after the calls that follow."""
_IDENTITY = {key: value for key, value in LEFEBVRE_QUERY.items() if key != "recipient"}


@dataclass
class Editorial:
    """A gateway on the registry, an editor with a token, and two bodies that delegated to it."""

    api: AdminApi
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub
    gateway: gateway_pb2_grpc.GatewayServiceAsyncStub
    http: httpx.AsyncClient
    editor: str
    editor_jwt: str
    body_a: str
    """Habilitation of body A (SIRET): QF, one call a minute."""
    body_a_jwt: str
    """Body A's own classic token."""
    body_b: str
    """Habilitation of body B (SIRET_B): AAH only."""
    delegation_a: str
    delegation_b: str


async def _admin(api: AdminApi, method: str, request: Any) -> Any:
    return await getattr(api.stub, method)(request, metadata=api.as_admin())


async def _habilitation(api: AdminApi, siret: str, *scopes: str, **fields: Any) -> str:
    request = admin_pb2.CreateHabilitationRequest(label="CCAS", siret=siret, scopes=list(scopes), **fields)
    return str((await _admin(api, "CreateHabilitation", request)).habilitation.id)


async def _delegate(api: AdminApi, editor: str, habilitation: str) -> str:
    request = admin_pb2.CreateDelegationRequest(editor_id=editor, habilitation_id=habilitation)
    return str((await _admin(api, "CreateDelegation", request)).delegation.id)


@pytest.fixture
async def editorial(
    admin_api: AdminApi, redis_server: RedisProcess, request: pytest.FixtureRequest
) -> AsyncIterator[Editorial]:
    """The mesh; ``request.param``, when given, is the gateway's REGISTRY_CHANGE_DELAY_SECONDS."""
    api = admin_api
    editor = (
        await _admin(api, "CreateEditor", admin_pb2.CreateEditorRequest(siret=SIRET_NONE, name="Logiciel"))
    ).editor.id
    editor_jwt = (
        await _admin(api, "IssueEditorToken", admin_pb2.IssueEditorTokenRequest(editor_id=editor))
    ).jwt
    body_a = await _habilitation(api, SIRET, _QF, rate_per_minute=1, datapass_id="7001")
    body_a_jwt = (await _admin(api, "IssueToken", admin_pb2.IssueTokenRequest(habilitation_id=body_a))).jwt
    body_b = await _habilitation(api, SIRET_B, _AAH)
    delegation_a, delegation_b = await _delegate(api, editor, body_a), await _delegate(api, editor, body_b)
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    gateway = build_server(
        gateway_settings(
            api.keys_dir,
            redis_server.url,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            rest_host="127.0.0.1",
            rest_port=0,
            registry_database_url=api.database_url,
            registry_change_delay_seconds=getattr(request, "param", 0.02),
        )
    )
    assert isinstance(gateway, GatewayServer)
    await gateway.start()
    assert gateway.rest is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.rest.port}", timeout=10)
    try:
        yield Editorial(
            api,
            cnaf_pb2_grpc.CnafServiceStub(channel),
            gateway_pb2_grpc.GatewayServiceStub(channel),
            http,
            editor,
            editor_jwt,
            body_a,
            body_a_jwt,
            body_b,
            delegation_a,
            delegation_b,
        )
    finally:
        await http.aclose()
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)


async def _code(call: Awaitable[Any]) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return str(rich_status(error).error_info.metadata["code"])
    return "OK"


def _quotient(mesh: Editorial, jwt: str, recipient: str, *extra: tuple[str, str]) -> Awaitable[str]:
    return _code(
        mesh.cnaf.GetQuotientFamilialByIdentity(
            qf_request(), metadata=metadata(f"Bearer {jwt}", recipient, *extra)
        )
    )


def _aah(mesh: Editorial, recipient: str) -> Awaitable[str]:
    request = cnaf_pb2.GetAllocationAdulteHandicapeByIdentityRequest(identite=qf_request().identite)
    return _code(
        mesh.cnaf.GetAllocationAdulteHandicapeByIdentity(
            request, metadata=metadata(f"Bearer {mesh.editor_jwt}", recipient)
        )
    )


async def _eventually(seconds: float, check: Callable[[], Awaitable[str]], expected: str) -> None:
    started = time.monotonic()
    while (found := await check()) != expected:
        assert time.monotonic() - started < seconds, f"still {found}"
        await asyncio.sleep(0.05)


async def _rest(
    mesh: Editorial, recipient: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return await mesh.http.get(
        _QF_PATH,
        params={**_IDENTITY, "recipient": recipient, **params},
        headers={"Authorization": f"Bearer {mesh.editor_jwt}", **(headers or {})},
    )


async def test_one_editor_token_calls_with_each_body_s_scopes_and_counts_against_its_habilitation(
    editorial: Editorial,
) -> None:
    mesh = editorial
    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET), "OK")

    # Body B's habilitation holds AAH, not QF: the same token gets B's scopes for B.
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B) == "00100"
    assert await _aah(mesh, SIRET_B) not in {"00100", "00213", "00212"}
    # A's one call a minute was spent by the editor's call: A's own token finds it spent.
    assert await _quotient(mesh, mesh.body_a_jwt, SIRET) == "00429"
    assert await _quotient(mesh, mesh.editor_jwt, SIRET) == "00429"


async def test_each_failure_of_the_chain_has_its_real_status_and_code(editorial: Editorial) -> None:
    mesh = editorial
    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00100")
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_NONE) == "00213"
    assert await _quotient(mesh, mesh.editor_jwt, "12345678901234") == "00210"

    second = await _delegate(
        mesh.api, mesh.editor, await _habilitation(mesh.api, SIRET_B, _QF, datapass_id="8123")
    )
    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00212")
    by_id = (DELEGATION_ID_KEY, second)
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B, by_id) == "OK"
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B, (DELEGATION_ID_KEY, mesh.delegation_b)) == "00100"
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B, (DELEGATION_ID_KEY, str(uuid.uuid4()))) == "00213"
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B, (DELEGATION_ID_KEY, "not an id")) == "00213"
    # Another body's delegation does not serve for this one.
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B, (DELEGATION_ID_KEY, mesh.delegation_a)) == "00213"

    ambiguous = await _rest(mesh, SIRET_B)
    assert ambiguous.status_code == 422
    assert ambiguous.json()["errors"][0]["code"] == "00212"
    assert ambiguous.json()["errors"][0]["source"] == {"parameter": "delegation_id"}
    assert (await _rest(mesh, SIRET_B, delegation_id=second)).status_code == 200
    assert (await _rest(mesh, SIRET_B, {"X-Delegation-Id": second})).status_code == 200
    # The parameter the real API reads wins over the header.
    assert (
        await _rest(mesh, SIRET_B, {"X-Delegation-Id": second}, delegation_id=mesh.delegation_b)
    ).status_code == 403
    refused = await _rest(mesh, SIRET_NONE)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "00213"
    assert refused.json()["errors"][0]["title"] == "Accès refusé"
    mismatched = await _rest(mesh, SIRET_B, delegation_id=str(uuid.uuid4()))
    assert (mismatched.status_code, mismatched.json()["errors"][0]["code"]) == (403, "00213")


async def test_a_revoked_delegation_refuses_the_next_calls(editorial: Editorial) -> None:
    mesh = editorial
    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00100")

    await _admin(mesh.api, "RevokeDelegation", admin_pb2.RevokeDelegationRequest(id=mesh.delegation_b))

    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00213")
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_B) == "00213"


def _revoked_in_redis() -> float:
    return (
        REGISTRY.get_sample_value(
            "gateway_rate_limit_decisions_total", {"source": "redis", "result": "revoked"}
        )
        or 0.0
    )


@pytest.mark.parametrize("editorial", [_SLOW_SNAPSHOT_SECONDS], indirect=True)
async def test_a_revoked_delegation_refuses_the_very_next_call_before_any_snapshot_reload(
    editorial: Editorial,
) -> None:
    """The admin API writes the revocation where the limiter's one round trip looks: refused over gRPC
    and REST with the real code, while the gateway's snapshot still holds the delegation."""
    mesh = editorial
    await _eventually(2, lambda: _aah(mesh, SIRET_B), "OK")
    before = _revoked_in_redis()

    await _admin(mesh.api, "RevokeDelegation", admin_pb2.RevokeDelegationRequest(id=mesh.delegation_b))

    assert await _aah(mesh, SIRET_B) == "00213"
    refused = await mesh.http.get(
        _AAH_PATH,
        params={**_IDENTITY, "recipient": SIRET_B},
        headers={"Authorization": f"Bearer {mesh.editor_jwt}"},
    )
    # Both refusals came from the limiter's round trip: the snapshot waits a second before reloading.
    assert _revoked_in_redis() - before == 2
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["code"] == "00213"
    assert "ratelimit-limit" not in refused.headers
    # Body A's delegation, of the same editor token, still serves.
    assert await _quotient(mesh, mesh.editor_jwt, SIRET) == "OK"


@pytest.mark.parametrize("editorial", [_SLOW_SNAPSHOT_SECONDS], indirect=True)
async def test_a_habilitation_revoked_refuses_its_delegations_from_the_very_next_call(
    editorial: Editorial,
) -> None:
    mesh = editorial
    await _eventually(2, lambda: _aah(mesh, SIRET_B), "OK")
    before = _revoked_in_redis()
    update = admin_pb2.UpdateHabilitationRequest(
        id=mesh.body_b, status=admin_pb2.HABILITATION_STATUS_ARCHIVED
    )

    await _admin(mesh.api, "UpdateHabilitation", update)

    assert await _aah(mesh, SIRET_B) == "00213"
    assert _revoked_in_redis() - before == 1


async def test_a_habilitation_revoked_revokes_its_delegations(editorial: Editorial) -> None:
    mesh = editorial
    update = admin_pb2.UpdateHabilitationRequest(id=mesh.body_b, status=admin_pb2.HABILITATION_STATUS_REVOKED)
    await _admin(mesh.api, "UpdateHabilitation", update)

    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00213")
    listed = await _admin(
        mesh.api, "ListDelegations", admin_pb2.ListDelegationsRequest(editor_id=mesh.editor)
    )
    states = {d.id: d.state for d in listed.delegations}
    assert states == {
        mesh.delegation_a: admin_pb2.DELEGATION_STATE_ACTIVE,
        mesh.delegation_b: admin_pb2.DELEGATION_STATE_REVOKED,
    }


async def test_a_revoked_editor_token_is_refused_for_every_body_at_once(editorial: Editorial) -> None:
    mesh = editorial
    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00100")
    token_id = (await _admin(mesh.api, "GetEditor", admin_pb2.GetEditorRequest(id=mesh.editor))).tokens[0].id

    await _admin(mesh.api, "RevokeToken", admin_pb2.RevokeTokenRequest(id=token_id, reason="leaked"))

    # No snapshot reload waited for: the revocation is in Redis under each delegated habilitation.
    assert await _aah(mesh, SIRET_B) == "00105"
    assert await _quotient(mesh, mesh.editor_jwt, SIRET) == "00105"


async def test_the_resolved_rights_require_the_editor_s_the_token_s_and_the_habilitation_s_ranges(
    admin_api: AdminApi,
) -> None:
    api = admin_api
    editor = (
        await _admin(
            api,
            "CreateEditor",
            admin_pb2.CreateEditorRequest(siret=SIRET_NONE, name="Logiciel", allowed_ips=["10.0.0.0/8"]),
        )
    ).editor.id
    outside = admin_pb2.IssueEditorTokenRequest(editor_id=editor, allowed_ips=["192.168.0.0/16"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _admin(api, "IssueEditorToken", outside)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    inside = admin_pb2.IssueEditorTokenRequest(editor_id=editor, allowed_ips=["10.1.0.0/16"])
    token_id = (await _admin(api, "IssueEditorToken", inside)).token.id
    habilitation = await _habilitation(api, SIRET, _QF, allowed_ips=["10.1.2.0/24", "10.9.0.0/16"])
    await _delegate(api, editor, habilitation)

    async with await psycopg.AsyncConnection.connect(api.database_url, autocommit=True) as conn:
        entry = entries_of(await store.load(conn))[token_id]
    token = Token(token_id, "", SIRET_NONE, frozenset(), 0, None, rights=entry.rights, grants=entry.grants)
    rights = delegated(token, SIRET, ()).rights
    assert rights is not None
    assert rights.habilitation_id == habilitation
    assert rights.allows(ipaddress.ip_address("10.1.2.3"))
    assert not rights.allows(ipaddress.ip_address("10.9.0.1"))  # not the token's range
    assert not rights.allows(ipaddress.ip_address("10.1.3.1"))  # not the habilitation's
    assert not rights.allows(ipaddress.ip_address("172.16.0.1"))  # not the editor's
    assert not rights.allows(None)
    # Without a delegation, the editor's and the token's ranges hold already (ACCESS-MODEL.md §6).
    assert entry.rights.allows(ipaddress.ip_address("10.1.9.9"))
    assert not entry.rights.allows(ipaddress.ip_address("10.2.0.1"))


async def test_the_editor_api_lists_the_editor_s_delegations_with_the_real_fields(
    editorial: Editorial,
) -> None:
    mesh = editorial
    # A classic token (of body B, whose habilitation has no per-minute limit) is no editor's.
    classic_jwt = (
        await _admin(mesh.api, "IssueToken", admin_pb2.IssueTokenRequest(habilitation_id=mesh.body_b))
    ).jwt
    await _admin(mesh.api, "RevokeDelegation", admin_pb2.RevokeDelegationRequest(id=mesh.delegation_b))
    bearer = {"Authorization": f"Bearer {mesh.editor_jwt}"}

    async def listed() -> str:
        answer = await mesh.http.get("/editeur/api/v1/delegations", headers=bearer)
        return str([item["statut"] for item in answer.json().get("data", [])])

    await _eventually(2, listed, "['revoked', 'active']")
    answer = await mesh.http.get("/editeur/api/v1/delegations", headers=bearer)
    assert answer.status_code == 200
    newest, oldest = answer.json()["data"]
    assert newest["id"] == mesh.delegation_b
    assert set(oldest) == {
        "id",
        "authorization_request_id",
        "siret",
        "intitule",
        "scopes",
        "statut",
        "created_at",
    }
    assert oldest["id"] == mesh.delegation_a
    assert (oldest["authorization_request_id"], oldest["siret"], oldest["intitule"]) == (7001, SIRET, "CCAS")
    assert (oldest["scopes"], oldest["statut"]) == ([_QF], "active")
    assert oldest["created_at"].endswith("Z")
    assert newest["authorization_request_id"] is None
    assert answer.json()["meta"] == {"page": 1, "per_page": 50, "total": 2, "total_pages": 1}

    second = await mesh.http.get(
        "/editeur/api/v1/delegations", params={"page": "2", "per_page": "1"}, headers=bearer
    )
    assert [item["id"] for item in second.json()["data"]] == [mesh.delegation_a]
    assert second.json()["meta"] == {"page": 2, "per_page": 1, "total": 2, "total_pages": 2}
    odd = await mesh.http.get(
        "/editeur/api/v1/delegations", params={"page": "x", "per_page": "500"}, headers=bearer
    )
    assert odd.json()["meta"] == {"page": 1, "per_page": 100, "total": 2, "total_pages": 1}

    # Any bearer that is no active editor token: the real editor API's 401 body (PLATFORM.md §3).
    for headers in ({"Authorization": f"Bearer {classic_jwt}"}, {}, {"Authorization": "Bearer not.a.token"}):
        refused_rest = await mesh.http.get("/editeur/api/v1/delegations", headers=headers)
        assert (refused_rest.status_code, refused_rest.json()) == (401, {"error": "Unauthorized"})

    over_grpc = await mesh.gateway.ListDelegations(
        gateway_pb2.ListDelegationsRequest(per_page=1), metadata=metadata(f"Bearer {mesh.editor_jwt}", None)
    )
    assert [(d.id, d.status) for d in over_grpc.delegations] == [
        (mesh.delegation_b, gateway_pb2.DELEGATION_STATUS_REVOKED)
    ]
    assert (over_grpc.total, over_grpc.total_pages, over_grpc.per_page) == (2, 2, 1)
    refused = mesh.gateway.ListDelegations(
        gateway_pb2.ListDelegationsRequest(), metadata=metadata(f"Bearer {classic_jwt}", None)
    )
    assert await _code(refused) == "00101"

    token_id = (await _admin(mesh.api, "GetEditor", admin_pb2.GetEditorRequest(id=mesh.editor))).tokens[0].id
    await _admin(mesh.api, "RevokeToken", admin_pb2.RevokeTokenRequest(id=token_id, reason="leaked"))
    revoked = await mesh.http.get("/editeur/api/v1/delegations", headers=bearer)
    assert (revoked.status_code, revoked.json()) == (401, {"error": "Unauthorized"})
    # The other routes keep the v3 error body for the same token.
    elsewhere = await _rest(mesh, SIRET)
    assert (elsewhere.status_code, elsewhere.json()["errors"][0]["code"]) == (401, "00105")


async def test_an_editor_s_range_refuses_a_caller_outside_it_though_the_habilitation_has_none(
    editorial: Editorial,
) -> None:
    mesh = editorial
    request = admin_pb2.CreateEditorRequest(
        siret=SIRET_B, name="Logiciel restreint", allowed_ips=["10.0.0.0/8"]
    )
    editor = (await _admin(mesh.api, "CreateEditor", request)).editor.id
    jwt = (
        await _admin(mesh.api, "IssueEditorToken", admin_pb2.IssueEditorTokenRequest(editor_id=editor))
    ).jwt
    await _delegate(mesh.api, editor, mesh.body_a)  # body A's habilitation allows every address

    # The call comes from 127.0.0.1, outside the editor's 10.0.0.0/8: refused once the snapshot has it.
    await _eventually(2, lambda: _quotient(mesh, jwt, SIRET), "00107")
    assert await _quotient(mesh, mesh.editor_jwt, SIRET) == "OK"  # the other editor's token is not
    # The editor API reads the same ranges with the caller's address.
    refused = await mesh.http.get("/editeur/api/v1/delegations", headers={"Authorization": f"Bearer {jwt}"})
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (403, "00107")


async def test_an_editor_s_range_serves_its_delegations_to_a_caller_inside_it(editorial: Editorial) -> None:
    """The editor API over REST checks the caller's address against the ranges, not a missing one."""
    mesh = editorial
    request = admin_pb2.CreateEditorRequest(siret=SIRET_B, name="Logiciel local", allowed_ips=["127.0.0.0/8"])
    editor = (await _admin(mesh.api, "CreateEditor", request)).editor.id
    jwt = (
        await _admin(mesh.api, "IssueEditorToken", admin_pb2.IssueEditorTokenRequest(editor_id=editor))
    ).jwt
    delegation = await _delegate(mesh.api, editor, mesh.body_a)
    bearer = {"Authorization": f"Bearer {jwt}"}

    async def listed() -> str:
        answer = await mesh.http.get("/editeur/api/v1/delegations", headers=bearer)
        return f"{answer.status_code} {[item['id'] for item in answer.json().get('data', [])]}"

    # Once the gateway's snapshot holds the token and its delegation (the token may come first).
    await _eventually(2, listed, f"200 {[delegation]}")


async def test_a_body_invited_by_the_editor_is_served_once_its_holder_accepts(editorial: Editorial) -> None:
    mesh = editorial
    body = await _habilitation(mesh.api, SIRET_NONE, _QF)
    dpo = admin_pb2.DataProtectionOfficer(
        given_name="Responsable",
        family_name="Conformité",
        email="dpd@mairie.example",
        phone="+33 1 23 45 67 89",
        job_title="Déléguée à la protection des données",
    )
    invited = await _admin(
        mesh.api,
        "InviteBody",
        admin_pb2.InviteBodyRequest(
            editor_id=mesh.editor, habilitation_id=body, contact_email="accueil@mairie.example", dpo=dpo
        ),
    )
    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_B), "00100")
    # Invited is not delegated.
    assert await _quotient(mesh, mesh.editor_jwt, SIRET_NONE) == "00213"

    await mesh.api.stub.AcceptInvitation(
        admin_pb2.AcceptInvitationRequest(
            id=invited.invitation.id,
            secret=invited.secret,
            siret=SIRET_NONE,
            terms_accepted=True,
            dpo_informed=True,
        )
    )

    await _eventually(2, lambda: _quotient(mesh, mesh.editor_jwt, SIRET_NONE), "OK")
