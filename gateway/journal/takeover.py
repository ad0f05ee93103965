"""Dead processes' write-ahead files taken over: the rows PostgreSQL lacks written again, heads signed.

What PostgreSQL holds of a dead process's rows is a prefix (`gateway.journal.wal`): up to its
last *done*, or up to its last intent's end if that transaction committed. The rest goes to the
live process's spool and file (each row once, by entry id), and the dead files are deleted once
those copies are on disk. A head is signed only where PostgreSQL holds its hash at its position:
anything else was changed while its process was dead, and `verify` says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import Counter

from gateway.journal.chain import Content, Head
from gateway.journal.link import DatabaseLink
from gateway.journal.spool import Spool
from gateway.journal.wal import Orphan, WriteAhead

_LOG = structlog.get_logger(__name__)

REPLAYED_ROWS = Counter(
    "gateway_journal_replayed_rows", "Rows of dead processes' write-ahead files written to PostgreSQL again."
)


class Takeover:
    """Takes over the files of the dead processes that wrote to this journal.

    Args:
        link: The writer's connection, connected before each `run`.
        spool: The writer's spool; the rows written again join it.
        wal: This process's write-ahead file.
        sign: Signs heads in a transaction of their own (and witnesses them).
        retry_seconds: How long to wait for a dead process's backend that still runs.
    """

    def __init__(
        self,
        link: DatabaseLink,
        spool: Spool,
        wal: WriteAhead,
        sign: Callable[[list[Head]], Awaitable[None]],
        retry_seconds: float,
    ) -> None:
        self._link = link
        self._spool = spool
        self._wal = wal
        self._sign = sign
        self._retry_seconds = retry_seconds
        self._again_at: float | None = None
        """When to try again a file whose last transaction was still running."""

    def due(self) -> bool:
        """A file was left for later, and its turn has come."""
        return self._again_at is not None and time.monotonic() >= self._again_at

    async def run(self) -> None:
        """Take over every dead process's file that can be now; raises what the link raises."""
        self._again_at = None
        wal = self._wal
        found = await asyncio.to_thread(wal.orphans)
        orphans: list[Orphan] = []
        try:
            rows: dict[Any, Content] = {}
            heads: dict[Any, Head] = {}
            for orphan in found:
                intent = orphan.intent
                landed = intent is not None and await self._link.committed(
                    intent.backend, intent.first, started_by=orphan.intent_at
                )
                if landed is None:  # its backend still runs: taken over on a later turn
                    orphan.unlock()
                    self._again_at = time.monotonic() + self._retry_seconds
                    continue
                orphans.append(orphan)
                lacking, unsigned = orphan.settle(landed)
                for content in lacking:
                    rows.setdefault(content.entry_id, content)
                heads.update(unsigned)
            signed = [head for head in heads.values() if await self._holds(head)]
            if signed:
                await self._sign(signed)
            self._spool.replay(rows.values())
            if rows:
                await wal.drain()
        except BaseException:
            for orphan in found:
                orphan.unlock()
            raise
        if not orphans:
            return
        if wal.unwritable():
            # The copies are in memory only now; the dead files are deleted all the same, or a
            # later takeover would write the rows a second time.
            _LOG.error("journal_wal_replay_not_durable", rows=len(rows))
        for orphan in orphans:
            await asyncio.to_thread(orphan.release)
        REPLAYED_ROWS.inc(len(rows))
        _LOG.info("journal_wal_replayed", processes=len(orphans), rows=len(rows), heads_signed=len(signed))

    async def _holds(self, head: Head) -> bool:
        """Whether PostgreSQL holds ``head``'s hash at its position (else it is not signed, and logged)."""
        if head.seq == 0:
            return False  # a chain's start is signed with the chain
        found = await self._link.fetch_one(
            "SELECT row_hash FROM journal.calls WHERE chain_id = %s AND seq = %s", (head.chain_id, head.seq)
        )
        if found is None or bytes(found[0]) != head.hash:
            _LOG.error("journal_wal_head_mismatch", chain_id=str(head.chain_id), seq=head.seq)
            return False
        return True
