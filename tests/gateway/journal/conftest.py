"""A fresh journal database per test, a journal signing key, and a writer on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import PostgresProcess
from gateway.journal import Journal
from gateway.journal.signing import Signer, Verifier, generate
from gateway.journal.writer import JournalWriter, WriterSettings
from gateway.settings import JournalFailureMode

HMAC_KEY = b"the journal's test HMAC key, 32b"


@dataclass(frozen=True)
class SigningKey:
    """A journal signing key pair on disk."""

    private: Path
    public: Path

    def signer(self) -> Signer:
        return Signer.from_file(self.private)

    def verifier(self) -> Verifier:
        return Verifier.from_files([self.public])


@pytest.fixture(scope="session")
def journal_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """An Ed25519 key pair made as ``journal keygen`` makes it."""
    private, public = generate(tmp_path_factory.mktemp("journal-keys"), "journal-signing")
    return SigningKey(private, public)


def database_url(server: PostgresProcess, name: str) -> str:
    """The URL of database ``name`` on ``server``."""
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def journal_db(postgres_server: PostgresProcess) -> Iterator[str]:
    """The URL of a database of its own for one test, dropped after it."""
    name = f"journal_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    yield database_url(postgres_server, name)
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


def writer_settings(**overrides: object) -> WriterSettings:
    """Writer settings for the tests: small batches, fast retries."""
    values: dict[str, object] = {
        "mode": JournalFailureMode.FAIL_CLOSED,
        "spool_rows": 10_000,
        "batch_rows": 50,
        "checkpoint_seconds": 0.2,
        "timeout_seconds": 1.0,
        "retry_seconds": 0.1,
        "retention_months": 12,
    }
    values.update(overrides)
    return WriterSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def started(journal: Journal) -> AsyncIterator[Journal]:
    """The journal started (its writer migrated and writing), closed at the end."""
    await journal.start()
    try:
        yield journal
    finally:
        await journal.close()


def journal_on(url: str, key: SigningKey, **overrides: object) -> Journal:
    """A journal writing to ``url``, signing with ``key``."""
    return Journal(HMAC_KEY, JournalWriter(url, key.signer(), writer_settings(**overrides)))
