"""What the console reads of the mesh: the REST front's public routes and the admin API.

The REST front and the admin API are called over HTTP as any client would; the console never
reads another service's tables nor the gateways' Redis (maintenance windows are the admin API's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import yaml


class MeshUnavailableError(Exception):
    """A service of the mesh did not answer, or answered something unreadable."""


class AdminRefusedError(Exception):
    """The admin API refused an action (400, 403, 404 or 409); the message is its own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class PingView:
    """What one ping says now."""

    ping_id: str
    label: str
    status: str
    """``ok``, ``bad_gateway``, ``maintenance`` or ``unknown``."""
    until: dt.datetime | None
    """The end of its maintenance window, when in one."""


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    """A maintenance window open now or scheduled, as the public status page lists it."""

    ping_id: str
    label: str
    start: dt.datetime
    end: dt.datetime
    open: bool
    """Whether it has started."""


class PublicApi:
    """The gateway's REST front, read without credentials.

    Args:
        client: An HTTP client whose base URL is the front's.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def _get(self, path: str) -> httpx.Response:
        try:
            response = await self._client.get(path)
        except httpx.HTTPError as error:
            raise MeshUnavailableError(f"{path}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise MeshUnavailableError(f"{path}: HTTP {response.status_code}")
        return response

    async def pings(self) -> list[PingView]:
        """Each ping ``GET /api/pings`` lists, with what ``GET /api/<ping>/ping`` says of it now."""
        listed = (await self._get("/api/pings")).json()
        if not isinstance(listed, list):
            raise MeshUnavailableError("/api/pings: not a list")

        async def state(entry: dict[str, str]) -> PingView:
            ping_id = entry["url"].rstrip("/").split("/")[-2]
            try:
                response = await self._client.get(f"/api/{ping_id}/ping")
                body = response.json()
            except (httpx.HTTPError, ValueError):
                body = {}
            until = body.get("until")
            return PingView(
                ping_id,
                entry["name"],
                str(body.get("status", "unknown")),
                dt.datetime.fromisoformat(until) if until else None,
            )

        return list(await asyncio.gather(*(state(entry) for entry in listed)))

    async def proofs_avoided(self) -> tuple[int, int]:
        """``GET /api/proofs_avoided``: the proofs avoided and the number of days they were counted over."""
        body = (await self._get("/api/proofs_avoided")).json()
        return int(body["proofs_avoided"]), int(body["days"])

    async def proofs_by_api(self) -> tuple[list[tuple[dt.date, str, int]], int]:
        """``GET /mesh/v1/statistics/proofs_avoided``: ``(day, API label, proofs)`` rows, and the days."""
        body = (await self._get("/mesh/v1/statistics/proofs_avoided")).json()
        rows = [
            (dt.date.fromisoformat(row["day"]), str(row["api"]), int(row["proofs"]))
            for row in body["proofs_avoided"]
        ]
        return rows, int(body["days"])

    async def availability(self) -> dict[str, Any]:
        """``GET /mesh/v1/statistics/availability``: each ping's days over 90 days, and the incidents."""
        body = (await self._get("/mesh/v1/statistics/availability")).json()
        if not isinstance(body, dict) or not {"days", "pings", "incidents"} <= body.keys():
            raise MeshUnavailableError("/mesh/v1/statistics/availability: not a history")
        return body

    async def maintenances(self) -> list[MaintenanceView]:
        """``GET /mesh/v1/status/maintenances``: the windows open or scheduled, soonest first."""
        body = (await self._get("/mesh/v1/status/maintenances")).json()
        try:
            return [
                MaintenanceView(
                    str(window["ping"]),
                    str(window["name"]),
                    dt.datetime.fromisoformat(window["start"]),
                    dt.datetime.fromisoformat(window["end"]),
                    bool(window["open"]),
                )
                for window in body["maintenances"]
            ]
        except (KeyError, TypeError, ValueError):
            raise MeshUnavailableError("/mesh/v1/status/maintenances: not a list of windows") from None

    async def openapi(self) -> dict[str, Any]:
        """``GET /openapi.yaml``: the spec the front serves, restricted to its routes."""
        text = (await self._get("/openapi.yaml")).text
        spec = await asyncio.to_thread(yaml.load, text, Loader=yaml.CSafeLoader)
        if not isinstance(spec, dict):
            raise MeshUnavailableError("/openapi.yaml: not a document")
        return spec


class AdminApi:
    """The admin API's REST front, called with the signed-in operator's secret.

    Args:
        client: An HTTP client whose base URL is the admin API's.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def call(
        self,
        secret: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        """The JSON answer of ``method path`` (under ``/admin/v1``), as the operator of ``secret``.

        ``params`` go into the query string.

        Raises:
            PermissionError: 401, the secret is no operator's (any more).
            AdminRefusedError: 400, 403, 404 or 409, with the admin API's message.
            MeshUnavailableError: the admin API or its database is unreachable.
        """
        try:
            response = await self._client.request(
                method,
                f"/admin/v1{path}",
                json=body,
                params=params,
                headers={"authorization": f"Bearer {secret}"},
            )
        except httpx.HTTPError as error:
            raise MeshUnavailableError(f"admin API: {type(error).__name__}") from None
        if response.status_code == 401:
            raise PermissionError("unknown operator credential")
        if response.status_code in {400, 403, 404, 409}:
            raise AdminRefusedError(response.status_code, str(response.json().get("error", "")))
        if response.status_code >= 300:
            raise MeshUnavailableError(f"admin API: HTTP {response.status_code}")
        return response.json()
