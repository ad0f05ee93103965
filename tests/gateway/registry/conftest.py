"""A fresh registry database per test, migrated, and an async connection to it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from devstack.postgres import PostgresProcess
from gateway.registry import schema

SIRET = "13002526500013"
"""The DINUM's SIRET: a valid holder."""


@pytest.fixture
def registry_url(postgres_server: PostgresProcess) -> Iterator[str]:
    """The URL of a database of its own for one test, dropped at the end."""
    name = f"registry_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


@pytest.fixture
async def registry_conn(registry_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection to the migrated registry (each write opens its own transaction)."""
    conn = await psycopg.AsyncConnection.connect(registry_url, autocommit=True)
    await schema.migrate(conn)
    try:
        yield conn
    finally:
        await conn.close()
