"""The audit trail read a page at a time, newest first (``GET /admin/v1/audit``, ``ListAudit``).

A page token is the ``seq`` of the last entry of the page before, in decimal: entries are never
renumbered (`gateway.registry.audit`), so a page stays the same while new entries arrive. Each
entry is returned as stored: who (the operator's name), what, on what, when, before and after.
"""

from __future__ import annotations

from typing import Any

import psycopg

from gateway.registry import audit
from gateway.registry.model import InvalidInputError

PAGE_SIZE_DEFAULT = 50
"""Entries per page when none is asked."""
PAGE_SIZE_MAX = 200
"""The most entries one page holds: a page stays a few hundred kilobytes at most."""


def checked_page(size: int, token: str) -> tuple[int, int | None]:
    """The page's size (0: `PAGE_SIZE_DEFAULT`) and the ``seq`` its entries come before (None: newest).

    Raises:
        InvalidInputError: ``page_size`` outside 0 to `PAGE_SIZE_MAX`, or ``page_token`` not one
            this API gave.
    """
    if not 0 <= size <= PAGE_SIZE_MAX:
        raise InvalidInputError("page_size", f"must be 1 to {PAGE_SIZE_MAX} (0 or none: {PAGE_SIZE_DEFAULT})")
    if not token:
        return size or PAGE_SIZE_DEFAULT, None
    if not token.isascii() or not token.isdigit() or len(token) > 18 or int(token) < 2:
        raise InvalidInputError("page_token", "not a page token of this API (the next_page_token of a page)")
    return size or PAGE_SIZE_DEFAULT, int(token)


async def page(conn: psycopg.AsyncConnection[Any], size: int, token: str) -> tuple[list[audit.Entry], str]:
    """The entries of the page asked (`checked_page`), and the next page's token ("": none after)."""
    size, before = checked_page(size, token)
    entries = await audit.page(conn, before=before, size=size)
    last = entries[-1].seq if len(entries) == size else 1
    return entries, "" if last <= 1 else str(last)
