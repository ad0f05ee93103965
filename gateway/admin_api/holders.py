"""The admin API for a habilitation holder or an editor, as the web console acts for them (issue 24).

The console authenticates with its own credential, of role ``console`` (`service.Role.CONSOLE`),
and names the person it signed in (through ProConnect) with ``X-Acting-For: <e-mail>``. That
credential does nothing else: every operator action refuses it, and every read and action here is
restricted to what is the named person's:

- a habilitation is theirs when its contacts hold their e-mail (case aside): DataPass's contacts
  (the applicant, the business and technical contacts) are its holder's people, matched by e-mail
  (ACCESS-MODEL.md §1.2 and §6);
- an editor is theirs when its contacts hold their e-mail, and so are its editor tokens and its
  delegations;
- a token is theirs when its habilitation, or its editor, is.

Anything else answers as a record that does not exist (`store.UnknownError`, 404): whether another
holder's habilitation exists is not told. Every action is written to the audit trail as
``<e-mail> via <console>`` (`service.Operator.actor`); the logs name the console alone.

Statistics come from the gateways' Redis, where the gateways record them (`gateway.usage`):
calls per 10 minutes by API, outcome and error code (with the code's title and detail from the
error catalogue, as ``GET /api/errors`` gives them), and the last calls.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import redis.asyncio

from gateway.admin_api.service import (
    ForbiddenError,
    IssuedToken,
    Operator,
    Role,
    ServiceCore,
    UnavailableError,
    log_audit_head,
)
from gateway.registry import store
from gateway.registry.model import (
    Delegation,
    Editor,
    FranceConnectClient,
    Habilitation,
    InvalidInputError,
    TokenRecord,
)
from gateway.usage import (
    BUCKET_SECONDS,
    LastRequest,
    bucket_of,
    delegation_counter,
    habilitation_counter,
    read_activity,
    read_last_requests,
)
from runtime.error_catalogue import CODES, PROVIDER_CODES
from runtime.errors import ApiError

Result = TypeVar("Result")
Held = TypeVar("Held", Habilitation, Editor)
OtherEnd = TypeVar("OtherEnd", Habilitation, Editor)
View = tuple[Held, list[TokenRecord], list[tuple[Delegation, OtherEnd]]]
"""A habilitation or editor of theirs, its tokens, and its delegations each with their other end's record."""

ACTING_FOR_HEADER = "x-acting-for"
"""The header naming the holder a ``console`` operator acts for."""
_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")

WINDOWS: dict[str, int] = {"10m": 2, "30h": 30 * 6, "8d": 8 * 24 * 6}
"""The statistics' windows, in 10-minute buckets, the one under way included ("10m": it and the one
before, so that the last 10 minutes are always whole)."""
HOLDER_REVOCATION_REASON = "révoqué par son titulaire"
"""The reason recorded when a holder revokes a token of their own."""


def acting_for(value: str | None) -> str:
    """The e-mail of the ``X-Acting-For`` header, normalised (trimmed, lower case).

    Raises:
        ForbiddenError: none, or not an e-mail address.
    """
    email = (value or "").strip().lower()
    if not _EMAIL.fullmatch(email):
        raise ForbiddenError("a console acts only for a holder named by X-Acting-For: <e-mail>")
    return email


def _theirs(contacts: tuple[str, ...], email: str) -> bool:
    return any(contact.strip().lower() == email for contact in contacts)


async def _their_habilitation(
    conn: psycopg.AsyncConnection[Any], holder: Operator, habilitation_id: str
) -> Habilitation:
    habilitation = await store.get_habilitation(conn, habilitation_id)
    if not _theirs(habilitation.contacts, holder.acting_for):
        raise store.UnknownError(f"no habilitation {habilitation_id}")
    return habilitation


async def _their_editor(conn: psycopg.AsyncConnection[Any], holder: Operator, editor_id: str) -> Editor:
    editor = await store.get_editor(conn, editor_id)
    if not _theirs(editor.contacts, holder.acting_for):
        raise store.UnknownError(f"no editor {editor_id}")
    return editor


def meaning(code: str) -> dict[str, str]:
    """The title and detail of an error code, from the error catalogue ("" for a code it lacks)."""
    entry = CODES.get(code) or PROVIDER_CODES.get(code[2:])
    return (
        {"title": entry.title, "detail": entry.detail} if entry is not None else {"title": "", "detail": ""}
    )


@dataclass(frozen=True, slots=True)
class Activity:
    """A habilitation's or delegation's calls over a window."""

    window: str
    since: int
    """The first bucket's start, epoch seconds."""
    rows: list[tuple[int, str, str, str, int]]
    """``(bucket, api, outcome, code, calls)``, oldest first (`gateway.usage.read_activity`)."""

    def as_json(self) -> dict[str, Any]:
        """The JSON the REST front serves: the rows, and each error code's meaning."""
        return {
            "window": self.window,
            "bucket_seconds": BUCKET_SECONDS,
            "since": self.since,
            "rows": [
                {"bucket": bucket, "api": api, "outcome": outcome, "code": code, "calls": calls}
                for bucket, api, outcome, code, calls in self.rows
            ],
            "codes": {code: meaning(code) for code in sorted({row[3] for row in self.rows if row[3]})},
        }


async def _last_requests(redis_client: redis.asyncio.Redis, counter: str) -> list[LastRequest]:
    try:
        return await read_last_requests(redis_client, counter)
    except ApiError:
        raise UnavailableError("the statistics cannot be read now") from None


async def _activity(redis_client: redis.asyncio.Redis, now: float, counter: str, window: str) -> Activity:
    buckets = WINDOWS.get(window)
    if buckets is None:
        raise InvalidInputError("window", f"must be one of {', '.join(WINDOWS)}")
    try:
        rows = await read_activity(redis_client, counter, buckets=buckets, now=now)
    except ApiError:
        raise UnavailableError("the statistics cannot be read now") from None
    since = bucket_of(now) - (buckets - 1) * BUCKET_SECONDS
    return Activity(window, since, rows)


class HolderService:
    """What a holder or an editor may read and do, through the console (see the module's docstring).

    Args:
        service: The admin API's service: its registry connection, token signer and revocations.
        redis_client: The gateways' Redis, where the statistics are.
        clock: The current time, epoch seconds (tests).
    """

    def __init__(
        self,
        service: ServiceCore,
        redis_client: redis.asyncio.Redis,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._redis = redis_client
        self._clock = clock

    async def _run(
        self,
        holder: Operator,
        action: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Result]],
    ) -> Result:
        if holder.role is not Role.CONSOLE or not holder.acting_for:
            raise ForbiddenError(f"operator {holder.name!r} does not act for a holder")
        async with self._service.connection() as conn:
            return await action(conn)

    # -- ownership --------------------------------------------------------------------------------

    async def _delegation(self, conn: psycopg.AsyncConnection[Any], holder: Operator, did: str) -> Delegation:
        delegation = await store.get_delegation(conn, did)
        await _their_editor(conn, holder, delegation.editor_id)
        return delegation

    async def _token(
        self, conn: psycopg.AsyncConnection[Any], holder: Operator, token_id: str
    ) -> TokenRecord:
        token = await store.get_token(conn, token_id)
        try:
            if token.editor_id is not None:
                await _their_editor(conn, holder, token.editor_id)
            else:
                await _their_habilitation(conn, holder, token.holder_id)
        except store.UnknownError:
            raise store.UnknownError(f"no token {token_id}") from None
        return token

    # -- habilitations ----------------------------------------------------------------------------

    async def habilitations(self, holder: Operator) -> list[Habilitation]:
        """The habilitations whose contacts hold the holder's e-mail, oldest first."""

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Habilitation]:
            return [h for h in await store.list_habilitations(conn) if _theirs(h.contacts, holder.acting_for)]

        return await self._run(holder, read)

    async def habilitation(self, holder: Operator, habilitation_id: str) -> View[Habilitation, Editor]:
        """One of the holder's habilitations, its tokens, and its delegations with their editor.

        Raises:
            store.UnknownError: no such habilitation of theirs (404).
        """

        async def read(conn: psycopg.AsyncConnection[Any]) -> View[Habilitation, Editor]:
            habilitation = await _their_habilitation(conn, holder, habilitation_id)
            tokens = await store.list_tokens(conn, habilitation_id=habilitation.id)
            delegations = await store.list_delegations(conn, habilitation_id=habilitation.id)
            return (
                habilitation,
                tokens,
                [
                    (delegation, await store.get_editor(conn, delegation.editor_id))
                    for delegation in delegations
                ],
            )

        return await self._run(holder, read)

    async def habilitation_activity(self, holder: Operator, habilitation_id: str, window: str) -> Activity:
        """A habilitation's calls over ``window`` (one of `WINDOWS`), every token's and editor's together.

        Raises:
            InvalidInputError: an unknown window (400).
            store.UnknownError: no such habilitation of theirs (404).
        """
        await self._run(holder, lambda conn: _their_habilitation(conn, holder, habilitation_id))
        return await _activity(self._redis, self._clock(), habilitation_counter(habilitation_id), window)

    async def habilitation_requests(self, holder: Operator, habilitation_id: str) -> list[LastRequest]:
        """A habilitation's last calls, newest first.

        Raises:
            store.UnknownError: no such habilitation of theirs (404).
        """
        await self._run(holder, lambda conn: _their_habilitation(conn, holder, habilitation_id))
        return await _last_requests(self._redis, habilitation_counter(habilitation_id))

    # -- tokens -----------------------------------------------------------------------------------

    async def prolong(self, holder: Operator, token_id: str, *, days: int) -> TokenRecord:
        """Prolong a token of theirs to ``days`` from now (`store.prolong_token`).

        Raises:
            store.UnknownError: no such token of theirs (404); InvalidInputError, store.ConflictError.
        """

        async def prolong(conn: psycopg.AsyncConnection[Any]) -> TokenRecord:
            await self._token(conn, holder, token_id)
            return await store.prolong_token(conn, holder.actor, token_id, days=days)

        return await self._audited(holder, prolong)

    async def rotate(
        self, holder: Operator, token_id: str, *, grace: dt.timedelta
    ) -> tuple[TokenRecord, IssuedToken]:
        """Replace a token of theirs by a new one, the old working ``grace`` longer (`store.rotate_token`).

        Returns:
            The old token and the new one with its JWT, shown this once.

        Raises:
            store.UnknownError: no such token of theirs (404); InvalidInputError, store.ConflictError.
        """

        async def rotate(conn: psycopg.AsyncConnection[Any]) -> tuple[TokenRecord, IssuedToken]:
            await self._token(conn, holder, token_id)
            old, new = await store.rotate_token(conn, holder.actor, token_id, grace=grace)
            return old, await self._service.signed(conn, new)

        old, new = await self._audited(holder, rotate)
        await self._service.push_revocation(old)
        return old, new

    async def revoke(self, holder: Operator, token_id: str) -> TokenRecord:
        """Revoke a token of theirs now: the gateways refuse it from the next call (`push_revocation`).

        Raises:
            store.UnknownError: no such token of theirs (404); store.ConflictError: already revoked.
        """

        async def revoke(conn: psycopg.AsyncConnection[Any]) -> TokenRecord:
            await self._token(conn, holder, token_id)
            return await store.revoke_token(conn, holder.actor, token_id, HOLDER_REVOCATION_REASON)

        revoked = await self._audited(holder, revoke)
        await self._service.push_revocation(revoked)
        return revoked

    async def _audited(
        self, holder: Operator, action: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Result]]
    ) -> Result:
        async def act(conn: psycopg.AsyncConnection[Any]) -> Result:
            result = await action(conn)
            await log_audit_head(conn, holder)
            return result

        return await self._run(holder, act)

    async def revoke_delegation(self, holder: Operator, delegation_id: str) -> Delegation:
        """Revoke a delegation of one of the holder's habilitations (ACCESS-MODEL.md §4.2: its holder may).

        Its editor's calls under it are refused from the next one (`push_delegation_revocations`).

        Raises:
            store.UnknownError: no such delegation of a habilitation of theirs (404);
                store.ConflictError: already revoked.
        """

        async def revoke(conn: psycopg.AsyncConnection[Any]) -> Delegation:
            delegation = await store.get_delegation(conn, delegation_id)
            try:
                await _their_habilitation(conn, holder, delegation.habilitation_id)
            except store.UnknownError:
                raise store.UnknownError(f"no delegation {delegation_id}") from None
            return await store.revoke_delegation(conn, holder.actor, delegation_id)

        delegation = await self._audited(holder, revoke)
        await self._service.push_delegation_revocations([delegation])
        return delegation

    # -- FranceConnect clients --------------------------------------------------------------------

    async def france_connect_clients(
        self, holder: Operator, habilitation_id: str
    ) -> list[FranceConnectClient]:
        """The FranceConnect clients mapped to one of the holder's habilitations.

        Raises:
            store.UnknownError: no such habilitation of theirs (404).
        """

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[FranceConnectClient]:
            await _their_habilitation(conn, holder, habilitation_id)
            clients = await store.list_france_connect_clients(conn)
            return [client for client in clients if client.habilitation_id == habilitation_id]

        return await self._run(holder, read)

    async def map_france_connect_client(
        self, holder: Operator, client_id: str, habilitation_id: str
    ) -> FranceConnectClient:
        """Map a FranceConnect client to one of the holder's habilitations (issue 22: its holder may).

        A client already mapped to a habilitation of someone else stays theirs: taking it over
        would move another organisation's citizens' calls, and the rights they get, to this one.

        Raises:
            InvalidInputError: not a FranceConnect client id (400).
            store.UnknownError: no such habilitation of theirs (404).
            store.ConflictError: the client is mapped to a habilitation that is not theirs (409).
        """

        async def act(conn: psycopg.AsyncConnection[Any]) -> FranceConnectClient:
            async with conn.transaction():
                await _their_habilitation(conn, holder, habilitation_id)
                current = await store.france_connect_client_habilitation(conn, client_id, lock=True)
                if current is not None and current != habilitation_id:
                    try:
                        await _their_habilitation(conn, holder, current)
                    except store.UnknownError:
                        raise store.ConflictError(
                            "this FranceConnect client is mapped to a habilitation of another holder"
                        ) from None
                return await store.map_france_connect_client(conn, holder.actor, client_id, habilitation_id)

        return await self._audited(holder, act)

    # -- editors ----------------------------------------------------------------------------------

    async def editors(self, holder: Operator) -> list[Editor]:
        """The editors whose contacts hold the holder's e-mail."""

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Editor]:
            return [e for e in await store.list_editors(conn) if _theirs(e.contacts, holder.acting_for)]

        return await self._run(holder, read)

    async def editor(self, holder: Operator, editor_id: str) -> View[Editor, Habilitation]:
        """One of their editors, its tokens, and its delegations with the habilitation each delegates.

        Raises:
            store.UnknownError: no such editor of theirs (404).
        """

        async def read(conn: psycopg.AsyncConnection[Any]) -> View[Editor, Habilitation]:
            editor = await _their_editor(conn, holder, editor_id)
            tokens = await store.list_tokens(conn, editor_id=editor.id)
            delegations = await store.list_delegations(conn, editor_id=editor.id)
            return (
                editor,
                tokens,
                [(d, await store.get_habilitation(conn, d.habilitation_id)) for d in delegations],
            )

        return await self._run(holder, read)

    async def delegation_activity(self, holder: Operator, delegation_id: str, window: str) -> Activity:
        """The calls of an editor of theirs under one delegation, over ``window``.

        Raises:
            InvalidInputError: an unknown window (400).
            store.UnknownError: no such delegation of an editor of theirs (404).
        """
        await self._run(holder, lambda conn: self._delegation(conn, holder, delegation_id))
        return await _activity(self._redis, self._clock(), delegation_counter(delegation_id), window)

    async def delegation_requests(self, holder: Operator, delegation_id: str) -> list[LastRequest]:
        """The last calls of an editor of theirs under one delegation, newest first.

        Raises:
            store.UnknownError: no such delegation of an editor of theirs (404).
        """
        await self._run(holder, lambda conn: self._delegation(conn, holder, delegation_id))
        return await _last_requests(self._redis, delegation_counter(delegation_id))
