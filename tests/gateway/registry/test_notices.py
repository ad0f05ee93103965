"""Expiry notices: the nearest threshold crossed, once per token and expiry, sent through SMTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.smtp import SmtpSink
from gateway.registry import notices, store
from tests.gateway.registry.conftest import SIRET

Conn = psycopg.AsyncConnection[Any]
_DAY = dt.timedelta(days=1)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path / "mail")
    server.start()
    yield server
    server.close()


def test_the_nearest_threshold_crossed_is_the_one_due() -> None:
    expiry = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
    assert notices.threshold_for(expiry, expiry - 91 * _DAY) is None
    assert notices.threshold_for(expiry, expiry - 90 * _DAY) == 90
    assert notices.threshold_for(expiry, expiry - 10 * _DAY) == 15
    assert notices.threshold_for(expiry, expiry - 7 * _DAY) == 7
    assert notices.threshold_for(expiry, expiry) == 0
    assert notices.threshold_for(expiry, expiry + 2 * _DAY) is None


async def test_a_token_expiring_in_seven_days_gets_its_notice_once(
    registry_conn: Conn, sink: SmtpSink
) -> None:
    habilitation = await store.create_habilitation(
        registry_conn,
        "alice",
        label="CCAS de Lyon",
        siret=SIRET,
        scopes=["cnaf_quotient_familial"],
        contacts=["tech@ccas-lyon.fr", "dpo@ccas-lyon.fr"],
    )
    token = await store.issue_token(registry_conn, "alice", habilitation.id, days=7)
    await store.issue_token(registry_conn, "alice", habilitation.id, days=200)  # no notice yet
    mailer = notices.Mailer("127.0.0.1", sink.port, "api-particulier@example.gouv.fr")

    assert await notices.send_due(registry_conn, mailer) == 1
    assert await notices.send_due(registry_conn, mailer) == 0

    (raw,) = sink.messages()
    message = message_from_bytes(raw)
    assert message["To"] == "tech@ccas-lyon.fr, dpo@ccas-lyon.fr"
    assert "expire dans 7 jours" in str(message["Subject"])
    assert [days for days, _ in await notices.sent_notices(registry_conn, token.id)] == [7]

    # A prolongation starts the notices again, from its new expiry.
    await store.prolong_token(registry_conn, "alice", token.id, days=30)
    assert await notices.send_due(registry_conn, mailer) == 1
    assert [days for days, _ in await notices.sent_notices(registry_conn, token.id)] == [7, 30]


async def test_a_notice_that_cannot_be_sent_is_sent_at_the_next_run(
    registry_conn: Conn, sink: SmtpSink
) -> None:
    habilitation = await store.create_habilitation(
        registry_conn,
        "alice",
        label="CCAS",
        siret=SIRET,
        scopes=["cnaf_quotient_familial"],
        contacts=["a@b.fr"],
    )
    await store.issue_token(registry_conn, "alice", habilitation.id, days=1)

    assert (
        await notices.send_due(
            registry_conn, notices.Mailer("127.0.0.1", 1, "x@example.fr", timeout_seconds=1)
        )
        == 0
    )
    assert await notices.send_due(registry_conn, notices.Mailer("127.0.0.1", sink.port, "x@example.fr")) == 1
