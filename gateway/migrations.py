"""Versioned SQL migrations of one PostgreSQL schema, each applied once, under an advisory lock.

The journal (`gateway.journal.schema`) and the registry (`gateway.registry.schema`) each own a
schema and its list of migrations; this applies them, the same way for both: the versions done
are kept in ``<schema>.schema_migrations``, and concurrent starts wait on the schema's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql


async def apply_migrations(
    conn: AsyncConnection[Any], schema: str, lock_key: int, migrations: Sequence[tuple[int, str]]
) -> list[int]:
    """Apply the migrations ``schema`` lacks, in order, in one transaction under ``lock_key``.

    Args:
        conn: A connection outside any transaction.
        schema: The schema the migrations create and change.
        lock_key: The transaction-level advisory lock of that schema's DDL.
        migrations: ``(version, SQL)`` in order; the SQL may hold several statements.

    Returns:
        The versions applied now (none when another process did it first).
    """
    table = sql.Identifier(schema, "schema_migrations")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        cursor = await conn.execute(sql.SQL("SELECT version FROM {}").format(table))
        done = {row[0] for row in await cursor.fetchall()}
        applied = []
        for version, statements in migrations:
            if version in done:
                continue
            # Bytes: several statements in one simple query, no parameters.
            await conn.execute(statements.encode())
            await conn.execute(sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(table), (version,))
            applied.append(version)
    return applied
