"""The registry's migrations: applied once, whoever starts first."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from gateway.migrations import apply_migrations
from gateway.registry import schema, store
from tests.gateway.registry.conftest import SIRET


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
        "delegations",
        "editors",
        "france_connect_clients",
        "habilitations",
        "invitations",
        "notices",
        "schema_migrations",
        "tokens",
    ]


async def test_tokens_recorded_before_editors_keep_working_after_the_migration(registry_url: str) -> None:
    conn = await psycopg.AsyncConnection.connect(registry_url, autocommit=True)
    try:
        await apply_migrations(conn, "registry", 0x7265676973747279, schema.MIGRATIONS[:1])
        habilitation, token = str(uuid.uuid4()), str(uuid.uuid4())
        await conn.execute(
            "INSERT INTO registry.habilitations (id, label, siret, scopes, status, valid_from, "
            "created_at, updated_at) VALUES "
            "(%s, 'CCAS', %s, '{cnaf_quotient_familial}', 'validated', now(), now(), now())",
            (habilitation, SIRET),
        )
        await conn.execute(
            "INSERT INTO registry.tokens (id, habilitation_id, kind, environment, issued_at, expires_at) "
            "VALUES (%s, %s, 'classic', 'production', now(), now() + interval '30 days')",
            (token, habilitation),
        )

        assert await schema.migrate(conn) == [2, 3, 4]

        loaded = await store.load(conn)
        assert [(t.id, t.habilitation_id, t.editor_id) for t in loaded.tokens] == [
            (token, habilitation, None)
        ]
        # A habilitation of before migration 4 has no organisation name: the SIRET stands for it.
        assert [h.organisation_name for h in loaded.habilitations] == [""]
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute("UPDATE registry.tokens SET habilitation_id = NULL")
    finally:
        await conn.close()
