"""Maintenance windows through the admin API: REST and gRPC, roles, rules, the audit trail, Redis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis

from apiparticulier.admin.v1 import admin_pb2
from gateway import pings
from tests.gateway.registry.conftest import (
    ADMIN_SECRET,
    VIEWER_SECRET,
    AdminApi,
    admin_settings,
    running_admin_api,
)

_ADMIN = {"authorization": f"Bearer {ADMIN_SECRET}"}
_VIEWER = {"authorization": f"Bearer {VIEWER_SECRET}"}
# The session's Redis is every module's: no window is left behind.
pytestmark = pytest.mark.usefixtures("maintenance_windows")

_PING = "men_scolarite"
_OTHER = "sdh_statut_sportif"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def _stored(client: redis.Redis, ping: str) -> pings.Window | None:
    value: Any = client.get(pings.window_key(ping))
    return None if value is None else pings.parse_window(value)


async def _trail(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed = await client.get("/admin/v1/audit", headers=_VIEWER)
    assert listed.status_code == 200, listed.text
    entries: list[dict[str, Any]] = listed.json()["entries"]
    return entries


async def test_an_admin_opens_replaces_and_closes_a_window_each_write_audited(
    admin_api: AdminApi, maintenance_windows: redis.Redis
) -> None:
    now = dt.datetime.now(dt.UTC)
    end = (now + dt.timedelta(hours=1)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        opened = await client.post(
            "/admin/v1/maintenance", headers=_ADMIN, json={"ping": _PING, "end": _iso(end)}
        )
        assert opened.status_code == 201, opened.text
        window = opened.json()
        assert (window["ping"], window["open"], window["end"]) == (_PING, True, end.isoformat())
        assert window["label"] == pings.BY_ID[_PING].label
        # Where every gateway reads it, as the gateways read it.
        stored = _stored(maintenance_windows, _PING)
        assert stored is not None
        assert stored.end == end.timestamp()
        assert stored.start <= dt.datetime.now(dt.UTC).timestamp()

        listed = await client.get("/admin/v1/maintenance", headers=_VIEWER)
        assert listed.status_code == 200
        assert [w["ping"] for w in listed.json()] == [_PING]

        longer = end + dt.timedelta(hours=1)
        replaced = await client.post(
            "/admin/v1/maintenance", headers=_ADMIN, json={"ping": _PING, "end": _iso(longer)}
        )
        assert replaced.status_code == 201
        closed = await client.post(f"/admin/v1/maintenance/{_PING}/close", headers=_ADMIN)
        assert closed.status_code == 200, closed.text
        assert closed.json()["window"]["open"] is False
        assert (await client.get("/admin/v1/maintenance", headers=_VIEWER)).json() == []
        # Ended, not removed: the ratio ping keeps its 10 minutes of grace.
        ended = _stored(maintenance_windows, _PING)
        assert ended is not None
        assert ended.end <= dt.datetime.now(dt.UTC).timestamp()
        assert 0 < maintenance_windows.ttl(pings.window_key(_PING)) <= pings.RATIO_WINDOW_SECONDS + 2

        entries = await _trail(client)
    assert [(e["action"], e["actor"], e["target"]) for e in entries] == [
        ("maintenance.close", "operatrice-1", _PING),
        ("maintenance.open", "operatrice-1", _PING),
        ("maintenance.open", "operatrice-1", _PING),
    ]
    close, replace, first = entries
    assert first["before"] is None
    assert first["after"]["end"] == end.isoformat()
    assert replace["before"] == first["after"]
    assert replace["after"]["end"] == longer.isoformat()
    assert close["before"] == replace["after"]
    assert close["after"]["end"] < longer.isoformat()


async def test_closing_a_scheduled_window_cancels_it(
    admin_api: AdminApi, maintenance_windows: redis.Redis
) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        opened = await client.post(
            "/admin/v1/maintenance",
            headers=_ADMIN,
            json={"ping": _OTHER, "start": _iso(start), "end": _iso(start + dt.timedelta(days=7))},
        )
        assert opened.status_code == 201, opened.text
        assert opened.json()["open"] is False
        closed = await client.post(f"/admin/v1/maintenance/{_OTHER}/close", headers=_ADMIN)
        assert closed.json() == {"window": None}
        assert _stored(maintenance_windows, _OTHER) is None
        again = await client.post(f"/admin/v1/maintenance/{_OTHER}/close", headers=_ADMIN)
        assert again.status_code == 404
        assert again.json()["error"] == f"no maintenance window open or scheduled for ping {_OTHER}"
        assert (await _trail(client))[0]["after"] is None


async def test_rest_refusals_name_their_cause_and_change_nothing(
    admin_api: AdminApi, maintenance_windows: redis.Redis
) -> None:
    now = dt.datetime.now(dt.UTC)
    hour = _iso(now + dt.timedelta(hours=1))
    refused: list[tuple[dict[str, Any], str, str]] = [
        ({"end": hour}, "ping", "ping: required: the ping's name (GET /api/pings lists them)"),
        ({"ping": "nope", "end": hour}, "ping", "ping: names no ping of the API (GET /api/pings lists them)"),
        ({"ping": _PING}, "end", "end: required: an ISO 8601 date and time with its offset"),
        ({"ping": _PING, "end": "demain"}, "end", "end: must be an ISO 8601 date and time"),
        ({"ping": _PING, "end": "2030-01-01T10:00:00"}, "end", "end: must give its offset (Z or +hh:mm)"),
        ({"ping": _PING, "start": hour, "end": hour}, "end", "end: must be after the start"),
        ({"ping": _PING, "end": _iso(now - dt.timedelta(minutes=1))}, "end", "end: must be in the future"),
        (
            {"ping": _PING, "end": _iso(now + dt.timedelta(days=7, minutes=1))},
            "end",
            "end: a window lasts at most 7 days",
        ),
        (
            {"ping": _PING, "start": 3, "end": hour},
            "start",
            "start: must be an ISO 8601 date and time",
        ),
    ]
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as client:
        for body, field, message in refused:
            answer = await client.post("/admin/v1/maintenance", headers=_ADMIN, json=body)
            assert (answer.status_code, answer.json()) == (400, {"error": message, "field": field}), body
        assert (await client.get("/admin/v1/maintenance")).status_code == 401
        assert (
            await client.post("/admin/v1/maintenance", json={"ping": _PING, "end": hour})
        ).status_code == 401
        viewer = await client.post(
            "/admin/v1/maintenance", headers=_VIEWER, json={"ping": _PING, "end": hour}
        )
        assert viewer.status_code == 403
        assert (await client.post(f"/admin/v1/maintenance/{_PING}/close", headers=_VIEWER)).status_code == 403
        unknown = await client.post("/admin/v1/maintenance/nope/close", headers=_ADMIN)
        assert (unknown.status_code, unknown.json()["field"]) == (400, "ping")
        none = await client.post(f"/admin/v1/maintenance/{_PING}/close", headers=_ADMIN)
        assert none.status_code == 404
        assert await _trail(client) == []
    assert _stored(maintenance_windows, _PING) is None


async def test_over_grpc_with_roles(admin_api: AdminApi) -> None:
    request = admin_pb2.OpenMaintenanceWindowRequest(ping=_PING)
    request.end.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30))
    opened = await admin_api.stub.OpenMaintenanceWindow(request, metadata=admin_api.as_admin())
    assert (opened.window.ping, opened.window.open) == (_PING, True)

    listed = await admin_api.stub.ListMaintenanceWindows(
        admin_pb2.ListMaintenanceWindowsRequest(), metadata=admin_api.as_viewer()
    )
    assert [w.ping for w in listed.windows] == [_PING]
    assert listed.windows[0].end == request.end

    for call, code in (
        (admin_api.stub.OpenMaintenanceWindow(request, metadata=admin_api.as_viewer()), "PERMISSION_DENIED"),
        (admin_api.stub.ListMaintenanceWindows(admin_pb2.ListMaintenanceWindowsRequest()), "UNAUTHENTICATED"),
        (
            admin_api.stub.CloseMaintenanceWindow(
                admin_pb2.CloseMaintenanceWindowRequest(ping=_PING), metadata=admin_api.as_viewer()
            ),
            "PERMISSION_DENIED",
        ),
        (
            admin_api.stub.CloseMaintenanceWindow(
                admin_pb2.CloseMaintenanceWindowRequest(ping=_OTHER), metadata=admin_api.as_admin()
            ),
            "NOT_FOUND",
        ),
        (
            admin_api.stub.CloseMaintenanceWindow(
                admin_pb2.CloseMaintenanceWindowRequest(ping="nope"), metadata=admin_api.as_admin()
            ),
            "INVALID_ARGUMENT",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code().name == code

    no_end = admin_pb2.OpenMaintenanceWindowRequest(ping=_PING)
    too_long = admin_pb2.OpenMaintenanceWindowRequest(ping=_PING)
    too_long.end.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
    for invalid, message in (
        (no_end, "end: required: the window's end"),
        (too_long, "end: a window lasts at most 7 days"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin_api.stub.OpenMaintenanceWindow(invalid, metadata=admin_api.as_admin())
        assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)

    closed = await admin_api.stub.CloseMaintenanceWindow(
        admin_pb2.CloseMaintenanceWindowRequest(ping=_PING), metadata=admin_api.as_admin()
    )
    assert (closed.HasField("window"), closed.window.open) == (True, False)
    trail = await admin_api.stub.ListAudit(admin_pb2.ListAuditRequest(), metadata=admin_api.as_viewer())
    assert [e.action for e in trail.entries] == ["maintenance.close", "maintenance.open"]


async def test_without_the_gateways_redis_nothing_is_written_nor_audited(
    registry_url: str, tmp_path: Path
) -> None:
    settings = admin_settings(registry_url, tmp_path, "redis://127.0.0.1:1/0")
    end = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    async with running_admin_api(settings) as api, httpx.AsyncClient(base_url=api.rest_url) as client:
        opened = await client.post(
            "/admin/v1/maintenance", headers=_ADMIN, json={"ping": _PING, "end": _iso(end)}
        )
        assert opened.status_code == 503
        assert opened.json()["error"].startswith("the gateways' Redis cannot be reached")
        assert (await client.get("/admin/v1/maintenance", headers=_VIEWER)).status_code == 503
        assert await _trail(client) == []
