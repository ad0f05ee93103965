"""Maintenance windows through the admin API: listed, opened and closed by operators, each write audited.

A window lives where every gateway reads it, the gateways' Redis (`gateway.pings`: one key per
ping, ``"<start> <end>"``, expiring 10 minutes after its end, the grace of the ratio check). The
admin API is its only writer; each write is an entry of the audit trail
(`gateway.registry.audit`: actor, ``maintenance.open`` or ``maintenance.close``, the ping's name,
the window before and after).

One write is one PostgreSQL transaction: the chain's lock taken, the window before read from
Redis, the entry appended, then the window written to Redis, then the commit. Redis refusing the
write rolls the entry back; the commit failing after Redis took the write puts the window before
back (best effort: Redis lost at that very instant leaves the window without its entry).

Rules (the console's, now the admin API's): the ping is one of `gateway.pings.PINGS`; the end is
after the start and in the future; a window lasts at most `WINDOW_MAX` (7 days). Opening a ping's
window replaces any other of that ping. Closing ends an open window now (the ratio's grace then
applies) and cancels a scheduled one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import psycopg
import redis.asyncio
from redis.exceptions import RedisError

from gateway import pings
from gateway.registry import audit, store
from gateway.registry.model import InvalidInputError

WINDOW_MAX = dt.timedelta(days=7)
"""The longest window: a provider down longer is an incident, not a maintenance."""


class GatewaysUnreachableError(Exception):
    """The gateways' Redis, where the windows live, cannot be reached; nothing was changed."""


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A ping's maintenance window."""

    ping: pings.Ping
    start: dt.datetime
    end: dt.datetime

    def is_open(self, now: dt.datetime) -> bool:
        """Whether it has started (and not ended) at ``now``."""
        return self.start <= now < self.end

    def as_json(self) -> dict[str, Any]:
        """``ping``, ``label``, ``start``, ``end`` (ISO 8601, UTC): the audit trail's record of it."""
        return {
            "ping": self.ping.id,
            "label": self.ping.label,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def checked_ping(ping_id: str) -> pings.Ping:
    """The ping of this name.

    Raises:
        InvalidInputError: no ping has it.
    """
    ping = pings.BY_ID.get(ping_id)
    if ping is None:
        raise InvalidInputError("ping", "names no ping of the API (GET /api/pings lists them)")
    return ping


def checked_window(
    ping: pings.Ping, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> MaintenanceWindow:
    """A window of ``ping`` from ``start`` to ``end`` (both with their offset), as of ``now``.

    Raises:
        InvalidInputError: the end is not after the start, is past, or more than `WINDOW_MAX` after
            the start (field ``end``).
    """
    if end <= now:
        raise InvalidInputError("end", "must be in the future")
    if end <= start:
        raise InvalidInputError("end", "must be after the start")
    if end - start > WINDOW_MAX:
        raise InvalidInputError("end", f"a window lasts at most {WINDOW_MAX.days} days")
    return MaintenanceWindow(ping, start.astimezone(dt.UTC), end.astimezone(dt.UTC))


def _window(ping: pings.Ping, value: str | bytes) -> MaintenanceWindow:
    stored = pings.parse_window(value)
    return MaintenanceWindow(
        ping, dt.datetime.fromtimestamp(stored.start, dt.UTC), dt.datetime.fromtimestamp(stored.end, dt.UTC)
    )


async def list_windows(client: redis.asyncio.Redis, now: dt.datetime) -> list[MaintenanceWindow]:
    """The windows not over at ``now``, soonest start first (one Redis read).

    Raises:
        GatewaysUnreachableError: Redis cannot be read.
    """
    try:
        values = await client.mget([pings.window_key(ping.id) for ping in pings.PINGS])
    except (RedisError, OSError) as error:
        raise GatewaysUnreachableError(
            f"the gateways' Redis cannot be reached ({type(error).__name__})"
        ) from None
    windows = [
        _window(ping, value) for ping, value in zip(pings.PINGS, values, strict=True) if value is not None
    ]
    return sorted((window for window in windows if window.end > now), key=lambda window: window.start)


async def _read(client: redis.asyncio.Redis, ping: pings.Ping) -> MaintenanceWindow | None:
    try:
        value = await client.get(pings.window_key(ping.id))
    except (RedisError, OSError) as error:
        raise GatewaysUnreachableError(
            f"the gateways' Redis cannot be reached ({type(error).__name__}); nothing was changed"
        ) from None
    return None if value is None else _window(ping, value)


async def _put(client: redis.asyncio.Redis, ping: pings.Ping, window: MaintenanceWindow | None) -> None:
    """Store ``window`` as the ping's (None: remove the ping's)."""
    key = pings.window_key(ping.id)
    try:
        if window is None:
            await client.delete(key)
            return
        stored = pings.Window(window.start.timestamp(), window.end.timestamp())
        await client.set(key, pings.window_value(stored), exat=pings.window_expiry(stored))
    except (RedisError, OSError) as error:
        raise GatewaysUnreachableError(
            f"the gateways' Redis cannot be reached ({type(error).__name__}); nothing was changed"
        ) from None


After = TypeVar("After", bound=MaintenanceWindow | None)


async def _changed(
    conn: psycopg.AsyncConnection[Any],
    client: redis.asyncio.Redis,
    actor: str,
    action: str,
    *,
    ping: pings.Ping,
    change: Callable[[MaintenanceWindow | None, dt.datetime], After],
) -> After:
    """Apply ``change`` (the window before and now → the window after) to the ping's, audited."""
    before: MaintenanceWindow | None = None
    written = False
    try:
        async with conn.transaction():
            await audit.lock(conn)
            before = await _read(client, ping)
            after = change(before, dt.datetime.now(dt.UTC))
            await audit.append(
                conn,
                actor=actor,
                action=action,
                target=ping.id,
                before=None if before is None else before.as_json(),
                after=None if after is None else after.as_json(),
            )
            await _put(client, ping, after)
            written = True
    except BaseException:
        if written:
            # The commit failed after Redis took the window: the gateways must not keep an unaudited one.
            with contextlib.suppress(GatewaysUnreachableError):
                await _put(client, ping, before)
        raise
    return after


async def open_window(
    conn: psycopg.AsyncConnection[Any],
    client: redis.asyncio.Redis,
    actor: str,
    ping_id: str,
    *,
    start: dt.datetime | None,
    end: dt.datetime,
) -> MaintenanceWindow:
    """Open (or replace) the window of ``ping_id`` from ``start`` (None: now) to ``end``, as ``actor``.

    Raises:
        InvalidInputError: no such ping, or a window out of the rules (see the module).
        GatewaysUnreachableError: Redis cannot be reached; nothing was changed.
    """
    ping = checked_ping(ping_id)

    def opened(_before: MaintenanceWindow | None, now: dt.datetime) -> MaintenanceWindow:
        return checked_window(ping, now if start is None else start, end, now)

    return await _changed(conn, client, actor, "maintenance.open", ping=ping, change=opened)


async def close_window(
    conn: psycopg.AsyncConnection[Any], client: redis.asyncio.Redis, actor: str, ping_id: str
) -> MaintenanceWindow | None:
    """Close the window of ``ping_id``, as ``actor``: the open window as it now ends, or None (cancelled).

    Raises:
        InvalidInputError: no such ping.
        gateway.registry.store.UnknownError: the ping has no window open or scheduled.
        GatewaysUnreachableError: Redis cannot be reached; nothing was changed.
    """
    ping = checked_ping(ping_id)

    def closed(before: MaintenanceWindow | None, now: dt.datetime) -> MaintenanceWindow | None:
        if before is None or before.end <= now:
            raise store.UnknownError(f"no maintenance window open or scheduled for ping {ping.id}")
        return replace(before, end=now) if before.is_open(now) else None

    return await _changed(conn, client, actor, "maintenance.close", ping=ping, change=closed)
