"""The admin API's REST front: the same actions and operators as gRPC, JSON in and out."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx

from gateway.registry.model import TOKEN_DEFAULT_DAYS
from tests.gateway.registry.conftest import ADMIN_SECRET, SIRET, VIEWER_SECRET, AdminApi

_ADMIN = {"authorization": f"Bearer {ADMIN_SECRET}"}
_VIEWER = {"authorization": f"Bearer {VIEWER_SECRET}"}


async def test_a_console_creates_a_habilitation_and_issues_a_token(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        created = await client.post(
            "/admin/v1/habilitations",
            headers=_ADMIN,
            json={
                "label": "CCAS de Lyon",
                "siret": SIRET,
                "scopes": ["cnaf_quotient_familial"],
                "rate_per_minute": 30,
            },
        )
        assert created.status_code == 201, created.text
        habilitation = created.json()
        issued = await client.post(
            f"/admin/v1/habilitations/{habilitation['id']}/tokens", headers=_ADMIN, json={"days": 7}
        )
        assert issued.status_code == 201
        assert issued.json()["token"]["state"] == "active"
        shown = await client.get(f"/admin/v1/habilitations/{habilitation['id']}", headers=_VIEWER)
        assert [token["id"] for token in shown.json()["tokens"]] == [issued.json()["token"]["id"]]
        expiring = await client.get("/admin/v1/tokens?expiring_within_days=30", headers=_VIEWER)
        assert len(expiring.json()) == 1


async def test_the_organisation_name_is_written_and_changed_over_rest(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        created = await client.post(
            "/admin/v1/habilitations",
            headers=_ADMIN,
            json={
                "label": "CCAS de Lyon",
                "siret": SIRET,
                "scopes": ["cnaf_quotient_familial"],
                "organisation_name": "Ville de Lyon",
            },
        )
        assert created.status_code == 201, created.text
        path = f"/admin/v1/habilitations/{created.json()['id']}"
        assert created.json()["organisation_name"] == "Ville de Lyon"
        kept = await client.patch(path, headers=_ADMIN, json={"rate_per_minute": 30})
        assert kept.json()["organisation_name"] == "Ville de Lyon"
        renamed = await client.patch(path, headers=_ADMIN, json={"organisation_name": "Métropole de Lyon"})
        assert renamed.json()["organisation_name"] == "Métropole de Lyon"
        refused = await client.patch(path, headers=_ADMIN, json={"organisation_name": 7})
        assert refused.status_code == 400
        assert "organisation_name" in refused.text
        assert (await client.get(path, headers=_VIEWER)).json()["organisation_name"] == "Métropole de Lyon"


async def test_refusals_have_their_status(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        assert (await client.get("/admin/v1/habilitations")).status_code == 401
        forbidden = await client.post("/admin/v1/habilitations", headers=_VIEWER, json={})
        assert forbidden.status_code == 403
        invalid = await client.post(
            "/admin/v1/habilitations",
            headers=_ADMIN,
            json={"label": "x", "siret": "1", "scopes": ["cnaf_quotient_familial"]},
        )
        assert (invalid.status_code, invalid.json()["field"]) == (400, "siret")
        not_json = await client.post("/admin/v1/habilitations", headers=_ADMIN, content=b"{")
        assert (not_json.status_code, not_json.json()["field"]) == (400, "body")
        unknown = await client.post(
            "/admin/v1/tokens/0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e/revoke",
            headers=_ADMIN,
            json={"reason": "x"},
        )
        assert unknown.status_code == 404


async def test_a_console_records_an_editor_its_token_a_delegation_and_a_france_connect_client(
    admin_api: AdminApi,
) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        habilitation = await client.post(
            "/admin/v1/habilitations",
            headers=_ADMIN,
            json={"label": "CCAS", "siret": SIRET, "scopes": ["cnaf_quotient_familial"]},
        )
        editor = await client.post(
            "/admin/v1/editors",
            headers=_ADMIN,
            json={"siret": SIRET, "name": "Logiciel", "allowed_ips": ["10.0.0.0/8"]},
        )
        assert editor.status_code == 201, editor.text
        editor_id, habilitation_id = editor.json()["id"], habilitation.json()["id"]
        issued = await client.post(f"/admin/v1/editors/{editor_id}/tokens", headers=_ADMIN, json={})
        assert issued.status_code == 201, issued.text
        assert (issued.json()["token"]["kind"], issued.json()["token"]["habilitation_id"]) == ("editor", None)
        token = issued.json()["token"]
        lifetime = dt.datetime.fromisoformat(token["expires_at"]) - dt.datetime.fromisoformat(
            token["issued_at"]
        )
        assert (token["environment"], lifetime) == ("production", dt.timedelta(days=TOKEN_DEFAULT_DAYS))
        sandbox = await client.post(
            f"/admin/v1/habilitations/{habilitation_id}/tokens",
            headers=_ADMIN,
            json={"environment": "sandbox"},
        )
        assert (sandbox.status_code, sandbox.json()["token"]["environment"]) == (201, "sandbox")
        unknown = await client.post(
            f"/admin/v1/habilitations/{habilitation_id}/tokens",
            headers=_ADMIN,
            json={"environment": "staging"},
        )
        assert (unknown.status_code, unknown.json()["field"]) == (400, "environment")
        delegated = await client.post(
            "/admin/v1/delegations",
            headers=_ADMIN,
            json={"editor_id": editor_id, "habilitation_id": habilitation_id},
        )
        assert (delegated.status_code, delegated.json()["state"]) == (201, "active")
        again = await client.post(
            "/admin/v1/delegations",
            headers=_ADMIN,
            json={"editor_id": editor_id, "habilitation_id": habilitation_id},
        )
        assert again.status_code == 409
        revoked = await client.post(f"/admin/v1/delegations/{delegated.json()['id']}/revoke", headers=_ADMIN)
        for query, expected in (
            (f"editor_id={editor_id}", [delegated.json()["id"]]),
            (f"habilitation_id={habilitation_id}", [delegated.json()["id"]]),
            (f"editor_id={uuid.uuid4()}", []),
        ):
            found = await client.get(f"/admin/v1/delegations?{query}", headers=_VIEWER)
            assert [delegation["id"] for delegation in found.json()] == expected, query
        invited = await client.get(f"/admin/v1/invitations?editor_id={editor_id}", headers=_VIEWER)
        assert (invited.status_code, invited.json()) == (200, [])
        assert revoked.json()["state"] == "revoked"
        assert (
            await client.post(f"/admin/v1/delegations/{delegated.json()['id']}/revoke", headers=_ADMIN)
        ).status_code == 409
        shown = await client.get(f"/admin/v1/editors/{editor_id}", headers=_VIEWER)
        assert [d["state"] for d in shown.json()["delegations"]] == ["revoked"]
        assert [t["id"] for t in shown.json()["tokens"]] == [issued.json()["token"]["id"]]
        mapped = await client.put(
            "/admin/v1/france_connect_clients/a1b2c3",
            headers=_ADMIN,
            json={"habilitation_id": habilitation_id},
        )
        assert mapped.status_code == 200, mapped.text
        listed = await client.get("/admin/v1/france_connect_clients", headers=_VIEWER)
        assert [(c["client_id"], c["habilitation_id"]) for c in listed.json()] == [
            ("a1b2c3", habilitation_id)
        ]


async def test_bad_editor_and_delegation_input_is_refused_with_the_field(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        bad_siret = await client.post("/admin/v1/editors", headers=_ADMIN, json={"siret": "1", "name": "x"})
        assert (bad_siret.status_code, bad_siret.json()["field"]) == (400, "siret")
        bad_ip = await client.post(
            "/admin/v1/editors",
            headers=_ADMIN,
            json={"siret": SIRET, "name": "x", "allowed_ips": ["10.0.0.1/8"]},
        )
        assert (bad_ip.status_code, bad_ip.json()["field"]) == (400, "allowed_ips")
        no_name = await client.post("/admin/v1/editors", headers=_ADMIN, json={"siret": SIRET, "name": " "})
        assert (no_name.status_code, no_name.json()["field"]) == (400, "name")
        bad_id = await client.post(
            "/admin/v1/delegations", headers=_ADMIN, json={"editor_id": "x", "habilitation_id": "y"}
        )
        assert (bad_id.status_code, bad_id.json()["field"]) == (400, "editor")
        unknown = await client.post(
            "/admin/v1/delegations",
            headers=_ADMIN,
            json={
                "editor_id": "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
                "habilitation_id": "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
            },
        )
        assert unknown.status_code == 404
        bad_origin = await client.post(
            "/admin/v1/delegations",
            headers=_ADMIN,
            json={"editor_id": "x", "habilitation_id": "y", "created_via": "z"},
        )
        assert (bad_origin.status_code, bad_origin.json()["field"]) == (400, "created_via")
        bad_client = await client.put(
            "/admin/v1/france_connect_clients/a%20b", headers=_ADMIN, json={"habilitation_id": "y"}
        )
        assert (bad_client.status_code, bad_client.json()["field"]) == (400, "client_id")
        forbidden = await client.post(
            "/admin/v1/editors", headers=_VIEWER, json={"siret": SIRET, "name": "x"}
        )
        assert forbidden.status_code == 403
