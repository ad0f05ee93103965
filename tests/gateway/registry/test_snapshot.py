"""A gateway's snapshot of the registry: loaded, current within 2 s, served while PostgreSQL is away."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from gateway.registry import store
from gateway.registry.model import Environment
from gateway.registry.snapshot import SNAPSHOT_AGE, Purpose, RegistrySnapshot, Rights
from tests.gateway.registry.conftest import SIRET

Conn = psycopg.AsyncConnection[Any]
_QF = "cnaf_quotient_familial"


@pytest.fixture
async def snapshot(registry_url: str, registry_conn: Conn) -> AsyncIterator[RegistrySnapshot]:
    """A snapshot of the test's registry, reloading every 30 s unless told of a change."""
    followed = RegistrySnapshot(
        registry_url, reload_seconds=30, change_delay_seconds=0.05, retry_seconds=0.1, timeout_seconds=2
    )
    await followed.start(first_load_timeout=10)
    try:
        yield followed
    finally:
        await followed.close()


async def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """Seconds until ``condition`` held; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not seen in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_token_is_found_with_its_habilitations_rights(registry_conn: Conn, registry_url: str) -> None:
    habilitation = await store.create_habilitation(
        registry_conn,
        "operatrice-1",
        label="CCAS",
        siret=SIRET,
        scopes=[_QF],
        allowed_ips=["10.0.0.0/8"],
        rate_per_minute=30,
        organisation_name="Ville de Lyon",
        use_case="Cantine",
    )
    token = await store.issue_token(
        registry_conn, "operatrice-1", habilitation.id, days=10, environment=Environment.SANDBOX
    )
    revoked = await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=10)
    await store.revoke_token(registry_conn, "operatrice-1", revoked.id, "leaked")
    followed = RegistrySnapshot(
        registry_url, reload_seconds=30, change_delay_seconds=0.05, retry_seconds=0.1, timeout_seconds=2
    )
    await followed.start(first_load_timeout=10)
    try:
        entry = followed.token(token.id)
        assert entry is not None
        assert entry.environment is Environment.SANDBOX
        assert entry.expires_at == token.expires_at.timestamp()
        assert entry.rights.scopes == frozenset({_QF})
        assert (entry.rights.rate_per_second, entry.rights.rate_per_minute) == (None, 30)
        ended = followed.token(revoked.id)
        assert ended is not None and ended.ends_at is not None and ended.ends_at <= time.time()
        assert followed.age is not None and followed.age < 5
        assert followed.purpose(habilitation.id) == Purpose("Ville de Lyon", "Cantine")
        assert followed.purpose(str(uuid.uuid4())) is None
    finally:
        await followed.close()


async def test_tokens_expiring_within_30_days_are_counted_never_named(
    registry_conn: Conn, registry_url: str
) -> None:
    """The operator kit's TokensExpiringSoon alert reads this gauge: counts by window and environment only."""
    habilitation = await store.create_habilitation(
        registry_conn, "operatrice-2", label="CCAS", siret=SIRET, scopes=[_QF], rate_per_minute=30
    )
    for days in (5, 20, 20, 90):
        await store.issue_token(registry_conn, "operatrice-2", habilitation.id, days=days)
    revoked = await store.issue_token(registry_conn, "operatrice-2", habilitation.id, days=20)
    await store.revoke_token(registry_conn, "operatrice-2", revoked.id, "leaked")
    await store.issue_token(
        registry_conn, "operatrice-2", habilitation.id, days=20, environment=Environment.SANDBOX
    )
    followed = RegistrySnapshot(
        registry_url, reload_seconds=30, change_delay_seconds=0.05, retry_seconds=0.1, timeout_seconds=2
    )
    await followed.start(first_load_timeout=10)
    try:

        def exported(days: str, environment: str) -> float | None:
            labels = {"within_days": days, "environment": environment}
            return REGISTRY.get_sample_value("gateway_registry_tokens_expiring", labels)

        assert exported("7", "production") == 1
        assert exported("30", "production") == 3, "the revoked one and the 90-day one are not"
        assert exported("30", "sandbox") == 1
    finally:
        await followed.close()


async def test_a_change_reaches_the_snapshot_within_two_seconds(
    registry_conn: Conn, snapshot: RegistrySnapshot
) -> None:
    habilitation = await store.create_habilitation(
        registry_conn, "operatrice-1", label="CCAS", siret=SIRET, scopes=[_QF]
    )
    token = await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=10)
    await _within(2, lambda: snapshot.token(token.id) is not None)

    await store.update_habilitation(
        registry_conn,
        "operatrice-1",
        habilitation.id,
        store.HabilitationChanges(scopes=[_QF, "cnaf_allocataires"]),
    )

    def widened() -> bool:
        entry = snapshot.token(token.id)
        return entry is not None and "cnaf_allocataires" in entry.rights.scopes

    await _within(2, widened)


async def test_the_last_snapshot_serves_while_postgresql_is_away(
    registry_conn: Conn, snapshot: RegistrySnapshot, postgres_server: Any, registry_url: str
) -> None:
    habilitation = await store.create_habilitation(
        registry_conn, "operatrice-1", label="CCAS", siret=SIRET, scopes=[_QF]
    )
    token = await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=10)
    await _within(2, lambda: snapshot.token(token.id) is not None)
    database = registry_url.rsplit("/", 1)[1]

    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as admin:
        await admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false".encode())
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
        )
        try:
            await asyncio.sleep(1.5)
            assert snapshot.token(token.id) is not None
            assert snapshot.age is not None and snapshot.age > 1
            assert next(iter(SNAPSHOT_AGE.collect())).samples[0].value > 1
        finally:
            await admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true".encode())

    async with await psycopg.AsyncConnection.connect(registry_url, autocommit=True) as conn:
        await store.revoke_token(conn, "operatrice-1", token.id, "leaked")
    await _within(3, lambda: (entry := snapshot.token(token.id)) is not None and entry.ends_at is not None)


def test_an_allowlist_admits_only_its_networks() -> None:
    rights = Rights(
        "h", "CCAS", SIRET, frozenset(), (ipaddress.ip_network("10.0.0.0/8"),), None, None, validated=True
    )

    assert rights.allows(ipaddress.ip_address("10.1.2.3"))
    assert not rights.allows(ipaddress.ip_address("127.0.0.1"))
    assert not rights.allows(None)
    assert Rights("h", "CCAS", SIRET, frozenset(), (), None, None, validated=True).allows(None)
