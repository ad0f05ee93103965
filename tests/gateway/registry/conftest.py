"""A fresh registry database per test, migrated, an async connection to it, and an admin API on it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import redis

from apiparticulier.admin.v1 import admin_pb2_grpc
from devstack.postgres import PostgresProcess
from devstack.redis import RedisProcess
from gateway import pings
from gateway.admin import keys
from gateway.admin_api.app import build_server
from gateway.admin_api.service import secret_digest
from gateway.admin_api.settings import AdminSettings
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


ADMIN_SECRET = "the admin operator's test secret"
VIEWER_SECRET = "the viewer operator's test secret"
CONSOLE_SECRET = "the console's test secret"
SIGNING_KID = "registry-test"


@dataclass
class AdminApi:
    """A running admin API (gRPC and REST) on a fresh registry, and what it was given."""

    stub: admin_pb2_grpc.AdminServiceAsyncStub
    rest_url: str
    database_url: str
    keys_dir: Path
    redis_url: str
    grpc_address: str

    @staticmethod
    def as_admin() -> tuple[tuple[str, str]]:
        """The admin operator's call metadata."""
        return (("authorization", f"Bearer {ADMIN_SECRET}"),)

    @staticmethod
    def as_viewer() -> tuple[tuple[str, str]]:
        """The viewer operator's call metadata."""
        return (("authorization", f"Bearer {VIEWER_SECRET}"),)


def operators_file(directory: Path) -> Path:
    """An operators file: ``operatrice-1`` admin, ``victor`` viewer, ``console`` the web console."""
    path = directory / "operators.json"
    path.write_text(
        json.dumps(
            {
                "operators": [
                    {"name": "operatrice-1", "role": "admin", "secret_sha256": secret_digest(ADMIN_SECRET)},
                    {"name": "victor", "role": "viewer", "secret_sha256": secret_digest(VIEWER_SECRET)},
                    {"name": "console", "role": "console", "secret_sha256": secret_digest(CONSOLE_SECRET)},
                ]
            }
        )
    )
    return path


def admin_settings(database_url: str, directory: Path, redis_url: str, **overrides: Any) -> AdminSettings:
    """The admin API's settings on port 0, its signing key made in ``directory``."""
    keys_dir = directory / "keys"
    if not (keys_dir / f"{SIGNING_KID}.private.pem").exists():
        keys.generate(keys_dir, SIGNING_KID)
    values: dict[str, Any] = {
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "admin_rest_port": 0,
        "registry_database_url": database_url,
        "admin_operators_file": operators_file(directory),
        "keys_dir": keys_dir,
        "token_signing_kid": SIGNING_KID,
        "redis_url": redis_url,
        "shutdown_grace_seconds": 0.5,
    }
    values.update(overrides)
    return AdminSettings(**values)


@asynccontextmanager
async def running_admin_api(settings: AdminSettings) -> AsyncIterator[AdminApi]:
    """The admin API of ``settings``, started and stopped around the block."""
    server = await build_server(settings)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    assert server.rest is not None
    assert settings.keys_dir is not None
    try:
        yield AdminApi(
            admin_pb2_grpc.AdminServiceStub(channel),
            f"http://127.0.0.1:{server.rest.port}",
            settings.registry_database_url.get_secret_value(),
            settings.keys_dir,
            settings.redis_url,
            f"127.0.0.1:{server.port}",
        )
    finally:
        await channel.close(grace=None)
        await server.stop(0)


@pytest.fixture
async def admin_api(registry_url: str, tmp_path: Path, redis_server: RedisProcess) -> AsyncIterator[AdminApi]:
    """A running admin API on a fresh registry."""
    async with running_admin_api(admin_settings(registry_url, tmp_path, redis_server.url)) as api:
        yield api


@pytest.fixture
def maintenance_windows(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    """The session's Redis, where the windows live, without any before and after the test (others read it)."""
    client = redis.Redis.from_url(redis_server.url)
    keys = [pings.window_key(ping.id) for ping in pings.PINGS]
    client.delete(*keys)
    try:
        yield client
    finally:
        client.delete(*keys)
        client.close()
