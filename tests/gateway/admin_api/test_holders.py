"""The admin API for a holder or an editor (`gateway.admin_api.holders`): theirs alone, audited as theirs.

The console's credential names the person with X-Acting-For; another holder's habilitation,
token, editor or delegation answers 404, as one that does not exist; the console's credential
does nothing on the operators' routes, and an operator's does nothing on these.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest
import redis.asyncio

from gateway.rate_script import revoked_delegation_key, revoked_key
from gateway.usage import Details, UsageRecorder
from tests.gateway.registry.conftest import ADMIN_SECRET, CONSOLE_SECRET, SIRET, AdminApi

_ADMIN = {"authorization": f"Bearer {ADMIN_SECRET}"}
_AGENT = "agente.instructrice@ccas-test.example"
_OTHER = "agent.comptable@mairie-test.example"
_EDITOR = "support@editeur-test.example"
_QF = "cnaf.quotient_familial"


def _for(email: str) -> dict[str, str]:
    return {"authorization": f"Bearer {CONSOLE_SECRET}", "x-acting-for": email}


async def _world(client: httpx.AsyncClient) -> dict[str, Any]:
    """Two habilitations of two holders, each with a token; an editor delegated the first."""

    async def made(path: str, body: dict[str, Any]) -> Any:
        answer = await client.post(path, headers=_ADMIN, json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    scopes = ["cnaf_quotient_familial"]
    mine = await made(
        "/admin/v1/habilitations",
        {"label": "CCAS test", "siret": SIRET, "scopes": scopes, "contacts": [_AGENT]},
    )
    other = await made(
        "/admin/v1/habilitations",
        {"label": "Mairie test", "siret": SIRET, "scopes": scopes, "contacts": [_OTHER]},
    )
    editor = await made("/admin/v1/editors", {"siret": SIRET, "name": "Éditeur test", "contacts": [_EDITOR]})
    delegation = await made(
        "/admin/v1/delegations", {"editor_id": editor["id"], "habilitation_id": mine["id"]}
    )
    return {
        "mine": mine,
        "other": other,
        "editor": editor,
        "delegation": delegation,
        "my_token": (await made(f"/admin/v1/habilitations/{mine['id']}/tokens", {"days": 30}))["token"],
        "other_token": (await made(f"/admin/v1/habilitations/{other['id']}/tokens", {"days": 30}))["token"],
        "editor_token": (await made(f"/admin/v1/editors/{editor['id']}/tokens", {"days": 30}))["token"],
    }


async def test_a_holder_reads_and_acts_on_theirs_alone(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        world = await _world(client)
        mine, other = world["mine"]["id"], world["other"]["id"]
        me = _for(_AGENT.upper())  # the e-mail's case does not matter

        listed = await client.get("/admin/v1/holder/habilitations", headers=me)
        assert [h["id"] for h in listed.json()] == [mine]
        shown = (await client.get(f"/admin/v1/holder/habilitations/{mine}", headers=me)).json()
        assert [t["id"] for t in shown["tokens"]] == [world["my_token"]["id"]]
        assert [(d["id"], d["editor_name"]) for d in shown["delegations"]] == [
            (world["delegation"]["id"], "Éditeur test")
        ]
        for path in (f"/{other}", f"/{other}/activity", f"/{other}/requests", f"/{uuid.uuid4()}"):
            answer = await client.get(f"/admin/v1/holder/habilitations{path}", headers=me)
            assert answer.status_code == 404, path
        for action in ("prolong", "rotate", "revoke"):
            for token in (world["other_token"]["id"], world["editor_token"]["id"]):
                answer = await client.post(f"/admin/v1/holder/tokens/{token}/{action}", headers=me, json={})
                assert answer.status_code == 404, (action, answer.text)
        assert (
            await client.get(f"/admin/v1/holder/editors/{world['editor']['id']}", headers=me)
        ).status_code == 404
        assert (await client.get("/admin/v1/holder/editors", headers=me)).json() == []
        delegation = world["delegation"]["id"]
        assert (
            await client.get(f"/admin/v1/holder/delegations/{delegation}/requests", headers=me)
        ).status_code == 404

        token = world["my_token"]["id"]
        prolonged = await client.post(
            f"/admin/v1/holder/tokens/{token}/prolong", headers=me, json={"days": 90}
        )
        assert prolonged.status_code == 200, prolonged.text
        rotated = await client.post(
            f"/admin/v1/holder/tokens/{token}/rotate", headers=me, json={"grace_seconds": 60}
        )
        assert rotated.json()["new"]["jwt"].count(".") == 2
        new = rotated.json()["new"]["token"]["id"]
        revoked = await client.post(f"/admin/v1/holder/tokens/{new}/revoke", headers=me)
        assert revoked.json()["state"] == "revoked"

    store = redis.asyncio.Redis.from_url(admin_api.redis_url)
    try:
        # Refused from the next call, by a gateway with or without registry.
        assert await store.exists(revoked_key(new, mine), revoked_key(new)) == 2
    finally:
        await store.aclose()
    async with await psycopg.AsyncConnection.connect(admin_api.database_url) as conn:
        cursor = await conn.execute(
            "SELECT action FROM registry.audit WHERE actor = %s ORDER BY seq", (f"{_AGENT} via console",)
        )
        assert [row[0] for row in await cursor.fetchall()] == [
            "token.prolong",
            "token.issue",
            "token.rotate",
            "token.revoke",
        ]


async def test_an_editor_reads_their_delegations_and_their_statistics(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        world = await _world(client)
        editor, delegation, mine = world["editor"]["id"], world["delegation"]["id"], world["mine"]["id"]
        store = redis.asyncio.Redis.from_url(admin_api.redis_url)
        recorder = UsageRecorder(store, flush_seconds=3600)
        for code, outcome in (("", "OK"), ("", "OK"), ("00100", "PERMISSION_DENIED")):
            recorder.count("t", _QF, outcome, details=Details(mine, delegation, code, 8.0, "r-1"))
        await recorder.flush()
        await store.aclose()

        me = _for(_EDITOR)
        assert [e["id"] for e in (await client.get("/admin/v1/holder/editors", headers=me)).json()] == [
            editor
        ]
        shown = (await client.get(f"/admin/v1/holder/editors/{editor}", headers=me)).json()
        assert [t["id"] for t in shown["tokens"]] == [world["editor_token"]["id"]]
        assert [(d["id"], d["habilitation_label"]) for d in shown["delegations"]] == [
            (delegation, "CCAS test")
        ]
        activity = (
            await client.get(f"/admin/v1/holder/delegations/{delegation}/activity?window=10m", headers=me)
        ).json()
        assert sorted((row["outcome"], row["code"], row["calls"]) for row in activity["rows"]) == [
            ("OK", "", 2),
            ("PERMISSION_DENIED", "00100", 1),
        ]
        assert activity["codes"]["00100"]["title"] == "Privilèges insuffisants"
        last = (await client.get(f"/admin/v1/holder/delegations/{delegation}/requests", headers=me)).json()
        assert [entry["code"] for entry in last] == ["00100", "", ""]
        # The editor is not the habilitation's holder: its own page is not theirs.
        assert (
            await client.get(f"/admin/v1/holder/habilitations/{mine}/activity", headers=me)
        ).status_code == 404
        holder = _for(_AGENT)
        hours = (
            await client.get(f"/admin/v1/holder/habilitations/{mine}/activity?window=30h", headers=holder)
        ).json()
        assert sum(row["calls"] for row in hours["rows"]) == 3
        refused = await client.get(
            f"/admin/v1/holder/habilitations/{mine}/activity?window=1y", headers=holder
        )
        assert (refused.status_code, refused.json()["field"]) == (400, "window")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/admin/v1/habilitations", _for(_AGENT)),  # the console's credential on an operator's route
        ("POST", "/admin/v1/habilitations", _for(_AGENT)),
        ("GET", "/admin/v1/editors", {"authorization": f"Bearer {CONSOLE_SECRET}"}),
        ("GET", "/admin/v1/holder/habilitations", _ADMIN),  # an operator is no holder
        (
            "GET",
            "/admin/v1/holder/habilitations",
            {"authorization": f"Bearer {CONSOLE_SECRET}"},
        ),  # nobody named
        ("GET", "/admin/v1/holder/habilitations", _for("not an address")),
    ],
)
async def test_the_console_s_credential_acts_only_for_a_named_holder(
    admin_api: AdminApi, method: str, path: str, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        answer = await client.request(method, path, headers=headers, json={})
    assert answer.status_code == 403, answer.text


async def test_a_holder_revokes_a_delegation_of_theirs_and_nobody_else_may(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        world = await _world(client)
        path = f"/admin/v1/holder/delegations/{world['delegation']['id']}/revoke"
        for stranger in (_OTHER, _EDITOR):  # another holder; the editor delegated to
            assert (await client.post(path, headers=_for(stranger))).status_code == 404, stranger
        revoked = await client.post(path, headers=_for(_AGENT))
        assert (revoked.status_code, revoked.json()["state"]) == (200, "revoked")
        assert (await client.post(path, headers=_for(_AGENT))).status_code == 409
    store = redis.asyncio.Redis.from_url(admin_api.redis_url)
    try:
        # The editor's calls under it refused from the next one (the limiter reads this key).
        key = revoked_delegation_key(world["delegation"]["id"], world["mine"]["id"])
        assert await store.exists(key) == 1
    finally:
        await store.aclose()


async def test_a_holder_maps_a_france_connect_client_to_theirs_and_never_takes_another_s(
    admin_api: AdminApi,
) -> None:
    """Issue 22: the habilitation's holder maps a FranceConnect client to it; a client mapped to another
    holder's habilitation stays theirs (409), a habilitation not theirs is not found (404)."""
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        world = await _world(client)
        mine, other = world["mine"]["id"], world["other"]["id"]
        path = "/admin/v1/holder/france_connect_clients/{}"

        mapped = await client.put(path.format("a1b2c3"), headers=_for(_AGENT), json={"habilitation_id": mine})
        assert (mapped.status_code, mapped.json()["habilitation_id"]) == (200, mine), mapped.text
        shown = (await client.get(f"/admin/v1/holder/habilitations/{mine}", headers=_for(_AGENT))).json()
        assert [c["client_id"] for c in shown["france_connect_clients"]] == ["a1b2c3"]

        # Another holder can neither take the client nor map one to a habilitation not theirs.
        taken = await client.put(path.format("a1b2c3"), headers=_for(_OTHER), json={"habilitation_id": other})
        assert taken.status_code == 409, taken.text
        foreign = await client.put(
            path.format("d4e5f6"), headers=_for(_OTHER), json={"habilitation_id": mine}
        )
        assert foreign.status_code == 404, foreign.text
        bad = await client.put(
            path.format("not a client"), headers=_for(_AGENT), json={"habilitation_id": mine}
        )
        assert (bad.status_code, bad.json()["field"]) == (400, "client_id")

        clients = (await client.get("/admin/v1/france_connect_clients", headers=_ADMIN)).json()
        assert [(c["client_id"], c["habilitation_id"]) for c in clients] == [("a1b2c3", mine)]
    async with await psycopg.AsyncConnection.connect(admin_api.database_url) as conn:
        cursor = await conn.execute(
            "SELECT actor FROM registry.audit WHERE action = 'france_connect_client.map' ORDER BY seq"
        )
        assert [row[0] for row in await cursor.fetchall()] == [f"{_AGENT} via console"]
