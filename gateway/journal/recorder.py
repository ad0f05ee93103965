"""The journal as the call path sees it: one record per call, kept without delaying the answer.

`Journal.record` builds a call's `Record` (no hashing, no I/O) and hands it to the
writer's spool when there is a PostgreSQL journal (`gateway.journal.writer`); `Journal.log`
writes the same call as one structlog event, ``api_call``, once the answer has left.
When the journal cannot keep the row (`JournalWriter.refusal`), the record carries the
refusal the caller gets instead of the answer (00503), and says so in its own status. With a
write-ahead file, the call path awaits `Journal.durable` before the answer leaves: the row is
then on local disk (`gateway.journal.wal`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from google.protobuf.message import Message

from gateway.journal.chain import CallFacts, Content
from gateway.journal.spool import Refusal
from gateway.journal.subject import canonical_subject, keyed_digest
from gateway.journal.writer import REFUSED_CALLS, JournalWriter
from runtime.errors import ApiError, store_unavailable

EVENT = "api_call"
"""Name of the journal's structlog event."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Call(CallFacts):
    """What the call path knows of a call once its answer is ready: the `CallFacts`, and the rest."""

    latency_ms: float
    """Time the gateway spent on the call."""
    subject: Message | None
    """The message naming the person asked about, if any."""
    habilitation_id: str = ""
    """The registry's id of the habilitation the call counted against ("" unknown)."""
    editor_id: str = ""
    """The registry's id of the editor whose token called ("" none)."""
    delegation_id: str = ""
    """The registry's id of the delegation an editor token called under ("" none)."""


class Record:
    """One call as the journal keeps it; the subject's digest is computed once, when first needed.

    Args:
        call: The call.
        occurred_at: When its answer left (UTC).
        digest_of: The journal's subject digest.
    """

    __slots__ = (
        "_content",
        "_digest",
        "_digest_of",
        "call",
        "code",
        "durable",
        "occurred_at",
        "refusal",
        "status",
    )

    def __init__(self, call: Call, occurred_at: dt.datetime, digest_of: Callable[[Message], str]) -> None:
        self.call = call
        self.occurred_at = occurred_at
        self._digest_of = digest_of
        self._digest: str | None = None
        self._content: Content | None = None
        self.status, self.code = call.status, call.code
        """What the caller got: the call's outcome, or the journal's refusal."""
        self.refusal: ApiError | None = None
        """The error the caller gets instead of the answer when the journal could not keep the row."""
        self.durable: asyncio.Future[None] | None = None
        """Done once the row is on disk (the write-ahead file); None when there is none to wait for."""

    @property
    def subject_digest(self) -> str:
        """HMAC of the normalised subject ("" when the call named nobody)."""
        if self._digest is None:
            subject = self.call.subject
            self._digest = "" if subject is None else self._digest_of(subject)
        return self._digest

    def refuse(self) -> None:
        """Turn the call into the refusal the journal gives (00503), in the record too."""
        self.refusal = store_unavailable()
        self.status, self.code = self.refusal.status.name, self.refusal.code
        if self._content is not None:
            self._content = dataclasses.replace(self._content, status=self.status, code=self.code)

    def void(self) -> None:
        """The row could not be written to the write-ahead file: the call is refused (00503) instead."""
        if self.refusal is None:
            REFUSED_CALLS.labels(Refusal.WAL_UNWRITABLE.value).inc()
            self.refuse()

    def content(self) -> Content:
        """The row's content, made once (its entry id with it)."""
        if self._content is None:
            call = self.call
            self._content = Content(
                entry_id=uuid.uuid4(),
                occurred_at=self.occurred_at,
                request_id=call.request_id,
                token_id=call.token_id,
                habilitation=call.habilitation,
                recipient=call.recipient,
                method=call.method,
                api=call.api,
                provider=call.provider,
                status=self.status,
                code=self.code,
                latency_us=round(call.latency_ms * 1000),
                subject_digest=self.subject_digest,
                habilitation_id=call.habilitation_id or None,
                editor_id=call.editor_id or None,
                delegation_id=call.delegation_id or None,
            )
        return self._content


class Journal:
    """The access journal of one gateway process.

    Args:
        hmac_key: The secret key of the subject hash; the same on every replica,
            so an audit finds a person whatever replica served the call.
        writer: The PostgreSQL journal's writer; None keeps the journal to the log events.
        clock: Wall clock, UTC (tests).

    Raises:
        ValueError: the key is empty (a plain hash of an identity can be reversed by
            trying the population, which a secret key prevents).
    """

    def __init__(
        self,
        hmac_key: bytes,
        writer: JournalWriter | None = None,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if not hmac_key:
            raise ValueError("the journal needs a secret HMAC key (JOURNAL_HMAC_KEY)")
        self._key = hmac_key
        self.writer = writer
        self._clock = clock

    def subject_digest(self, request: Message) -> str:
        """HMAC-SHA256 (hex) of the normalised subject of the request; "" when it has none.

        Args:
            request: A provider request, or any message with a subject field.
        """
        subject = canonical_subject(request)
        return keyed_digest(self._key, subject) if subject else ""

    def digests(self, forms: list[str]) -> list[str]:
        """The HMAC of each normalised form, under this journal's key."""
        return [keyed_digest(self._key, form) for form in forms]

    def admit(self) -> None:
        """Refuse a call early, before any work, when its row could not be kept.

        Raises:
            ApiError: 00503, the spool is full or (fail_closed) PostgreSQL is unreachable.
        """
        if self.writer is not None and self.writer.refusal() is not None:
            raise store_unavailable()

    def record(self, call: Call) -> Record:
        """Record one call, before its answer leaves; no hashing, no I/O.

        Returns:
            The record; its ``refusal`` is set when the caller must get that error instead of
            the answer (the row could not be kept, or the journal is known unwritable in
            fail_closed mode), counted in ``gateway_journal_refused_calls_total``.
        """
        record = Record(call, self._clock(), self.subject_digest)
        if self.writer is None:
            return record
        reason = self.writer.refusal()
        if reason is not None:
            REFUSED_CALLS.labels(reason.value).inc()
            record.refuse()
        if (reason is None or reason.keeps_row) and self.writer.put(record):
            record.durable = self.writer.durable()
        return record

    async def durable(self, record: Record) -> None:
        """Wait until the record's row is on disk, when there is a write-ahead file (`gateway.journal.wal`).

        A row that could not be written turns its record into the journal's refusal (``refusal``).
        """
        if record.durable is not None:
            await record.durable

    def record_refused(self, call: Call) -> Record:
        """Record a call refused before it reached the call path (00504 while the server stops); no I/O.

        The row says what the caller got (``call``'s status and code), whatever the journal's
        state: the call was not answered, so there is nothing to refuse in its place. When the
        spool is full the row is not kept, and counted in
        ``gateway_journal_refused_calls_total{reason="spool_full"}``.
        """
        record = Record(call, self._clock(), self.subject_digest)
        if self.writer is not None:
            if self.writer.put(record):
                record.durable = self.writer.durable()
            else:
                REFUSED_CALLS.labels(Refusal.SPOOL_FULL.value).inc()
        return record

    def log(self, record: Record) -> None:
        """Write the record as one ``api_call`` event."""
        # A fresh proxy each time: a logger cached before logging was configured
        # (or captured in tests) would keep writing to the old processors.
        call = record.call
        structlog.get_logger(__name__).info(
            EVENT,
            request_id=call.request_id,
            token_id=call.token_id,
            habilitation_id=call.habilitation_id,
            recipient=call.recipient,
            method=call.method,
            provider=call.provider,
            status=record.status,
            code=record.code,
            latency_ms=round(call.latency_ms, 3),
            subject_digest=record.subject_digest,
        )

    async def start(self) -> None:
        """Start the writer, if any (migrations, then writing in the background)."""
        if self.writer is not None:
            await self.writer.start()

    async def close(self) -> None:
        """Write what is left and stop the writer, if any."""
        if self.writer is not None:
            await self.writer.close()
