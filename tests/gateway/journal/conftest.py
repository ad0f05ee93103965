"""A fresh journal database per test, a journal signing key, and a writer on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.message import Message

from apiparticulier.cnaf.v1 import cnaf_pb2
from contract.routes import contract_scopes
from devstack.postgres import PostgresProcess
from devstack.redis import RedisProcess
from gateway.app import GatewayServer, build_server
from gateway.journal import Call, Journal
from gateway.journal.signing import Signer, Verifier, generate
from gateway.journal.verify import Timing
from gateway.journal.witness import FileWitness
from gateway.journal.writer import JournalWriter, WriterSettings
from gateway.settings import JournalFailureMode
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.gateway.conftest import gateway_settings, keys_dir
from tests.gateway.tokens import SigningKey as TokenKey
from tests.gateway.tokens import TokenFactory
from tests.people import lefebvre_briefly

__all__ = ["keys_dir"]

HMAC_KEY = b"the journal's test HMAC key, 32b"
QUOTIENT_FAMILIAL = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
RECIPIENT = "13002526500013"


def lefebvre() -> cnaf_pb2.GetQuotientFamilialByIdentityRequest:
    """A quotient familial request about the sandbox's LEFEBVRE Alexis, her first first name only."""
    return cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre_briefly())


def quotient_call(request_id: str, subject: Message | None, status: str = "OK", code: str = "") -> Call:
    """A quotient familial call of the CCAS de Lyon, as the call path hands it to the journal."""
    return Call(
        request_id=request_id,
        token_id="0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
        habilitation="CCAS de Lyon",
        recipient=RECIPIENT,
        method=QUOTIENT_FAMILIAL,
        api="cnaf.quotient_familial",
        provider="cnaf",
        status=status,
        code=code,
        latency_ms=1.5,
        subject=subject,
    )


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


@contextmanager
def fresh_database(server: PostgresProcess) -> Iterator[str]:
    """The URL of a new, empty database on ``server``, dropped at the end."""
    name = f"journal_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield database_url(server, name)
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


@pytest.fixture
def journal_db(postgres_server: PostgresProcess) -> Iterator[str]:
    """The URL of a database of its own for one test."""
    with fresh_database(postgres_server) as url:
        yield url


@dataclass
class JournalledMesh:
    """A gateway whose journal is in PostgreSQL, in front of a real cnaf service."""

    channel: grpc.aio.Channel
    address: str
    factory: TokenFactory
    database_url: str
    key: SigningKey
    rest_url: str
    """The gateway's REST front."""


@asynccontextmanager
async def journalled_gateway(
    redis_url: str, keys: Path, database: str, key: SigningKey, factory: TokenFactory, **overrides: Any
) -> AsyncIterator[JournalledMesh]:
    """A cnaf service and a gateway journalling to ``database``; both stopped at the end."""
    cnaf = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await cnaf.start()
    settings = gateway_settings(
        keys,
        redis_url,
        cnaf_address=f"127.0.0.1:{cnaf.port}",
        journal_database_url=database,
        journal_signing_key_file=key.private,
        journal_checkpoint_seconds=0.2,
        journal_flush_seconds=0.01,
        journal_retry_seconds=0.1,
        journal_timeout_seconds=1.0,
        rest_host="127.0.0.1",
        rest_port=0,
        **overrides,
    )
    gateway = build_server(settings)
    await gateway.start()
    address = f"127.0.0.1:{gateway.port}"
    channel = grpc.aio.insecure_channel(address)
    assert isinstance(gateway, GatewayServer) and gateway.rest is not None
    try:
        yield JournalledMesh(
            channel, address, factory, database, key, f"http://127.0.0.1:{gateway.rest.port}"
        )
    finally:
        await channel.close(None)
        await gateway.stop(0)
        await cnaf.stop(0)


@pytest.fixture(scope="module")
async def journalled(
    redis_server: RedisProcess,
    postgres_server: PostgresProcess,
    keys_dir: tuple[Path, TokenKey, TokenKey],
    journal_key: SigningKey,
) -> AsyncIterator[JournalledMesh]:
    """A gateway journalling to a database of its own, for a module's tests."""
    directory, es, _ = keys_dir
    factory = TokenFactory(es, scopes=sorted(contract_scopes()))
    with fresh_database(postgres_server) as url:
        # The history's own limit would refuse the tests' polling for the rows of a batch.
        async with journalled_gateway(
            redis_server.url, directory, url, journal_key, factory, access_history_rate_per_second=1000
        ) as mesh:
            yield mesh


TIMING = Timing(checkpoint_seconds=0.2)
"""How late the tests' writers (`writer_settings`, `journalled_gateway`) may sign a row."""


def writer_settings(**overrides: object) -> WriterSettings:
    """Writer settings for the tests: small batches, fast retries."""
    values: dict[str, object] = {
        "mode": JournalFailureMode.FAIL_CLOSED,
        "spool_rows": 10_000,
        "batch_rows": 50,
        "flush_seconds": 0.01,
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


def journal_on(url: str, key: SigningKey, witness: Path | None = None, **overrides: object) -> Journal:
    """A journal writing to ``url``, signing with ``key``, its heads also appended to ``witness``."""
    return Journal(
        HMAC_KEY,
        JournalWriter(
            url,
            key.signer(),
            writer_settings(**overrides),
            witness=None if witness is None else FileWitness(witness),
        ),
    )
