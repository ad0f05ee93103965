"""Expiry notices: an e-mail to a habilitation's contacts before each of its tokens expires.

Thresholds: 90, 60, 30, 15, 7 and 0 days before the expiry (ACCESS-MODEL.md §8.2, without
the real platform's two defects: its 14 where the template says 15, and a test that lets
only the first notice through). A token still working that crossed a threshold gets the
notice of the nearest threshold it crossed, once: ``registry.notices`` records it (token,
threshold, expiry) in the transaction that finds it due, and the message is sent after the
commit; a token issued 10 days before its expiry gets the 15-day notice, not five at once.
A prolongation moves the expiry, so its notices start again. A message that cannot be sent
is logged and its record removed, so that the next run sends it again.

`send_due` runs in the admin API process every ``NOTICE_INTERVAL_SECONDS``; the SMTP server
is ``SMTP_HOST``:``SMTP_PORT`` (STARTTLS when ``SMTP_STARTTLS``), the sender ``NOTICE_FROM``.
The same server carries an editor's invitation of a body to its contact (`invitation_message`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import structlog
from psycopg import AsyncConnection

from gateway.registry.model import Editor, Habilitation, Invitation

_LOG = structlog.get_logger(__name__)

THRESHOLDS_DAYS = (90, 60, 30, 15, 7, 0)
"""Days before the expiry at which a notice is due, farthest first."""


@dataclass(frozen=True, slots=True)
class Mailer:
    """Where notices go out."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    timeout_seconds: float = 10.0

    def send(self, message: EmailMessage) -> None:
        """Send one message (blocking: call it in a thread).

        Raises:
            OSError, smtplib.SMTPException: the server refused it or could not be reached.
        """
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
            if self.starttls:
                smtp.starttls()
            smtp.send_message(message)


@dataclass(frozen=True, slots=True)
class Due:
    """A notice found due and recorded."""

    token_id: str
    days_left: int
    expires_at: dt.datetime
    label: str
    recipients: tuple[str, ...]


def threshold_for(expires_at: dt.datetime, now: dt.datetime) -> int | None:
    """The nearest threshold crossed at ``now`` before ``expires_at``; None before the first, after expiry."""
    if now >= expires_at + dt.timedelta(days=1):
        return None
    crossed = [days for days in THRESHOLDS_DAYS if now >= expires_at - dt.timedelta(days=days)]
    return min(crossed) if crossed else None


async def find_due(conn: AsyncConnection[Any], now: dt.datetime) -> list[Due]:
    """Record and return the notices due at ``now`` (tokens still working, habilitations with contacts)."""
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT t.id, t.expires_at, h.label, h.contacts FROM registry.tokens t "
            "JOIN registry.habilitations h ON h.id = t.habilitation_id "
            "WHERE h.status = 'validated' AND cardinality(h.contacts) > 0 "
            "AND (t.revoked_at IS NULL OR t.revoked_at > %s) "
            "AND t.expires_at > %s - interval '1 day' AND t.expires_at <= %s + %s "
            "FOR UPDATE OF t",
            (now, now, now, dt.timedelta(days=max(THRESHOLDS_DAYS))),
        )
        due: list[Due] = []
        for token_id, expires_at, label, contacts in await cursor.fetchall():
            days = threshold_for(expires_at, now)
            if days is None:
                continue
            inserted = await conn.execute(
                "INSERT INTO registry.notices (token_id, days_left, expires_at, recipients, sent_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (token_id, days, expires_at, contacts, now),
            )
            if inserted.rowcount == 1:
                due.append(Due(str(token_id), days, expires_at, label, tuple(contacts)))
    return due


def message_of(due: Due, sender: str) -> EmailMessage:
    """The notice's e-mail (French, as the platform's)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(due.recipients)
    when = f"{due.expires_at.astimezone(dt.UTC):%d/%m/%Y}"
    if due.days_left == 0:
        message["Subject"] = f"API Particulier : votre jeton « {due.label} » expire aujourd'hui"
    else:
        message["Subject"] = (
            f"API Particulier : votre jeton « {due.label} » expire dans {due.days_left} jours"
        )
    message.set_content(
        f"Bonjour,\n\nLe jeton {due.token_id} de l'habilitation « {due.label} » expire le {when} (UTC).\n"
        "Sans prolongation, les appels faits avec ce jeton seront refusés à partir de cette date.\n"
        "Demandez sa prolongation à l'équipe API Particulier : le jeton reste le même.\n"
    )
    return message


async def send_due(conn: AsyncConnection[Any], mailer: Mailer, now: dt.datetime | None = None) -> int:
    """Find, record and send the notices due now; those that fail are un-recorded for the next run.

    Returns:
        The messages sent.
    """
    found = await find_due(conn, now or dt.datetime.now(dt.UTC))
    sent = 0
    for due in found:
        try:
            await asyncio.to_thread(mailer.send, message_of(due, mailer.sender))
        except (OSError, smtplib.SMTPException) as error:
            _LOG.warning(
                "notice_not_sent", token_id=due.token_id, days_left=due.days_left, error=type(error).__name__
            )
            await conn.execute(
                "DELETE FROM registry.notices WHERE token_id = %s AND days_left = %s AND expires_at = %s",
                (uuid.UUID(due.token_id), due.days_left, due.expires_at),
            )
            continue
        sent += 1
        _LOG.info("notice_sent", token_id=due.token_id, days_left=due.days_left)
    return sent


def invitation_message(
    invitation: Invitation, secret: str, editor: Editor, habilitation: Habilitation, sender: str
) -> EmailMessage:
    """The e-mail of an editor's invitation to the body's contact: what to accept, with its secret.

    French, as the platform's. The secret stands for the real platform's signed link
    (ACCESS-MODEL.md §1.8): whoever holds it may accept for the holder's organisation.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = invitation.contact_email
    message["Subject"] = (
        f"API Particulier : {editor.name} vous invite à lui déléguer l'habilitation « {habilitation.label} »"
    )
    until = f"{invitation.expires_at.astimezone(dt.UTC):%d/%m/%Y}"
    message.set_content(
        f"Bonjour,\n\nL'éditeur {editor.name} (SIRET {editor.siret}) vous invite à lui déléguer "
        f"l'habilitation « {habilitation.label} » (SIRET {habilitation.siret}) : ses jetons pourront "
        "alors appeler API Particulier pour vous, avec les droits de cette habilitation.\n"
        "L'invitation désigne votre délégué à la protection des données : "
        f"{invitation.dpo.given_name} {invitation.dpo.family_name}, {invitation.dpo.job_title}.\n\n"
        f"Pour l'accepter, avant le {until} (UTC), après avoir informé votre délégué et accepté les "
        "conditions d'utilisation :\n"
        f"  invitation : {invitation.id}\n  secret : {secret}\n\n"
        "Ce secret vaut signature : ne le transmettez à personne d'autre.\n"
    )
    return message


async def sent_notices(conn: AsyncConnection[Any], token_id: str) -> Sequence[tuple[int, dt.datetime]]:
    """The notices recorded for a token: (days left, expiry), oldest first."""
    cursor = await conn.execute(
        "SELECT days_left, expires_at FROM registry.notices WHERE token_id = %s "
        "ORDER BY sent_at, days_left DESC",
        (uuid.UUID(token_id),),
    )
    return [(row[0], row[1]) for row in await cursor.fetchall()]
