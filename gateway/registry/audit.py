"""The audit trail of admin actions: one hash chain in ``registry.audit``.

Entry *n* holds who acted (the operator's name), what (the action), on what (the
habilitation or token id), when, and the record before and after (JSON, None for a
creation). Its hash is SHA-256 of entry *n-1*'s hash and of its own content in a
canonical encoding (`entry_hash`); the hash before entry 1 is a fixed genesis. Changing,
removing, inserting or reordering an entry breaks the chain from there (`verify`).

A chain recomputed whole by whoever can write the database would verify again: the
admin API therefore logs the head (sequence and hash) after each action, in its log
stream, which lives apart from the database; a head found in the logs and missing from,
or different in, the chain shows the rewrite.

Entries are appended in the transaction of the change they record, under a
transaction-scoped advisory lock: two admin API replicas never fork the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields, replace
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

ENCODING_VERSION = b"apiparticulier-registry/audit/v1"
GENESIS = hashlib.sha256(b"apiparticulier-registry/audit/genesis/v1").digest()
_LOCK_KEY = 0x7265676175646974  # "regaudit": one writer of the chain at a time.
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One admin action, as the chain holds it."""

    seq: int
    occurred_at: dt.datetime
    actor: str
    """The operator's name (never a credential)."""
    action: str
    """``habilitation.create``, ``token.revoke``… (`gateway.registry.store`)."""
    target: str
    """What was acted on: a registry id, a FranceConnect client id, a ping's name (maintenance)."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    entry_hash: bytes

    def as_json(self) -> dict[str, Any]:
        """The entry as JSON values."""
        return {
            "seq": self.seq,
            "occurred_at": self.occurred_at.astimezone(dt.UTC).isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "hash": self.entry_hash.hex(),
        }


_COLUMNS = tuple(field.name for field in fields(Entry))
"""``registry.audit``'s columns: an entry's fields, by the same names."""
_COLUMN_LIST = sql.SQL(", ".join(_COLUMNS))
_SELECT = sql.SQL("SELECT {} FROM registry.audit ").format(_COLUMN_LIST)
_INSERT = sql.SQL("INSERT INTO registry.audit ({}) VALUES ({})").format(
    _COLUMN_LIST, sql.SQL(", ").join([sql.Placeholder()] * len(_COLUMNS))
)


def entry_hash(previous: bytes, entry: Entry) -> bytes:
    """SHA-256 of the previous hash and of the entry's canonical encoding (sorted-key JSON, µs dates).

    The encoding holds every field of ``entry`` but its own ``entry_hash``.
    """
    occurred_at = (entry.occurred_at - _EPOCH) // dt.timedelta(microseconds=1)
    content = json.dumps(
        [entry.seq, occurred_at, entry.actor, entry.action, entry.target, entry.before, entry.after],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return hashlib.sha256(ENCODING_VERSION + previous + content).digest()


async def lock(conn: AsyncConnection[Any]) -> None:
    """Hold the chain's lock until the transaction ends (`append` takes it too).

    For a write whose "before" lives outside the database (a maintenance window in Redis): read
    it under the lock, and no other writer's entry comes between that read and its own.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


async def head(conn: AsyncConnection[Any]) -> tuple[int, bytes]:
    """The trail's last entry: its number and hash; (0, `GENESIS`) when the trail is empty."""
    cursor = await conn.execute("SELECT seq, entry_hash FROM registry.audit ORDER BY seq DESC LIMIT 1")
    row = await cursor.fetchone()
    return (0, GENESIS) if row is None else (row[0], bytes(row[1]))


async def append(
    conn: AsyncConnection[Any],
    *,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> Entry:
    """Append one entry; call it inside the transaction of the change it records.

    Returns:
        The entry, its hash the chain's new head.
    """
    await lock(conn)
    cursor = await conn.execute(
        "SELECT now(), last.seq, last.entry_hash FROM (SELECT 1) AS one "
        "LEFT JOIN (SELECT seq, entry_hash FROM registry.audit ORDER BY seq DESC LIMIT 1) AS last ON true"
    )
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("SELECT now() returned no row")
    occurred_at, last_seq, last_hash = row
    seq, previous = (1, GENESIS) if last_seq is None else (last_seq + 1, bytes(last_hash))
    # The hash covers every field but itself: computed on the entry without it, then set.
    unhashed = Entry(seq, occurred_at, actor, action, target, before, after, entry_hash=b"")
    entry = replace(unhashed, entry_hash=entry_hash(previous, unhashed))
    await conn.execute(
        _INSERT,
        [_stored(getattr(entry, column)) for column in _COLUMNS],
    )
    return entry


def _stored(value: Any) -> Any:
    """A field's value as its column takes it: the before and after records as JSONB."""
    return Jsonb(value) if isinstance(value, dict) else value


def _entry(row: Any) -> Entry:
    entry = Entry(**dict(zip(_COLUMNS, row, strict=True)))
    return replace(entry, entry_hash=bytes(entry.entry_hash))


async def page(conn: AsyncConnection[Any], *, before: int | None, size: int) -> list[Entry]:
    """Up to ``size`` entries, newest first, of those before entry ``before`` (None: from the newest).

    The next page is ``before=`` the last one's ``seq``: entries are never renumbered, so a page
    stays the same while new entries arrive.
    """
    cursor = await conn.execute(
        _SELECT + sql.SQL("WHERE %s::bigint IS NULL OR seq < %s ORDER BY seq DESC LIMIT %s"),
        (before, before, size),
    )
    return [_entry(row) for row in await cursor.fetchall()]


async def entries(conn: AsyncConnection[Any], *, target: str | None = None) -> AsyncIterator[Entry]:
    """The entries in chain order, those of one target only when ``target`` is given."""
    async with conn.cursor() as cursor:
        await cursor.execute(
            _SELECT + sql.SQL("WHERE %s::text IS NULL OR target = %s ORDER BY seq"),
            (target, target),
        )
        async for row in cursor:
            yield _entry(row)


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of `verify`."""

    entries: int
    """Entries read."""
    head: bytes
    """The last entry's hash as recomputed (the genesis when the chain is empty)."""
    broken_at: int | None
    """The first entry whose hash or sequence is wrong; None when the chain holds."""


async def verify(conn: AsyncConnection[Any]) -> Verification:
    """Recompute the chain from the genesis and find the first entry that does not match."""
    previous, count, expected_seq = GENESIS, 0, 1
    async for entry in entries(conn):
        count += 1
        digest = entry_hash(previous, entry)
        if entry.seq != expected_seq or digest != entry.entry_hash:
            return Verification(count, previous, entry.seq)
        previous, expected_seq = digest, expected_seq + 1
    return Verification(count, previous, None)
