"""What is read back from the journal: the accesses about one person, by the digests of their forms.

The person is given as the HMAC digests of their normalised forms
(`gateway.journal.subject.identity_forms`, INE, France Travail identifiant): the journal
holds nothing else to find them by.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

MAX_ACCESSES = 1000
"""Most accesses one answer lists, most recent first."""

_ABOUT = (
    "SELECT occurred_at, request_id, token_id, habilitation, recipient, method, api, status, code "
    "FROM journal.calls WHERE subject_digest = ANY(%s) "
)
_ORDER = "ORDER BY occurred_at DESC, chain_id, seq LIMIT %s"


@dataclass(frozen=True, slots=True)
class Access:
    """One call about the person."""

    occurred_at: dt.datetime
    request_id: str
    token_id: str
    habilitation: str
    recipient: str
    method: str
    api: str
    """The API label; "" for the gateway's own methods."""
    status: str
    code: str

    def as_json(self) -> dict[str, str]:
        """A JSON-ready view, the time in ISO 8601 UTC."""
        return {
            "occurred_at": self.occurred_at.astimezone(dt.UTC).isoformat(),
            "request_id": self.request_id,
            "token_id": self.token_id,
            "habilitation": self.habilitation,
            "recipient": self.recipient,
            "method": self.method,
            "api": self.api,
            "status": self.status,
            "code": self.code,
        }


def _query(provider_calls_only: bool) -> bytes:
    return (_ABOUT + ("AND api <> '' " if provider_calls_only else "") + _ORDER).encode()


async def provider_calls_about(conn: psycopg.AsyncConnection[Any], digests: list[str]) -> list[Access]:
    """The provider calls made about a person, most recent first (a citizen's access history).

    The gateway's own methods (a Lookup's frame, the citizen's own history) are left out:
    each provider call a Lookup made has its own row.
    """
    cursor = await conn.execute(_query(True), (digests, MAX_ACCESSES))
    return [Access(*row) for row in await cursor.fetchall()]


def calls_about(conn: psycopg.Connection[Any], digests: list[str], limit: int) -> list[Access]:
    """Every call about a person, the gateway's own methods included, most recent first (an audit)."""
    return [Access(*row) for row in conn.execute(_query(False), (digests, limit))]
