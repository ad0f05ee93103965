"""The audit trail: one hash chain, any change to a past entry shows."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import psycopg

from gateway.registry import audit, store
from tests.gateway.registry.conftest import SIRET

Conn = psycopg.AsyncConnection[Any]


async def _three_actions(conn: Conn) -> None:
    habilitation = await store.create_habilitation(
        conn, "operatrice-1", label="CCAS de Lyon", siret=SIRET, scopes=["cnaf_quotient_familial"]
    )
    token = await store.issue_token(conn, "operatrice-1", habilitation.id, days=10)
    await store.revoke_token(conn, "operateur-2", token.id, "leaked")


async def test_an_untouched_chain_verifies_to_its_head(registry_conn: Conn) -> None:
    assert await audit.verify(registry_conn) == audit.Verification(0, audit.GENESIS, None)
    await _three_actions(registry_conn)

    verification = await audit.verify(registry_conn)
    entries = [entry async for entry in audit.entries(registry_conn)]
    assert [entry.seq for entry in entries] == [1, 2, 3]
    assert verification == audit.Verification(3, entries[-1].entry_hash, None)


async def test_an_edited_entry_breaks_the_chain_where_it_was_edited(registry_conn: Conn) -> None:
    await _three_actions(registry_conn)
    await registry_conn.execute("UPDATE registry.audit SET actor = 'mallory' WHERE seq = 2")

    assert (await audit.verify(registry_conn)).broken_at == 2


async def test_a_removed_entry_breaks_the_chain(registry_conn: Conn) -> None:
    await _three_actions(registry_conn)
    await registry_conn.execute("DELETE FROM registry.audit WHERE seq = 2")

    assert (await audit.verify(registry_conn)).broken_at == 3


async def test_an_edited_before_or_after_breaks_the_chain(registry_conn: Conn) -> None:
    await _three_actions(registry_conn)
    await registry_conn.execute(
        "UPDATE registry.audit SET after = jsonb_set(after, '{revoked_reason}', '\"expired\"') WHERE seq = 3"
    )

    assert (await audit.verify(registry_conn)).broken_at == 3


def test_an_entry_hashes_as_the_v1_encoding_says() -> None:
    # The digest the encoding gave when the chain's first entries were written: a change of the
    # encoding (a field left out, reordered, a date's unit) would break every stored chain.
    entry = audit.Entry(
        seq=7,
        occurred_at=dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC),
        actor="operatrice-1",
        action="token.revoke",
        target="d1e5",
        before={"revoked_reason": "", "n": 1},
        after={"revoked_reason": "leaked é", "n": 2},
        entry_hash=b"",
    )

    digest = audit.entry_hash(b"\x01" * 32, entry)

    assert digest.hex() == "5ea322d499e459fb0f0c831c6171fae96875830b31c72bbde35ac3218e6dc454"
    assert audit.entry_hash(b"\x01" * 32, dataclasses.replace(entry, entry_hash=digest)) == digest
