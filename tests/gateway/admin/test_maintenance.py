"""``python -m gateway.admin maintenance``: a client of the admin API, its ``main`` run against one."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis

from gateway import pings
from tests.gateway.admin.test_habilitations import cli
from tests.gateway.registry.conftest import (
    VIEWER_SECRET,
    AdminApi,
    admin_api,
    maintenance_windows,
    registry_url,
)

__all__ = ["admin_api", "maintenance_windows", "registry_url"]

_PING = "men_scolarite"


async def test_open_list_and_clear_a_window_through_the_admin_api(
    admin_api: AdminApi, maintenance_windows: redis.Redis
) -> None:
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(microsecond=0)
    opened = await cli(admin_api, "maintenance", _PING, "--until", until.isoformat())
    assert (opened.returncode, opened.stdout.strip()) == (0, _PING), opened.stderr
    assert f"until {until:%Y-%m-%d %H:%M:%S} UTC" in opened.stderr
    stored = maintenance_windows.get(pings.window_key(_PING))
    assert isinstance(stored, bytes)
    assert pings.parse_window(stored).end == until.timestamp()

    listed = await cli(admin_api, "maintenance", "--list", "--json", secret=VIEWER_SECRET)
    assert listed.returncode == 0, listed.stderr
    assert [(w["ping"], w["open"]) for w in json.loads(listed.stdout)["windows"]] == [(_PING, True)]
    table = await cli(admin_api, "maintenance", "--list", secret=VIEWER_SECRET)
    assert table.stdout.splitlines()[1].split()[:2] == [_PING, "open"]

    viewer = await cli(admin_api, "maintenance", _PING, "--clear", secret=VIEWER_SECRET)
    assert viewer.returncode == 1 and "may not write" in viewer.stderr
    cleared = await cli(admin_api, "maintenance", _PING, "--clear")
    assert (cleared.returncode, cleared.stdout.strip()) == (0, _PING), cleared.stderr
    assert "ended now" in cleared.stderr
    again = await cli(admin_api, "maintenance", _PING, "--clear")
    assert again.returncode == 1 and "no maintenance window open or scheduled" in again.stderr

    trail = await cli(admin_api, "audit", "list", "--json", secret=VIEWER_SECRET)
    assert trail.returncode == 0, trail.stderr
    actions = [entry["action"] for entry in json.loads(trail.stdout)["entries"]]
    assert actions == ["maintenance.close", "maintenance.open"]


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (("nobody", "--until", "2099-01-01T00:00:00Z"), 2, "ping: names no ping of the API"),
        ((_PING,), 2, "--until is required"),
        (("--until", "2099-01-01T00:00:00Z"), 2, "the ping's name is required"),
        ((_PING, "--until", "2099-01-01T00:00:00"), 2, "has no UTC offset"),
        ((_PING, "--until", "2000-01-01T00:00:00Z"), 2, "end: must be in the future"),
        ((_PING, "--until", "2099-01-01T00:00:00Z"), 2, "end: a window lasts at most 7 days"),
    ],
    ids=["unknown-ping", "no-end", "no-ping", "no-offset", "over", "too-long"],
)
async def test_bad_windows_are_refused_and_change_nothing(
    admin_api: AdminApi, maintenance_windows: redis.Redis, arguments: tuple[str, ...], code: int, message: str
) -> None:
    result = await cli(admin_api, "maintenance", *arguments)
    assert (result.returncode, message in result.stderr) == (code, True), result.stderr
    assert not maintenance_windows.exists(pings.window_key(_PING))


async def test_without_the_admin_api_settings_it_says_so() -> None:
    result = await cli(None, "maintenance", _PING, "--until", "2099-01-01T00:00:00Z")
    assert result.returncode == 2 and "ADMIN_API_ADDRESS" in result.stderr
