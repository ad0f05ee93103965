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
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.actions import AdminService
from gateway.admin_api.maintenance import MaintenanceWindow
from gateway.admin_api.service import Operator
from gateway.registry.model import InvalidInputError

Handler = Callable[[Request, Operator, dict[str, Any]], Awaitable[Any]]
Endpoint = Callable[..., Callable[[Request], Awaitable[Response]]]


def window_json(window: MaintenanceWindow, now: dt.datetime) -> dict[str, Any]:
    """A window as the REST front gives it, ``open`` as of ``now``."""
    return {**window.as_json(), "open": window.is_open(now)}


def _moment(body: dict[str, Any], name: str) -> dt.datetime:
    value = body.get(name)
    if value is None:
        raise InvalidInputError(name, "required: an ISO 8601 date and time with its offset")
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be an ISO 8601 date and time")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(name, "must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise InvalidInputError(name, "must give its offset (Z or +hh:mm)")
    return moment


def _whole(request: Request, name: str) -> int:
    text = request.query_params.get(name, "") or "0"
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidInputError(name, "must be a whole number")
    return int(text)


def routes(service: AdminService, endpoint: Endpoint, prefix: str) -> list[Route]:
    """The routes of the module's table, served by ``endpoint`` (operator authenticated, refusals mapped)."""

    async def list_windows(_request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        now = dt.datetime.now(dt.UTC)
        return [window_json(window, now) for window in await service.list_maintenance_windows(operator)]

    async def open_window(_request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        ping = body.get("ping")
        if not isinstance(ping, str):
            raise InvalidInputError("ping", "required: the ping's name (GET /api/pings lists them)")
        start = _moment(body, "start") if body.get("start") is not None else None
        window = await service.open_maintenance_window(operator, ping, start=start, end=_moment(body, "end"))
        return window_json(window, dt.datetime.now(dt.UTC))

    async def close_window(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        window = await service.close_maintenance_window(operator, str(request.path_params["ping"]))
        return {"window": None if window is None else window_json(window, dt.datetime.now(dt.UTC))}

    async def list_audit(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        entries, token = await service.list_audit(
            operator,
            page_size=_whole(request, "page_size"),
            page_token=request.query_params.get("page_token", ""),
        )
        return {"entries": [entry.as_json() for entry in entries], "next_page_token": token}

    return [
        Route(f"{prefix}/maintenance", endpoint(list_windows), methods=["GET"]),
        Route(f"{prefix}/maintenance", endpoint(open_window, 201), methods=["POST"]),
        Route(f"{prefix}/maintenance/{{ping}}/close", endpoint(close_window), methods=["POST"]),
        Route(f"{prefix}/audit", endpoint(list_audit), methods=["GET"]),
    ]
