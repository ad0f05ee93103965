"""The audit trail listed through the admin API: newest first, a bounded page, a cursor; REST and gRPC."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest

from apiparticulier.admin.v1 import admin_pb2
from gateway.admin_api.trail import PAGE_SIZE_MAX
from tests.gateway.registry.conftest import SIRET, VIEWER_SECRET, AdminApi

_VIEWER = {"authorization": f"Bearer {VIEWER_SECRET}"}


async def _habilitations(api: AdminApi, count: int) -> list[str]:
    ids = []
    for index in range(count):
        created = await api.stub.CreateHabilitation(
            admin_pb2.CreateHabilitationRequest(
                label=f"CCAS {index}", siret=SIRET, scopes=["cnaf_quotient_familial"]
            ),
            metadata=api.as_admin(),
        )
        ids.append(created.habilitation.id)
    return ids


async def test_a_viewer_pages_through_the_trail_newest_first(admin_api: AdminApi) -> None:
    ids = await _habilitations(admin_api, 5)
    pages = []
    token = ""
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        while True:
            answer = await client.get(
                "/admin/v1/audit", params={"page_size": 2, "page_token": token}, headers=_VIEWER
            )
            assert answer.status_code == 200, answer.text
            pages.append([entry["seq"] for entry in answer.json()["entries"]])
            token = answer.json()["next_page_token"]
            if not token:
                break
        newest = (await client.get("/admin/v1/audit", headers=_VIEWER)).json()["entries"][0]

    assert pages == [[5, 4], [3, 2], [1]]
    assert newest["actor"] == "operatrice-1"
    assert (newest["action"], newest["target"]) == ("habilitation.create", ids[-1])
    assert newest["before"] is None
    assert newest["after"]["label"] == "CCAS 4"
    assert newest["occurred_at"].endswith("+00:00")
    assert len(newest["hash"]) == 64


async def test_rest_refusals(admin_api: AdminApi) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        assert (await client.get("/admin/v1/audit")).status_code == 401
        for params, field, message in (
            ({"page_size": PAGE_SIZE_MAX + 1}, "page_size", f"page_size: must be 1 to {PAGE_SIZE_MAX}"),
            ({"page_size": "-1"}, "page_size", "page_size: must be a whole number"),
            ({"page_token": "abc"}, "page_token", "page_token: not a page token of this API"),
            ({"page_token": "1"}, "page_token", "page_token: not a page token of this API"),
        ):
            answer = await client.get("/admin/v1/audit", params=params, headers=_VIEWER)
            assert answer.status_code == 400, params
            assert answer.json()["field"] == field
            assert answer.json()["error"].startswith(message)


async def test_over_grpc(admin_api: AdminApi) -> None:
    await _habilitations(admin_api, 3)
    first = await admin_api.stub.ListAudit(
        admin_pb2.ListAuditRequest(page_size=2), metadata=admin_api.as_viewer()
    )
    assert [entry.seq for entry in first.entries] == [3, 2]
    assert json.loads(first.entries[0].after_json)["label"] == "CCAS 2"
    assert first.entries[0].before_json == ""
    last = await admin_api.stub.ListAudit(
        admin_pb2.ListAuditRequest(page_size=2, page_token=first.next_page_token),
        metadata=admin_api.as_viewer(),
    )
    assert ([entry.seq for entry in last.entries], last.next_page_token) == ([1], "")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin_api.stub.ListAudit(admin_pb2.ListAuditRequest())
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin_api.stub.ListAudit(
            admin_pb2.ListAuditRequest(page_size=1000), metadata=admin_api.as_viewer()
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert str(refused.value.details()).startswith("page_size:")
