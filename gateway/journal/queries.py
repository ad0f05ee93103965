"""What is read back from the journal: the accesses about one person, by the digests of their forms.

The person is given as the HMAC digests of their normalised forms
(`gateway.journal.subject.identity_forms`, INE, France Travail identifiant): the journal
holds nothing else to find them by.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from gateway.journal.chain import CONTENT_COLUMNS, Content

MAX_ACCESSES = 1000
"""Most accesses one answer lists, most recent first."""

_ABOUT = (
    f"SELECT {', '.join(CONTENT_COLUMNS)} FROM journal.calls "  # noqa: S608 - constant column names
    # The second condition lets a generic plan use the partial index on digests.
    "WHERE subject_digest = ANY(%s) AND subject_digest <> '' "
)
_ORDER = "ORDER BY occurred_at DESC, chain_id, seq LIMIT %s"


def as_json(content: Content) -> dict[str, str]:
    """A JSON-ready view of a row for an auditor, the time in ISO 8601 UTC, without the subject's digest."""
    return {
        "occurred_at": content.occurred_at.astimezone(dt.UTC).isoformat(),
        "request_id": content.request_id,
        "token_id": content.token_id,
        "habilitation": content.habilitation,
        "recipient": content.recipient,
        "method": content.method,
        "api": content.api,
        "status": content.status,
        "code": content.code,
    }


def _query(provider_calls_only: bool) -> bytes:
    return (_ABOUT + ("AND api <> '' " if provider_calls_only else "") + _ORDER).encode()


async def provider_calls_about(conn: psycopg.AsyncConnection[Any], digests: list[str]) -> list[Content]:
    """The provider calls made about a person, most recent first (a citizen's access history).

    The gateway's own methods (a Lookup's frame, the citizen's own history) are left out:
    each provider call a Lookup made has its own row.
    """
    cursor = await conn.execute(_query(True), (digests, MAX_ACCESSES))
    return [Content(*row) for row in await cursor.fetchall()]


def calls_about(conn: psycopg.Connection[Any], digests: list[str], limit: int) -> list[Content]:
    """Every call about a person, the gateway's own methods included, most recent first (an audit)."""
    return [Content(*row) for row in conn.execute(_query(False), (digests, limit))]
