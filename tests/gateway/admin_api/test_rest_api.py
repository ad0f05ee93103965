"""The admin API's REST front: the same actions and operators as gRPC, JSON in and out."""

from __future__ import annotations

import httpx

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
