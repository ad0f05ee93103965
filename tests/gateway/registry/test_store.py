"""Reads and writes of the registry, each write with its audit entry and its announcement."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import psycopg
import pytest

from gateway.registry import audit, store
from gateway.registry.model import (
    DelegationState,
    Environment,
    Habilitation,
    InvalidInputError,
    Status,
    TokenKind,
    TokenState,
)
from gateway.registry.schema import CHANNEL
from tests.gateway.registry.conftest import SIRET

Conn = psycopg.AsyncConnection[Any]


async def _habilitation(conn: Conn, **overrides: Any) -> Habilitation:
    values: dict[str, Any] = {"label": "CCAS de Lyon", "siret": SIRET, "scopes": ["cnaf_quotient_familial"]}
    values.update(overrides)
    return await store.create_habilitation(conn, "operatrice-1", **values)


async def test_a_habilitation_is_created_validated_with_normalised_values(registry_conn: Conn) -> None:
    created = await _habilitation(
        registry_conn,
        allowed_ips=["10.0.0.0/8", "127.0.0.1", "10.0.0.0/8"],
        contacts=[" Tech@Example.FR "],
        rate_per_minute=30,
        datapass_id="4242",
    )

    assert created.status is Status.VALIDATED
    assert created.allowed_ips == ("10.0.0.0/8", "127.0.0.1/32")
    assert created.contacts == ("tech@example.fr",)
    assert (created.rate_per_second, created.rate_per_minute) == (None, 30)
    assert await store.get_habilitation(registry_conn, created.id) == created


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"label": "  "}, "label"),
        ({"siret": "13002526500012"}, "siret"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["not_a_scope"]}, "scopes"),
        ({"allowed_ips": ["10.0.0.1/8"]}, "allowed_ips"),
        ({"allowed_ips": ["localhost"]}, "allowed_ips"),
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"rate_per_second": 10_001}, "rate_per_second"),
        ({"rate_per_minute": 600_001}, "rate_per_minute"),
        ({"contacts": ["not an address"]}, "contacts"),
        ({"organisation_name": "x" * 201}, "organisation_name"),
    ],
)
async def test_values_out_of_bounds_are_refused_and_nothing_is_written(
    registry_conn: Conn, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        await _habilitation(registry_conn, **overrides)
    assert refused.value.field == field
    assert await store.list_habilitations(registry_conn) == []
    assert [entry async for entry in audit.entries(registry_conn)] == []


async def test_a_datapass_id_names_one_habilitation(registry_conn: Conn) -> None:
    await _habilitation(registry_conn, datapass_id="4242")
    with pytest.raises(store.ConflictError):
        await _habilitation(registry_conn, datapass_id="4242")


async def test_an_update_replaces_the_lists_given_and_keeps_the_rest(registry_conn: Conn) -> None:
    created = await _habilitation(registry_conn, allowed_ips=["10.0.0.0/8"], rate_per_second=50)
    updated = await store.update_habilitation(
        registry_conn,
        "operateur-2",
        created.id,
        store.HabilitationChanges(scopes=["cnaf_quotient_familial", "cnaf_allocataires"], rate_per_minute=30),
    )

    assert updated.scopes == ("cnaf_quotient_familial", "cnaf_allocataires")
    assert updated.allowed_ips == ("10.0.0.0/8",)
    assert (updated.rate_per_second, updated.rate_per_minute) == (50, 30)
    cleared = await store.update_habilitation(
        registry_conn,
        "operateur-2",
        created.id,
        store.HabilitationChanges(allowed_ips=[], clear_rate_per_second=True),
    )
    assert (cleared.allowed_ips, cleared.rate_per_second) == ((), None)
    history = [entry async for entry in audit.entries(registry_conn, target=created.id)]
    assert [(entry.actor, entry.action) for entry in history] == [
        ("operatrice-1", "habilitation.create"),
        ("operateur-2", "habilitation.update"),
        ("operateur-2", "habilitation.update"),
    ]
    assert history[1].before is not None and history[1].before["scopes"] == ["cnaf_quotient_familial"]
    assert history[1].after is not None and history[1].after["rate_per_minute"] == 30


async def test_the_organisation_name_is_kept_stripped_changed_and_audited(registry_conn: Conn) -> None:
    created = await _habilitation(registry_conn, organisation_name="  Commune de Lyon ", use_case="Cantine")
    assert (created.organisation_name, created.use_case) == ("Commune de Lyon", "Cantine")
    kept = await store.update_habilitation(
        registry_conn, "operateur-2", created.id, store.HabilitationChanges(rate_per_minute=30)
    )
    assert kept.organisation_name == "Commune de Lyon"
    renamed = await store.update_habilitation(
        registry_conn, "operateur-2", created.id, store.HabilitationChanges(organisation_name="Ville de Lyon")
    )
    assert renamed.organisation_name == "Ville de Lyon"
    assert await store.get_habilitation(registry_conn, created.id) == renamed
    history = [entry async for entry in audit.entries(registry_conn, target=created.id)]
    assert history[-1].before is not None and history[-1].before["organisation_name"] == "Commune de Lyon"
    assert history[-1].after is not None and history[-1].after["organisation_name"] == "Ville de Lyon"


async def test_unknown_ids_and_ids_that_are_not_uuids_are_told_apart(registry_conn: Conn) -> None:
    with pytest.raises(store.UnknownError):
        await store.get_habilitation(registry_conn, "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e")
    with pytest.raises(InvalidInputError):
        await store.get_token(registry_conn, "not-a-uuid")


async def test_tokens_share_their_habilitation_and_expire_in_the_days_given(registry_conn: Conn) -> None:
    habilitation = await _habilitation(registry_conn)
    classic = await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=548)
    sandbox = await store.issue_token(
        registry_conn, "operatrice-1", habilitation.id, days=30, environment=Environment.SANDBOX
    )

    assert classic.expires_at - classic.issued_at == dt.timedelta(days=548)
    assert (sandbox.kind, sandbox.environment) == (TokenKind.CLASSIC, Environment.SANDBOX)
    listed = await store.list_tokens(registry_conn, habilitation_id=habilitation.id)
    assert [token.id for token in listed] == [sandbox.id, classic.id]
    expiring = await store.list_tokens(registry_conn, expiring_within=dt.timedelta(days=31))
    assert [token.id for token in expiring] == [sandbox.id]


async def test_an_editor_token_is_issued_to_an_editor_not_to_a_habilitation(registry_conn: Conn) -> None:
    habilitation = await _habilitation(registry_conn)

    with pytest.raises(InvalidInputError) as refused:
        await store.issue_token(
            registry_conn, "operatrice-1", habilitation.id, days=30, kind=TokenKind.EDITOR
        )

    assert refused.value.field == "kind"


async def test_a_revoked_token_stops_now_with_its_reason_and_only_once(registry_conn: Conn) -> None:
    token = await store.issue_token(
        registry_conn, "operatrice-1", (await _habilitation(registry_conn)).id, days=10
    )
    revoked = await store.revoke_token(
        registry_conn, "operateur-2", token.id, "leaked in a public repository"
    )

    assert revoked.state(dt.datetime.now(dt.UTC)) is TokenState.REVOKED
    assert revoked.revoked_reason == "leaked in a public repository"
    with pytest.raises(store.ConflictError):
        await store.revoke_token(registry_conn, "operateur-2", token.id, "again")
    with pytest.raises(InvalidInputError):
        await store.revoke_token(registry_conn, "operateur-2", token.id, " ")
    loaded = (await store.load(registry_conn)).tokens
    assert [(found.id, found.state(dt.datetime.now(dt.UTC))) for found in loaded] == [
        (token.id, TokenState.REVOKED)
    ]


async def test_a_ban_from_a_date_keeps_the_token_until_then_and_hands_a_replacement(
    registry_conn: Conn,
) -> None:
    token = await store.issue_token(
        registry_conn, "operatrice-1", (await _habilitation(registry_conn)).id, days=100
    )
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    banned, replacement = await store.ban_token(
        registry_conn, "operateur-2", token.id, at=at, reason="shared with a contractor", replace=True
    )

    assert replacement is not None
    assert banned.state(dt.datetime.now(dt.UTC)) is TokenState.ENDING
    assert banned.state(at) is TokenState.REVOKED
    assert (banned.replaced_by, replacement.replaces) == (replacement.id, token.id)
    assert replacement.expires_at == token.expires_at
    loaded = (await store.load(registry_conn)).tokens
    assert {loaded_token.id for loaded_token in loaded} == {token.id, replacement.id}
    with pytest.raises(store.ConflictError):
        await store.ban_token(registry_conn, "operateur-2", token.id, at=None, reason="again", replace=False)


async def test_a_rotation_leaves_both_tokens_working_during_the_grace(registry_conn: Conn) -> None:
    token = await store.issue_token(
        registry_conn, "operatrice-1", (await _habilitation(registry_conn)).id, days=100
    )
    old, new = await store.rotate_token(registry_conn, "operateur-2", token.id, grace=dt.timedelta(hours=1))

    now = dt.datetime.now(dt.UTC)
    assert (old.state(now), new.state(now)) == (TokenState.ENDING, TokenState.ACTIVE)
    assert old.state(now + dt.timedelta(hours=1, seconds=1)) is TokenState.REVOKED
    assert (new.habilitation_id, new.expires_at, new.replaces) == (
        old.habilitation_id,
        old.expires_at,
        old.id,
    )
    immediate_old, _ = await store.rotate_token(registry_conn, "operateur-2", new.id, grace=dt.timedelta(0))
    assert immediate_old.state(dt.datetime.now(dt.UTC)) is TokenState.REVOKED


async def test_an_editor_tokens_successor_keeps_its_holder_kind_environment_ranges_and_expiry(
    registry_conn: Conn,
) -> None:
    editor = await store.create_editor(
        registry_conn, "operatrice-1", siret=SIRET, name="Logiciel", allowed_ips=["10.0.0.0/8"]
    )
    token = await store.issue_editor_token(
        registry_conn,
        "operatrice-1",
        editor.id,
        days=100,
        environment=Environment.SANDBOX,
        allowed_ips=["10.1.0.0/16"],
    )
    old, new = await store.rotate_token(registry_conn, "operateur-2", token.id, grace=dt.timedelta(hours=1))

    kept = ("habilitation_id", "editor_id", "kind", "environment", "allowed_ips", "expires_at")
    assert [getattr(new, name) for name in kept] == [getattr(token, name) for name in kept]
    assert (new.replaces, new.revoked_at, new.revoked_reason, old.replaced_by) == (token.id, None, "", new.id)
    assert new.issued_at > token.issued_at
    history = [(entry.action, entry.target) async for entry in audit.entries(registry_conn)]
    assert history[-2:] == [("token.issue", new.id), ("token.rotate", token.id)]


async def test_a_prolongation_moves_the_expiry_and_keeps_the_token(registry_conn: Conn) -> None:
    token = await store.issue_token(
        registry_conn, "operatrice-1", (await _habilitation(registry_conn)).id, days=5
    )
    prolonged = await store.prolong_token(registry_conn, "operateur-2", token.id, days=548)

    assert prolonged.id == token.id
    assert prolonged.expires_at - token.expires_at > dt.timedelta(days=540)
    old, new = await store.rotate_token(registry_conn, "operateur-2", token.id, grace=dt.timedelta(hours=1))
    # Still working through its grace, but ending: the refusal says so, and points to the new one.
    with pytest.raises(store.ConflictError, match="ending"):
        await store.prolong_token(registry_conn, "operateur-2", old.id, days=548)
    await store.revoke_token(registry_conn, "operateur-2", new.id, "ended")
    with pytest.raises(store.ConflictError, match="revoked"):
        await store.prolong_token(registry_conn, "operateur-2", new.id, days=548)


async def test_a_habilitation_no_longer_validated_ends_its_tokens(registry_conn: Conn) -> None:
    habilitation = await _habilitation(registry_conn)
    token = await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=100)
    await store.update_habilitation(
        registry_conn, "operateur-2", habilitation.id, store.HabilitationChanges(status=Status.REVOKED)
    )

    ended = await store.get_token(registry_conn, token.id)
    assert ended.state(dt.datetime.now(dt.UTC)) is TokenState.REVOKED
    assert ended.revoked_reason == "habilitation revoked"
    with pytest.raises(store.ConflictError):
        await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=100)


async def test_every_write_is_announced_once_committed(registry_url: str, registry_conn: Conn) -> None:
    listener = await psycopg.AsyncConnection.connect(registry_url, autocommit=True)
    try:
        await listener.execute(f"LISTEN {CHANNEL}")
        habilitation = await _habilitation(registry_conn)
        await store.issue_token(registry_conn, "operatrice-1", habilitation.id, days=10)
        payloads = []
        async with asyncio.timeout(5):
            async for notice in listener.notifies():
                payloads.append(notice.payload)
                if len(payloads) == 2:
                    break
        assert payloads == [habilitation.id, habilitation.id]
    finally:
        await listener.close()


async def test_editors_and_delegations_are_written_with_their_audit_entries(registry_conn: Conn) -> None:
    habilitation = await _habilitation(registry_conn)
    editor = await store.create_editor(
        registry_conn, "operatrice-1", siret=habilitation.siret, name=" Logiciel ", allowed_ips=["10.0.0.1"]
    )
    token = await store.issue_editor_token(registry_conn, "operatrice-1", editor.id, days=548)
    delegation = await store.create_delegation(
        registry_conn, "operatrice-1", editor_id=editor.id, habilitation_id=habilitation.id
    )
    revoked = await store.revoke_delegation(registry_conn, "operateur-2", delegation.id)

    assert (editor.name, editor.allowed_ips) == ("Logiciel", ("10.0.0.1/32",))
    assert (token.kind, token.habilitation_id, token.editor_id) == (TokenKind.EDITOR, None, editor.id)
    assert revoked.state is DelegationState.REVOKED
    history = [(entry.actor, entry.action, entry.target) async for entry in audit.entries(registry_conn)]
    assert history[1:] == [
        ("operatrice-1", "editor.create", editor.id),
        ("operatrice-1", "token.issue", token.id),
        ("operatrice-1", "delegation.create", delegation.id),
        ("operateur-2", "delegation.revoke", delegation.id),
    ]
    # A second active delegation of the same pair is refused; after the revocation, a new one is not.
    again = await store.create_delegation(
        registry_conn, "operatrice-1", editor_id=editor.id, habilitation_id=habilitation.id
    )
    with pytest.raises(store.ConflictError):
        await store.create_delegation(
            registry_conn, "operatrice-1", editor_id=editor.id, habilitation_id=habilitation.id
        )
    await store.update_habilitation(
        registry_conn, "operateur-2", habilitation.id, store.HabilitationChanges(status=Status.ARCHIVED)
    )
    listed = await store.list_delegations(registry_conn, habilitation_id=habilitation.id)
    assert [(d.id, d.state) for d in listed] == [
        (again.id, DelegationState.REVOKED),
        (delegation.id, DelegationState.REVOKED),
    ]
    assert (await store.load(registry_conn)).delegations == listed
