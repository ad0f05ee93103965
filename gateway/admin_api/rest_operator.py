"""The admin REST front's maintenance windows and audit entries (`gateway.admin_api.rest_api` serves them).

| method and path | action |
|---|---|
| ``GET /admin/v1/maintenance`` | the windows not over: ``[{"ping", "label", "start", "end", "open"}]`` |
| ``POST /admin/v1/maintenance`` | open one: body ``ping``, ``end``, ``start`` (optional), ISO 8601 |
| ``POST /admin/v1/maintenance/{ping}/close`` | ``{"window"}`` as it ends now, or null (cancelled) |
| ``GET /admin/v1/audit?page_size=&page_token=`` | ``{"entries", "next_page_token"}``, newest first |

Rules and statuses: `gateway.admin_api.maintenance`, `gateway.admin_api.trail`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.admin_api.actions import AdminService
from gateway.admin_api.maintenance import MaintenanceWindow
from gateway.admin_api.rest_call import Call, RestRoute, moment
from gateway.registry.model import InvalidInputError


def window_json(window: MaintenanceWindow, now: dt.datetime) -> dict[str, Any]:
    """A window as the REST front gives it, ``open`` as of ``now``."""
    return {**window.as_json(), "open": window.is_open(now)}


def _moment(body: dict[str, Any], name: str) -> dt.datetime:
    value = body.get(name)
    if value is None:
        raise InvalidInputError(name, "required: an ISO 8601 date and time with its offset")
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be an ISO 8601 date and time")
    return moment(name, value)


def _whole(call: Call, name: str) -> int:
    text = call.query(name) or "0"
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidInputError(name, "must be a whole number")
    return int(text)


async def list_windows(service: AdminService, call: Call) -> Any:
    """The windows not over."""
    now = dt.datetime.now(dt.UTC)
    return [window_json(window, now) for window in await service.list_maintenance_windows(call.operator)]


async def open_window(service: AdminService, call: Call) -> Any:
    """Open (or replace) the body's ``ping``'s window."""
    ping = call.body.get("ping")
    if not isinstance(ping, str):
        raise InvalidInputError("ping", "required: the ping's name (GET /api/pings lists them)")
    start = _moment(call.body, "start") if call.body.get("start") is not None else None
    window = await service.open_maintenance_window(
        call.operator, ping, start=start, end=_moment(call.body, "end")
    )
    return window_json(window, dt.datetime.now(dt.UTC))


async def close_window(service: AdminService, call: Call) -> Any:
    """End a ping's window now, or cancel its scheduled one."""
    window = await service.close_maintenance_window(call.operator, str(call.request.path_params["ping"]))
    return {"window": None if window is None else window_json(window, dt.datetime.now(dt.UTC))}


async def list_audit(service: AdminService, call: Call) -> Any:
    """A page of the audit trail, newest first."""
    entries, token = await service.list_audit(
        call.operator, page_size=_whole(call, "page_size"), page_token=call.query("page_token") or ""
    )
    return {"entries": [entry.as_json() for entry in entries], "next_page_token": token}


ROUTES: tuple[RestRoute[AdminService], ...] = (
    RestRoute("GET", "/maintenance", list_windows),
    RestRoute("POST", "/maintenance", open_window, 201),
    RestRoute("POST", "/maintenance/{ping}/close", close_window),
    RestRoute("GET", "/audit", list_audit),
)
"""The module's table, in the order they are matched."""
