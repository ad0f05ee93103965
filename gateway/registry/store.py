"""Reads and writes of the registry: every write in one transaction with its audit entry.

Each write locks the row it changes, writes it, appends the audit entry (who, what,
before, after: `gateway.registry.audit`) and announces the change on
``registry_changes`` (`gateway.registry.schema.CHANNEL`), all in one transaction
(`_recorded`): a
change is never seen without its audit entry, nor recorded without taking effect. The
admin API (`gateway.admin_api`) is the only caller of the writes; the gateways only
read (`load`).

Errors: `UnknownError` for an id that names nothing, `ConflictError` for a change the
record's state forbids (revoking a revoked token…), `gateway.registry.model.InvalidInputError`
for a value out of bounds.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.types.json import Jsonb

from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from gateway.registry import audit
from gateway.registry.model import (
    INVITATION_DAYS,
    RATE_LIMIT_MAX_PER_MINUTE,
    DataProtectionOfficer,
    Delegation,
    DelegationOrigin,
    Editor,
    Environment,
    FranceConnectClient,
    Habilitation,
    InvalidInputError,
    Invitation,
    InvitationState,
    Status,
    TokenKind,
    TokenRecord,
    TokenState,
    checked_allowed_ips,
    checked_client_id,
    checked_contacts,
    checked_days,
    checked_dpo,
    checked_email,
    checked_label,
    checked_organisation_name,
    checked_rate,
    checked_reason,
    checked_scopes,
    checked_siret,
    checked_text,
)
from gateway.registry.schema import CHANNEL

_V = TypeVar("_V")
_R = TypeVar("_R")
Record = TypeVar("Record")


def _optional_id(value: Any) -> str | None:
    return None if value is None else str(value)


def _cidrs(networks: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(network) for network in networks)


@dataclass(frozen=True, slots=True)
class _Table(Generic[Record]):
    """A registry table as the store reads it: its columns once, for the SQL and the records alike.

    A record's field has its column's name (but where ``renamed`` says otherwise), its value as
    PostgreSQL returns it, or through ``convert`` (a UUID to text, an array to a tuple, a text to
    its enum…).
    """

    name: str
    """``registry.<table>``."""
    singular: str
    """What errors call a record of it: ``habilitation``, ``token``…"""
    columns: tuple[str, ...]
    """In the order of every ``SELECT`` and ``INSERT`` (``{h}``, ``{t}``… in `_query`)."""
    record: Callable[..., Record]
    convert: Mapping[str, Callable[[Any], Any]]
    renamed: Mapping[str, str] = field(default_factory=dict)
    column_list: sql.SQL = field(init=False)
    """``columns`` as SQL text."""
    _fields: tuple[tuple[str, Callable[[Any], Any]], ...] = field(init=False)
    """Each column's field and conversion, in the order of ``columns``: worked out once, as `load`
    makes every token."""

    def __post_init__(self) -> None:
        # Frozen: the derived fields are set as the dataclass's own __init__ sets the others.
        object.__setattr__(self, "column_list", sql.SQL(", ".join(self.columns)))
        fields = tuple((self.renamed.get(c, c), self.convert.get(c, _same)) for c in self.columns)
        object.__setattr__(self, "_fields", fields)

    def make(self, row: Sequence[Any]) -> Record:
        """The record of a row of ``columns``."""
        return self.record(
            **{name: convert(value) for (name, convert), value in zip(self._fields, row, strict=True)}
        )


def _same(value: _V) -> _V:
    return value


_HABILITATIONS = _Table(
    "registry.habilitations",
    "habilitation",
    (
        "id", "label", "siret", "datapass_id", "use_case", "legal_basis", "scopes", "allowed_ips",
        "rate_per_second", "rate_per_minute", "contacts", "status", "valid_from", "valid_until",
        "created_at", "updated_at", "organisation_name",
    ),
    Habilitation,
    {"id": str, "scopes": tuple, "allowed_ips": _cidrs, "contacts": tuple, "status": Status},
)  # fmt: skip
_TOKENS = _Table(
    "registry.tokens",
    "token",
    (
        "id", "habilitation_id", "kind", "environment", "issued_at", "expires_at", "revoked_at",
        "revoked_reason", "replaces", "replaced_by", "editor_id", "allowed_ips",
    ),
    TokenRecord,
    {
        "id": str,
        "habilitation_id": _optional_id,
        "kind": TokenKind,
        "environment": Environment,
        "replaces": _optional_id,
        "replaced_by": _optional_id,
        "editor_id": _optional_id,
        "allowed_ips": _cidrs,
    },
)  # fmt: skip
_EDITORS = _Table(
    "registry.editors",
    "editor",
    ("id", "siret", "name", "allowed_ips", "contacts", "created_at", "updated_at"),
    Editor,
    {"id": str, "allowed_ips": _cidrs, "contacts": tuple},
)
_DELEGATIONS = _Table(
    "registry.delegations",
    "delegation",
    ("id", "editor_id", "habilitation_id", "created_via", "created_at", "revoked_at"),
    Delegation,
    {"id": str, "editor_id": str, "habilitation_id": str, "created_via": DelegationOrigin},
    renamed={"created_via": "origin"},
)
_CLIENTS = _Table(
    "registry.france_connect_clients",
    "FranceConnect client",
    ("client_id", "habilitation_id", "updated_at"),
    FranceConnectClient,
    {"habilitation_id": str},
)
_INVITATIONS = _Table(
    "registry.invitations",
    "invitation",
    (
        "id", "editor_id", "habilitation_id", "contact_email", "dpo", "invited_at", "expires_at",
        "accepted_at", "delegation_id",
    ),
    Invitation,
    {
        "id": str,
        "editor_id": str,
        "habilitation_id": str,
        "dpo": lambda fields: DataProtectionOfficer(**fields),
        "delegation_id": _optional_id,
    },
)  # fmt: skip


def _query(template: str, **parts: sql.Composable) -> sql.Composed:
    """A query of fixed text, its column lists filled in.

    ``{h}`` habilitations', ``{t}`` tokens', ``{e}`` editors', ``{d}`` delegations', ``{c}``
    FranceConnect clients', ``{i}`` invitations'.
    """
    return sql.SQL(template).format(
        h=_HABILITATIONS.column_list,
        t=_TOKENS.column_list,
        e=_EDITORS.column_list,
        d=_DELEGATIONS.column_list,
        c=_CLIENTS.column_list,
        i=_INVITATIONS.column_list,
        **parts,
    )


async def _row(cursor: AsyncCursor[Any]) -> Any:
    """The one row a statement returns by construction (SELECT now(), RETURNING, a locked row)."""
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("a statement that returns one row by construction returned none")
    return row


ENDED_KEPT = dt.timedelta(days=62)
"""How long a token that stopped (expired, revoked, banned) stays in the gateways' snapshots: the
usage statistics' span."""


class UnknownError(LookupError):
    """No habilitation, token, editor, delegation or FranceConnect client has this id."""


class ConflictError(Exception):
    """The record's state forbids the change; the message says why."""


class DeniedError(Exception):
    """The one who acts may not make this change (a body's holder accepting another's invitation)."""


@dataclass(frozen=True, slots=True)
class HabilitationChanges:
    """What an update changes; None leaves a field as it is, a list given replaces the stored one."""

    label: str | None = None
    organisation_name: str | None = None
    scopes: Sequence[str] | None = None
    allowed_ips: Sequence[str] | None = None
    rate_per_second: int | None = None
    rate_per_minute: int | None = None
    clear_rate_per_second: bool = False
    """Back to the gateway's default rate."""
    clear_rate_per_minute: bool = False
    """No per-minute limit any more."""
    contacts: Sequence[str] | None = None
    use_case: str | None = None
    legal_basis: str | None = None
    status: Status | None = None

    def applied_to(self, before: Habilitation) -> Habilitation:
        """``before`` with these changes, each checked.

        Raises:
            InvalidInputError: a value out of bounds.
        """
        per_second = None if self.clear_rate_per_second else before.rate_per_second
        per_minute = None if self.clear_rate_per_minute else before.rate_per_minute
        return replace(
            before,
            label=_given(self.label, checked_label, before.label),
            organisation_name=_given(
                self.organisation_name, checked_organisation_name, before.organisation_name
            ),
            scopes=_given(self.scopes, checked_scopes, before.scopes),
            allowed_ips=_given(self.allowed_ips, checked_allowed_ips, before.allowed_ips),
            rate_per_second=_given(self.rate_per_second, _rate_per_second, per_second),
            rate_per_minute=_given(self.rate_per_minute, _rate_per_minute, per_minute),
            contacts=_given(self.contacts, checked_contacts, before.contacts),
            use_case=_given(self.use_case, functools.partial(checked_text, "use_case"), before.use_case),
            legal_basis=_given(
                self.legal_basis, functools.partial(checked_text, "legal_basis"), before.legal_basis
            ),
            status=self.status or before.status,
        )


def _given(value: _V | None, check: Callable[[_V], _R], current: _R) -> _R:
    """``check(value)``, or ``current`` where the update leaves the field (``value`` None)."""
    return current if value is None else check(value)


def _lock(lock: bool) -> sql.Composable:
    return sql.SQL(" FOR UPDATE" if lock else "")


async def _get(conn: AsyncConnection[Any], table: _Table[Record], record_id: str, *, lock: bool) -> Record:
    """The record of ``table`` of this id, locked when ``lock``.

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no record of that table has it.
    """
    cursor = await conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE id = %s{}").format(
            table.column_list, sql.SQL(table.name), _lock(lock)
        ),
        (_uuid(table.singular, record_id),),
    )
    row = await cursor.fetchone()
    if row is None:
        raise UnknownError(f"no {table.singular} {record_id}")
    return table.make(row)


async def _listed(
    conn: AsyncConnection[Any],
    table: _Table[Record],
    order: str,
    filters: Sequence[tuple[str, str, str | None]] = (),
    *extra: tuple[str, object],
) -> list[Record]:
    """The records of ``table`` in ``order`` (an ``ORDER BY`` list) whose columns equal the ids given.

    ``filters``: (column, field named in errors, id or None for no filter); ``extra``: more
    (condition, parameter) pairs.

    Raises:
        InvalidInputError: an id is not a UUID.
    """
    conditions: list[sql.Composable] = [sql.SQL("true")]
    parameters: list[object] = []
    for column, error_field, value in filters:
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            parameters.append(_uuid(error_field, value))
    for condition, parameter in extra:
        conditions.append(sql.SQL(condition))
        parameters.append(parameter)
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {}").format(
        table.column_list, sql.SQL(table.name), sql.SQL(" AND ").join(conditions), sql.SQL(order)
    )
    cursor = await conn.execute(query, parameters)
    return [table.make(row) for row in await cursor.fetchall()]


async def _returned(
    conn: AsyncConnection[Any], table: _Table[Record], template: str, parameters: Sequence[Any]
) -> Record:
    """The record a write of ``table`` returns (``RETURNING``); ``template`` as `_query`'s."""
    return table.make(await _row(await conn.execute(_query(template), parameters)))


def _of_editor_or_habilitation(
    editor_id: str | None, habilitation_id: str | None
) -> tuple[tuple[str, str, str | None], ...]:
    """`_listed`'s filters of what joins an editor and a habilitation (a delegation, an invitation)."""
    return (("editor_id", "editor", editor_id), ("habilitation_id", "habilitation", habilitation_id))


def _uuid(field: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInputError(field, "not a UUID") from None


async def _now(conn: AsyncConnection[Any]) -> dt.datetime:
    moment: dt.datetime = (await _row(await conn.execute("SELECT now()")))[0]
    return moment


Recorded = Habilitation | TokenRecord | Editor | Delegation | FranceConnectClient | Invitation


async def _recorded(
    conn: AsyncConnection[Any],
    actor: str,
    action: str,
    target: str,
    change: tuple[Recorded | None, Recorded],
    *,
    announce: str | None,
) -> None:
    """The audit entry of a write, and its announcement to the gateways (of ``announce``, when given).

    In the write's transaction: the change is never seen without its entry.
    """
    before, after = change
    await audit.append(
        conn,
        actor=actor,
        action=action,
        target=target,
        before=None if before is None else before.as_json(),
        after=after.as_json(),
    )
    if announce is not None:
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, announce))


# -- habilitations ---------------------------------------------------------------------------------


async def _refuse_taken_datapass_id(conn: AsyncConnection[Any], datapass_id: object) -> None:
    """Raise ConflictError when another habilitation has this DataPass id (none given: nothing)."""
    if datapass_id:
        query = "SELECT 1 FROM registry.habilitations WHERE datapass_id = %s"
        found = await conn.execute(query, (datapass_id,))
        if await found.fetchone() is not None:
            raise ConflictError("a habilitation already has this DataPass id")


async def create_habilitation(
    conn: AsyncConnection[Any],
    actor: str,
    *,
    label: str,
    siret: str,
    scopes: Sequence[str],
    organisation_name: str = "",
    allowed_ips: Sequence[str] = (),
    rate_per_second: int | None = None,
    rate_per_minute: int | None = None,
    contacts: Sequence[str] = (),
    datapass_id: str = "",
    use_case: str = "",
    legal_basis: str = "",
    valid_until: dt.datetime | None = None,
) -> Habilitation:
    """Create a validated habilitation.

    Raises:
        InvalidInputError: a value out of bounds.
        ConflictError: another habilitation has this DataPass id.
    """
    values = (
        uuid.uuid4(),
        checked_label(label),
        checked_siret(siret),
        checked_text("datapass_id", datapass_id),
        checked_text("use_case", use_case),
        checked_text("legal_basis", legal_basis),
        list(checked_scopes(scopes)),
        list(checked_allowed_ips(allowed_ips)),
        _rate_per_second(rate_per_second),
        _rate_per_minute(rate_per_minute),
        list(checked_contacts(contacts)),
        valid_until,
        checked_organisation_name(organisation_name),
    )
    async with conn.transaction():
        await _refuse_taken_datapass_id(conn, values[3])
        habilitation = await _returned(
            conn,
            _HABILITATIONS,
            "INSERT INTO registry.habilitations ({h}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::cidr[], "
            "%s, %s, %s, 'validated', now(), %s, now(), now(), %s) RETURNING {h}",
            values,
        )
        await _recorded(
            conn,
            actor,
            "habilitation.create",
            habilitation.id,
            (None, habilitation),
            announce=habilitation.id,
        )
    return habilitation


def _rate_per_second(value: int | None) -> int | None:
    return checked_rate("rate_per_second", value, RATE_LIMIT_MAX_PER_SECOND)


def _rate_per_minute(value: int | None) -> int | None:
    return checked_rate("rate_per_minute", value, RATE_LIMIT_MAX_PER_MINUTE)


async def get_habilitation(
    conn: AsyncConnection[Any], habilitation_id: str, *, lock: bool = False
) -> Habilitation:
    """The habilitation of this id (locked for the transaction when ``lock``).

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no habilitation has it.
    """
    return await _get(conn, _HABILITATIONS, habilitation_id, lock=lock)


async def list_habilitations(conn: AsyncConnection[Any]) -> list[Habilitation]:
    """Every habilitation, oldest first."""
    return await _listed(conn, _HABILITATIONS, "created_at, id")


async def update_habilitation(
    conn: AsyncConnection[Any], actor: str, habilitation_id: str, changes: HabilitationChanges
) -> Habilitation:
    """Change a habilitation; its tokens take the change with no new token.

    Raises:
        InvalidInputError: a value out of bounds, or the id is not a UUID.
        UnknownError: no habilitation has this id.
    """
    async with conn.transaction():
        before = await get_habilitation(conn, habilitation_id, lock=True)
        wanted = changes.applied_to(before)
        after = await _returned(
            conn,
            _HABILITATIONS,
            "UPDATE registry.habilitations SET label = %s, organisation_name = %s, scopes = %s, "
            "allowed_ips = %s::cidr[], "
            "rate_per_second = %s, rate_per_minute = %s, contacts = %s, use_case = %s, legal_basis = %s, "
            "status = %s, updated_at = now() WHERE id = %s RETURNING {h}",
            (
                wanted.label,
                wanted.organisation_name,
                list(wanted.scopes),
                list(wanted.allowed_ips),
                wanted.rate_per_second,
                wanted.rate_per_minute,
                list(wanted.contacts),
                wanted.use_case,
                wanted.legal_basis,
                wanted.status.value,
                uuid.UUID(before.id),
            ),
        )
        if after.status is not Status.VALIDATED and before.status is Status.VALIDATED:
            # As the real platform's revoke! and archive!: a habilitation no longer validated ends its
            # tokens and its delegations now (ACCESS-MODEL.md §1.2, §4.2).
            await conn.execute(
                "UPDATE registry.tokens SET revoked_at = now(), revoked_reason = %s "
                "WHERE habilitation_id = %s AND (revoked_at IS NULL OR revoked_at > now())",
                (f"habilitation {after.status.value}", uuid.UUID(before.id)),
            )
            await conn.execute(
                "UPDATE registry.delegations SET revoked_at = now() "
                "WHERE habilitation_id = %s AND revoked_at IS NULL",
                (uuid.UUID(before.id),),
            )
        await _recorded(conn, actor, "habilitation.update", after.id, (before, after), announce=after.id)
    return after


# -- tokens ----------------------------------------------------------------------------------------


async def get_token(conn: AsyncConnection[Any], token_id: str, *, lock: bool = False) -> TokenRecord:
    """The token of this id (locked for the transaction when ``lock``).

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no token has it.
    """
    return await _get(conn, _TOKENS, token_id, lock=lock)


async def list_tokens(
    conn: AsyncConnection[Any],
    *,
    habilitation_id: str | None = None,
    expiring_within: dt.timedelta | None = None,
    editor_id: str | None = None,
) -> list[TokenRecord]:
    """Tokens, soonest expiry first: of a habilitation or editor, or still usable and expiring within a time.

    Raises:
        InvalidInputError: the habilitation or editor id is not a UUID.
    """
    expiring = (
        ()
        if expiring_within is None
        else (
            (
                "expires_at > now() AND expires_at <= now() + %s "
                "AND (revoked_at IS NULL OR revoked_at > now())",
                expiring_within,
            ),
        )
    )
    return await _listed(
        conn,
        _TOKENS,
        "expires_at, id",
        (("habilitation_id", "habilitation", habilitation_id), ("editor_id", "editor", editor_id)),
        *expiring,
    )


def _optional_uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


async def _issue(
    conn: AsyncConnection[Any],
    actor: str,
    *,
    habilitation_id: str | None,
    editor_id: str | None = None,
    allowed_ips: Sequence[str] = (),
    kind: TokenKind,
    environment: Environment,
    expires_at: dt.datetime,
    announce: str,
) -> TokenRecord:
    """Insert a new token and record its issue, announced for ``announce`` (its holder)."""
    token = await _returned(
        conn,
        _TOKENS,
        "INSERT INTO registry.tokens ({t}) "
        "VALUES (%s, %s, %s, %s, now(), %s, NULL, '', NULL, NULL, %s, %s::cidr[]) RETURNING {t}",
        (
            uuid.uuid4(),
            _optional_uuid(habilitation_id),
            kind.value,
            environment.value,
            expires_at,
            _optional_uuid(editor_id),
            list(allowed_ips),
        ),
    )
    await _recorded(conn, actor, "token.issue", token.id, (None, token), announce=announce)
    return token


async def _successor(conn: AsyncConnection[Any], actor: str, token: TokenRecord) -> TokenRecord:
    """A new token of the same holder, kind, environment, IPs and expiry, replacing ``token``.

    Its issue is recorded, not announced: the change of ``token`` that makes it is.
    """
    successor = await _returned(
        conn,
        _TOKENS,
        "INSERT INTO registry.tokens ({t}) SELECT %s, habilitation_id, kind, environment, now(), expires_at, "
        "NULL, '', id, NULL, editor_id, allowed_ips FROM registry.tokens WHERE id = %s RETURNING {t}",
        (uuid.uuid4(), uuid.UUID(token.id)),
    )
    await _recorded(conn, actor, "token.issue", successor.id, (None, successor), announce=None)
    return successor


async def issue_token(
    conn: AsyncConnection[Any],
    actor: str,
    habilitation_id: str,
    *,
    days: int,
    kind: TokenKind = TokenKind.CLASSIC,
    environment: Environment = Environment.PRODUCTION,
) -> TokenRecord:
    """Record a new token of a validated habilitation, expiring in ``days``.

    The caller signs its JWT (`gateway.admin_api.service.TokenSigner`) and hands it over once: the
    registry keeps only the record.

    Raises:
        InvalidInputError: ``days`` out of bounds, or the id is not a UUID.
        UnknownError: no habilitation has this id.
        ConflictError: the habilitation is not validated.
    """
    days = checked_days(days)
    if kind is TokenKind.EDITOR:
        raise InvalidInputError("kind", "an editor token is issued to an editor (issue_editor_token)")
    async with conn.transaction():
        habilitation = await get_habilitation(conn, habilitation_id, lock=True)
        if habilitation.status is not Status.VALIDATED:
            raise ConflictError(f"the habilitation is {habilitation.status.value}: no token can be issued")
        return await _issue(
            conn,
            actor,
            habilitation_id=habilitation.id,
            kind=kind,
            environment=environment,
            expires_at=await _now(conn) + dt.timedelta(days=days),
            announce=habilitation.id,
        )


async def _ending(
    conn: AsyncConnection[Any], action: str, token_id: str, at: dt.datetime | None
) -> tuple[TokenRecord, dt.datetime]:
    """Lock a token that still works; with when it is to stop: ``at``, or now when None or past."""
    token = await get_token(conn, token_id, lock=True)
    now = await _now(conn)
    state = token.state(now)
    if state in (TokenState.REVOKED, TokenState.EXPIRED):
        raise ConflictError(f"the token is {state.value}: nothing to {action}")
    return token, now if at is None or at < now else at


async def revoke_token(conn: AsyncConnection[Any], actor: str, token_id: str, reason: str) -> TokenRecord:
    """Revoke a token now, with a reason; every gateway refuses it (00105) from its next call.

    Raises:
        InvalidInputError: no reason, or the id is not a UUID.
        UnknownError: no token has this id.
        ConflictError: the token is already revoked or expired.
    """
    reason = checked_reason(reason)
    async with conn.transaction():
        before, now = await _ending(conn, "revoke", token_id, None)
        after = await _set_end(conn, before, now, reason, replaced_by=before.replaced_by)
        await _recorded(conn, actor, "token.revoke", after.id, (before, after), announce=after.holder_id)
    return after


async def _set_end(
    conn: AsyncConnection[Any], token: TokenRecord, at: dt.datetime, reason: str, *, replaced_by: str | None
) -> TokenRecord:
    return await _returned(
        conn,
        _TOKENS,
        "UPDATE registry.tokens SET revoked_at = %s, revoked_reason = %s, replaced_by = %s "
        "WHERE id = %s RETURNING {t}",
        (at, reason, _optional_uuid(replaced_by), uuid.UUID(token.id)),
    )


async def ban_token(
    conn: AsyncConnection[Any],
    actor: str,
    token_id: str,
    *,
    at: dt.datetime | None,
    reason: str,
    replace: bool,
) -> tuple[TokenRecord, TokenRecord | None]:
    """Ban a token from a date (now when None or past); a replacement of the same expiry when ``replace``.

    As the real platform's admin ban (ACCESS-MODEL.md §8.5): the token works until ``at``.

    Returns:
        The banned token and its replacement (None without one).

    Raises:
        InvalidInputError: no reason, or the id is not a UUID.
        UnknownError: no token has this id.
        ConflictError: the token is already revoked, banned or expired.
    """
    reason = checked_reason(reason)
    async with conn.transaction():
        before, until = await _ending(conn, "ban", token_id, at)
        if before.revoked_at is not None:
            raise ConflictError("the token is already banned from a date")
        replacement = None
        if replace:
            replacement = await _successor(conn, actor, before)
        after = await _set_end(
            conn, before, until, reason, replaced_by=None if replacement is None else replacement.id
        )
        await _recorded(conn, actor, "token.ban", after.id, (before, after), announce=after.holder_id)
    return after, replacement


async def rotate_token(
    conn: AsyncConnection[Any], actor: str, token_id: str, *, grace: dt.timedelta
) -> tuple[TokenRecord, TokenRecord]:
    """Replace a token by a new one of the same habilitation, kind, environment and expiry.

    Both work during ``grace`` (0: the old one stops now), so that a client can switch
    without a failed call.

    Returns:
        The old token (ending after the grace) and the new one.

    Raises:
        InvalidInputError: a negative grace, or the id is not a UUID.
        UnknownError: no token has this id.
        ConflictError: the token no longer works or is already ending.
    """
    if grace < dt.timedelta(0):
        raise InvalidInputError("grace", "must not be negative")
    async with conn.transaction():
        before, now = await _ending(conn, "rotate", token_id, None)
        if before.revoked_at is not None:
            raise ConflictError("the token is already ending (banned or rotated)")
        new = await _successor(conn, actor, before)
        after = await _set_end(conn, before, now + grace, "rotated", replaced_by=new.id)
        await _recorded(conn, actor, "token.rotate", after.id, (before, after), announce=after.holder_id)
    return after, new


async def prolong_token(conn: AsyncConnection[Any], actor: str, token_id: str, *, days: int) -> TokenRecord:
    """Set a token's expiry to ``days`` from now; its JWT and its habilitation's configuration stay.

    The expiry notices start again from the new expiry (`gateway.registry.notices`).

    Raises:
        InvalidInputError: ``days`` out of bounds, or the id is not a UUID.
        UnknownError: no token has this id.
        ConflictError: the token is revoked or ending.
    """
    days = checked_days(days)
    async with conn.transaction():
        before = await get_token(conn, token_id, lock=True)
        now = await _now(conn)
        if before.revoked_at is not None:
            raise ConflictError("the token is revoked or ending (banned or rotated): issue a new one instead")
        after = await _returned(
            conn,
            _TOKENS,
            "UPDATE registry.tokens SET expires_at = %s WHERE id = %s RETURNING {t}",
            (now + dt.timedelta(days=days), uuid.UUID(before.id)),
        )
        await _recorded(conn, actor, "token.prolong", after.id, (before, after), announce=after.holder_id)
    return after


async def import_legacy_token(
    conn: AsyncConnection[Any],
    actor: str,
    *,
    token_id: str,
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    **habilitation: Any,
) -> tuple[Habilitation, TokenRecord]:
    """Record a token issued before the registry, under a habilitation of its own, keeping its id.

    Its JWT keeps working: the gateways find its record by its ``jti``. ``habilitation``
    takes the arguments of `create_habilitation`.

    Raises:
        InvalidInputError: a value out of bounds, or the id is not a UUID.
        ConflictError: a token of this id is already recorded (migrated before).
    """
    token_uuid = _uuid("token", token_id)
    async with conn.transaction():
        found = await conn.execute("SELECT 1 FROM registry.tokens WHERE id = %s", (token_uuid,))
        if await found.fetchone() is not None:
            raise ConflictError("this token is already in the registry")
        created = await create_habilitation(conn, actor, **habilitation)
        token = await _returned(
            conn,
            _TOKENS,
            "INSERT INTO registry.tokens ({t}) VALUES (%s, %s, 'classic', 'production', %s, %s, "
            "NULL, '', NULL, NULL, NULL, '{{}}') RETURNING {t}",
            (token_uuid, uuid.UUID(created.id), issued_at, expires_at),
        )
        await _recorded(conn, actor, "token.import", token.id, (None, token), announce=None)
    return created, token


# -- editors and their delegations ----------------------------------------------------------------


async def create_editor(
    conn: AsyncConnection[Any],
    actor: str,
    *,
    siret: str,
    name: str,
    allowed_ips: Sequence[str] = (),
    contacts: Sequence[str] = (),
) -> Editor:
    """Record a software editor.

    Raises:
        InvalidInputError: a value out of bounds.
    """
    values = (
        uuid.uuid4(),
        checked_siret(siret),
        checked_label(name, "name"),
        list(checked_allowed_ips(allowed_ips)),
        list(checked_contacts(contacts)),
    )
    async with conn.transaction():
        editor = await _returned(
            conn,
            _EDITORS,
            "INSERT INTO registry.editors ({e}) VALUES (%s, %s, %s, %s::cidr[], %s, now(), now()) "
            "RETURNING {e}",
            values,
        )
        await _recorded(conn, actor, "editor.create", editor.id, (None, editor), announce=editor.id)
    return editor


async def get_editor(conn: AsyncConnection[Any], editor_id: str, *, lock: bool = False) -> Editor:
    """The editor of this id (locked for the transaction when ``lock``).

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no editor has it.
    """
    return await _get(conn, _EDITORS, editor_id, lock=lock)


async def list_editors(conn: AsyncConnection[Any]) -> list[Editor]:
    """Every editor, oldest first."""
    return await _listed(conn, _EDITORS, "created_at, id")


async def issue_editor_token(
    conn: AsyncConnection[Any],
    actor: str,
    editor_id: str,
    *,
    days: int,
    environment: Environment = Environment.PRODUCTION,
    allowed_ips: Sequence[str] = (),
) -> TokenRecord:
    """Record a new token of an editor (kind editor, no scopes of its own), expiring in ``days``.

    Its ``allowed_ips`` must lie within the editor's declared ranges when it has some
    (ACCESS-MODEL.md §6). It is rotated, banned, revoked and prolonged as any token.

    Raises:
        InvalidInputError: ``days`` out of bounds, an address outside the editor's ranges, or the id is
            not a UUID.
        UnknownError: no editor has this id.
    """
    days = checked_days(days)
    networks = checked_allowed_ips(allowed_ips)
    async with conn.transaction():
        editor = await get_editor(conn, editor_id, lock=True)
        outside = _outside(networks, editor.allowed_ips)
        if outside:
            raise InvalidInputError("allowed_ips", f"{outside} is not within the editor's ranges")
        return await _issue(
            conn,
            actor,
            habilitation_id=None,
            editor_id=editor.id,
            allowed_ips=networks,
            kind=TokenKind.EDITOR,
            environment=environment,
            expires_at=await _now(conn) + dt.timedelta(days=days),
            announce=editor.id,
        )


def _outside(networks: Sequence[str], ranges: Sequence[str]) -> str | None:
    """The first of ``networks`` within none of ``ranges`` (None: all are, or there are no ranges)."""
    if not ranges:
        return None
    parsed = [ipaddress.ip_network(cidr) for cidr in ranges]
    for cidr in networks:
        network = ipaddress.ip_network(cidr)
        if not any(network.version == r.version and network.subnet_of(r) for r in parsed):  # type: ignore[arg-type]
            return cidr
    return None


_DELEGATED = (
    "SELECT 1 FROM registry.delegations "
    "WHERE editor_id = %(editor)s AND habilitation_id = %(habilitation)s AND revoked_at IS NULL"
)
_INVITED = (
    " UNION ALL SELECT 1 FROM registry.invitations WHERE editor_id = %(editor)s "
    "AND habilitation_id = %(habilitation)s AND accepted_at IS NULL AND expires_at > now()"
)


async def _delegable(
    conn: AsyncConnection[Any], editor_id: str, habilitation_id: str, *, invitations: bool
) -> tuple[Editor, Habilitation]:
    """The editor and the habilitation, locked, when the habilitation may be delegated to the editor.

    That is, validated and not delegated to it already, nor, when ``invitations``, invited by it
    (an invitation still pending).

    Raises:
        InvalidInputError: an id is not a UUID.
        UnknownError: no editor or habilitation has its id.
        ConflictError: the habilitation is not validated, delegated or invited already.
    """
    editor = await get_editor(conn, editor_id, lock=True)
    habilitation = await get_habilitation(conn, habilitation_id, lock=True)
    if habilitation.status is not Status.VALIDATED:
        raise ConflictError(f"the habilitation is {habilitation.status.value}: it cannot be delegated")
    found = await conn.execute(
        _DELEGATED + _INVITED if invitations else _DELEGATED,
        {"editor": uuid.UUID(editor.id), "habilitation": uuid.UUID(habilitation.id)},
    )
    if await found.fetchone() is not None:
        raise ConflictError(
            "the habilitation is delegated to this editor, or invited by it, already"
            if invitations
            else "the habilitation is already delegated to this editor"
        )
    return editor, habilitation


async def create_delegation(
    conn: AsyncConnection[Any],
    actor: str,
    *,
    editor_id: str,
    habilitation_id: str,
    origin: DelegationOrigin = DelegationOrigin.MANUAL,
) -> Delegation:
    """Delegate a validated habilitation to an editor: its tokens may then call for the holder's SIRET.

    Raises:
        InvalidInputError: an id is not a UUID.
        UnknownError: no editor or habilitation has its id.
        ConflictError: the habilitation is not validated, or already delegated to this editor.
    """
    async with conn.transaction():
        editor, habilitation = await _delegable(conn, editor_id, habilitation_id, invitations=False)
        delegation = await _returned(
            conn,
            _DELEGATIONS,
            "INSERT INTO registry.delegations ({d}) VALUES (%s, %s, %s, %s, now(), NULL) RETURNING {d}",
            (uuid.uuid4(), uuid.UUID(editor.id), uuid.UUID(habilitation.id), origin.value),
        )
        await _recorded(
            conn, actor, "delegation.create", delegation.id, (None, delegation), announce=editor.id
        )
    return delegation


async def get_delegation(conn: AsyncConnection[Any], delegation_id: str, *, lock: bool = False) -> Delegation:
    """The delegation of this id (locked for the transaction when ``lock``).

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no delegation has it.
    """
    return await _get(conn, _DELEGATIONS, delegation_id, lock=lock)


async def revoke_delegation(conn: AsyncConnection[Any], actor: str, delegation_id: str) -> Delegation:
    """Revoke a delegation now: the editor's calls for that holder are refused (00213) once announced.

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no delegation has it.
        ConflictError: it is already revoked.
    """
    async with conn.transaction():
        before = await get_delegation(conn, delegation_id, lock=True)
        if before.revoked_at is not None:
            raise ConflictError("the delegation is already revoked")
        after = await _returned(
            conn,
            _DELEGATIONS,
            "UPDATE registry.delegations SET revoked_at = now() WHERE id = %s RETURNING {d}",
            (uuid.UUID(before.id),),
        )
        await _recorded(conn, actor, "delegation.revoke", after.id, (before, after), announce=after.editor_id)
    return after


async def list_delegations(
    conn: AsyncConnection[Any], *, editor_id: str | None = None, habilitation_id: str | None = None
) -> list[Delegation]:
    """Delegations, revoked ones included, newest first: of an editor, of a habilitation, or all.

    Raises:
        InvalidInputError: an id is not a UUID.
    """
    return await _listed(
        conn, _DELEGATIONS, "created_at DESC, id", _of_editor_or_habilitation(editor_id, habilitation_id)
    )


# -- invitations (ACCESS-MODEL.md §1.8) -------------------------------------------------------------


async def invite(
    conn: AsyncConnection[Any],
    actor: str,
    *,
    editor_id: str,
    habilitation_id: str,
    contact_email: str,
    dpo: DataProtectionOfficer,
) -> tuple[Invitation, str]:
    """An editor's invitation of the holder of a validated habilitation, and the secret to accept it.

    The secret (32 random bytes, URL-safe) is returned this once, for the invitation's link; the
    registry keeps its SHA-256. It may be accepted for `INVITATION_DAYS`.

    Raises:
        InvalidInputError: an id is not a UUID, the contact or an officer's field is invalid.
        UnknownError: no editor or habilitation has its id.
        ConflictError: the habilitation is not validated, already delegated to this editor, or
            invited by it already (an invitation still pending).
    """
    contact_email, dpo = checked_email("contact_email", contact_email), checked_dpo(dpo)
    secret = secrets.token_urlsafe(32)
    async with conn.transaction():
        editor, habilitation = await _delegable(conn, editor_id, habilitation_id, invitations=True)
        invitation = await _returned(
            conn,
            _INVITATIONS,
            "INSERT INTO registry.invitations ({i}, secret_sha256) VALUES "
            "(%s, %s, %s, %s, %s, now(), now() + %s, NULL, NULL, %s) RETURNING {i}",
            (
                uuid.uuid4(),
                uuid.UUID(editor.id),
                uuid.UUID(habilitation.id),
                contact_email,
                Jsonb(dpo.as_json()),
                dt.timedelta(days=INVITATION_DAYS),
                hashlib.sha256(secret.encode()).digest(),
            ),
        )
        await _recorded(conn, actor, "invitation.create", invitation.id, (None, invitation), announce=None)
    return invitation, secret


async def _invitation_of_secret(conn: AsyncConnection[Any], invitation_id: str, secret: str) -> uuid.UUID:
    """The key of the invitation of this id and this secret.

    Raises:
        InvalidInputError: the id is not a UUID.
        UnknownError: no invitation has this id and this secret (which of the two is not said).
    """
    found = await conn.execute(
        "SELECT id, secret_sha256 FROM registry.invitations WHERE id = %s",
        (_uuid("invitation", invitation_id),),
    )
    row = await found.fetchone()
    if row is None or not hmac.compare_digest(bytes(row[1]), hashlib.sha256(secret.encode()).digest()):
        raise UnknownError(f"no invitation {invitation_id} with this secret")
    key: uuid.UUID = row[0]
    return key


async def accept_invitation(
    conn: AsyncConnection[Any],
    invitation_id: str,
    secret: str,
    *,
    siret: str,
    terms_accepted: bool,
    dpo_informed: bool,
) -> tuple[Invitation, Delegation]:
    """The body's holder accepts an invitation: its delegation is made, active (origin: the invitation).

    The holder proves the invitation was theirs with its secret, and names their SIRET, whose
    SIREN (first 9 digits) must be the habilitation's (as the real platform checks the agent's);
    the audit trail's actor is ``holder <siret>``.

    Raises:
        InvalidInputError: the id is not a UUID, the SIRET is invalid, the terms or the officer's
            information not confirmed.
        UnknownError: no invitation has this id and this secret (which of the two is not said).
        DeniedError: the SIRET is of another organisation than the habilitation's holder.
        ConflictError: already accepted, expired, or the habilitation no longer delegable.
    """
    siret = checked_siret(siret)
    if not terms_accepted:
        raise InvalidInputError("terms_accepted", "the terms of use must be accepted")
    if not dpo_informed:
        raise InvalidInputError("dpo_informed", "the data protection officer must have been informed")
    key = await _invitation_of_secret(conn, invitation_id, secret)
    actor = f"holder {siret}"
    async with conn.transaction():
        before = await _get(conn, _INVITATIONS, str(key), lock=True)
        state = before.state(await _now(conn))
        if state is not InvitationState.PENDING:
            raise ConflictError(f"the invitation is {state.value}")
        habilitation = await get_habilitation(conn, before.habilitation_id)
        if siret[:9] != habilitation.siret[:9]:
            raise DeniedError("the invitation is for another organisation")
        delegation = await create_delegation(
            conn,
            actor,
            editor_id=before.editor_id,
            habilitation_id=before.habilitation_id,
            origin=DelegationOrigin.EDITOR_DELEGATION_REQUEST,
        )
        after = await _returned(
            conn,
            _INVITATIONS,
            "UPDATE registry.invitations SET accepted_at = now(), delegation_id = %s "
            "WHERE id = %s RETURNING {i}",
            (uuid.UUID(delegation.id), key),
        )
        await _recorded(conn, actor, "invitation.accept", after.id, (before, after), announce=None)
    return after, delegation


async def list_invitations(
    conn: AsyncConnection[Any], *, editor_id: str | None = None, habilitation_id: str | None = None
) -> list[Invitation]:
    """Invitations, newest first: of an editor, of a habilitation, or all.

    Raises:
        InvalidInputError: an id is not a UUID.
    """
    return await _listed(
        conn, _INVITATIONS, "invited_at DESC, id", _of_editor_or_habilitation(editor_id, habilitation_id)
    )


# -- FranceConnect clients -------------------------------------------------------------------------


async def map_france_connect_client(
    conn: AsyncConnection[Any], actor: str, client_id: str, habilitation_id: str
) -> FranceConnectClient:
    """Map a FranceConnect client to the habilitation its citizens' calls count against (replacing any).

    Raises:
        InvalidInputError: the client id is not a FranceConnect client id, or the habilitation's not a UUID.
        UnknownError: no habilitation has this id.
    """
    client_id = checked_client_id(client_id)
    async with conn.transaction():
        habilitation = await get_habilitation(conn, habilitation_id, lock=True)
        found = await conn.execute(
            _query("SELECT {c} FROM registry.france_connect_clients WHERE client_id = %s FOR UPDATE"),
            (client_id,),
        )
        row = await found.fetchone()
        before = None if row is None else _CLIENTS.make(row)
        after = await _returned(
            conn,
            _CLIENTS,
            "INSERT INTO registry.france_connect_clients ({c}) VALUES (%s, %s, now()) "
            "ON CONFLICT (client_id) DO UPDATE SET habilitation_id = EXCLUDED.habilitation_id, "
            "updated_at = now() RETURNING {c}",
            (client_id, uuid.UUID(habilitation.id)),
        )
        await _recorded(
            conn, actor, "france_connect_client.map", client_id, (before, after), announce=habilitation.id
        )
    return after


async def france_connect_client_habilitation(
    conn: AsyncConnection[Any], client_id: str, *, lock: bool = False
) -> str | None:
    """The habilitation a FranceConnect client is mapped to, or None when it is not.

    ``lock`` holds the client's row (when mapped) until the caller's transaction ends.

    Raises:
        InvalidInputError: not a FranceConnect client id.
    """
    query = sql.SQL("SELECT habilitation_id FROM registry.france_connect_clients WHERE client_id = %s{}")
    cursor = await conn.execute(query.format(_lock(lock)), (checked_client_id(client_id),))
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def list_france_connect_clients(conn: AsyncConnection[Any]) -> list[FranceConnectClient]:
    """Every FranceConnect client mapped, by client id."""
    return await _listed(conn, _CLIENTS, "client_id")


# -- what the gateways read ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """The registry as the gateways read it, in one consistent read (`load`)."""

    habilitations: list[Habilitation]
    tokens: list[TokenRecord]
    editors: list[Editor]
    delegations: list[Delegation]
    france_connect_clients: list[FranceConnectClient]


async def load(conn: AsyncConnection[Any]) -> Loaded:
    """The registry in one consistent read: all but the tokens that stopped before `ENDED_KEPT`.

    The tokens that stopped are kept so that a gateway refuses them with their reason (00105
    revoked or banned, 00103 expired) rather than as unknown (00101). Revoked delegations are
    kept: the editor API lists them.
    """
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        habilitations = await list_habilitations(conn)
        cursor = await conn.execute(
            _query(
                "SELECT {t} FROM registry.tokens "
                "WHERE expires_at > now() - %s AND (revoked_at IS NULL OR revoked_at > now() - %s)"
            ),
            (ENDED_KEPT, ENDED_KEPT),
        )
        tokens = [_TOKENS.make(row) for row in await cursor.fetchall()]
        return Loaded(
            habilitations,
            tokens,
            await list_editors(conn),
            await list_delegations(conn),
            await list_france_connect_clients(conn),
        )
