"""The registry's migrations: applied once, whoever starts first."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from gateway.registry import schema


async def test_migrations_are_applied_once_by_concurrent_starts(registry_url: str) -> None:
    conns = [await psycopg.AsyncConnection.connect(registry_url, autocommit=True) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(schema.migrate(conn) for conn in conns))
        assert sorted(applied, key=len) == [[], [], [version for version, _ in schema.MIGRATIONS]]
        assert await schema.migrate(conns[0]) == []
    finally:
        for conn in conns:
            await conn.close()


async def test_the_registry_lives_apart_from_the_journal(registry_conn: psycopg.AsyncConnection[Any]) -> None:
    cursor = await registry_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'registry' ORDER BY 1"
    )
    assert [row[0] for row in await cursor.fetchall()] == [
        "audit",
        "habilitations",
        "notices",
        "schema_migrations",
        "tokens",
    ]
