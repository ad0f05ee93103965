"""The journal as the call path sees it: one record per call, kept without delaying the answer.

`Journal.record` builds a call's `Record` (no hashing, no I/O) and hands it to the
writer's spool when there is a PostgreSQL journal (`gateway.journal.writer`); `Journal.log`
writes the same call as one structlog event, ``api_call``, once the answer has left.
When the journal cannot keep the row (`JournalWriter.refusal`), the record carries the
refusal the caller gets instead of the answer (00503), and says so in its own status.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import structlog
from google.protobuf.message import Message

from gateway.journal.chain import Content
from gateway.journal.subject import canonical_subject, keyed_digest
from gateway.journal.writer import REFUSED_CALLS, JournalWriter, Refusal
from runtime.errors import ApiError, store_unavailable

EVENT = "api_call"
"""Name of the journal's structlog event."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Record:
    """One call as the journal keeps it; the subject's digest is computed once, when first needed."""

    __slots__ = (
        "_content",
        "_digest",
        "_digest_of",
        "api",
        "code",
        "habilitation",
        "latency_ms",
        "method",
        "occurred_at",
        "provider",
        "recipient",
        "refusal",
        "request_id",
        "status",
        "subject",
        "token_id",
    )

    def __init__(
        self,
        digest_of: Callable[[Message], str],
        *,
        occurred_at: dt.datetime,
        request_id: str,
        token_id: str,
        habilitation: str,
        recipient: str,
        method: str,
        api: str,
        provider: str,
        status: str,
        code: str,
        latency_ms: float,
        subject: Message | None,
    ) -> None:
        self._digest_of = digest_of
        self._digest: str | None = None
        self._content: Content | None = None
        self.occurred_at = occurred_at
        self.request_id = request_id
        self.token_id = token_id
        self.habilitation = habilitation
        self.recipient = recipient
        self.method = method
        self.api = api
        self.provider = provider
        self.status = status
        self.code = code
        self.latency_ms = latency_ms
        self.subject = subject
        self.refusal: ApiError | None = None
        """The error the caller gets instead of the answer when the journal could not keep the row."""

    @property
    def subject_digest(self) -> str:
        """HMAC of the normalised subject ("" when the call named nobody)."""
        if self._digest is None:
            self._digest = "" if self.subject is None else self._digest_of(self.subject)
        return self._digest

    def refuse(self) -> None:
        """Turn the call into the refusal the journal gives (00503), in the record too."""
        self.refusal = store_unavailable()
        self.status, self.code = self.refusal.status.name, self.refusal.code

    def content(self) -> Content:
        """The row's content, made once (its entry id with it)."""
        if self._content is None:
            self._content = Content(
                entry_id=uuid.uuid4(),
                occurred_at=self.occurred_at,
                request_id=self.request_id,
                token_id=self.token_id,
                habilitation=self.habilitation,
                recipient=self.recipient,
                method=self.method,
                api=self.api,
                provider=self.provider,
                status=self.status,
                code=self.code,
                latency_us=round(self.latency_ms * 1000),
                subject_digest=self.subject_digest,
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

    def record(
        self,
        *,
        request_id: str,
        token_id: str,
        habilitation: str,
        recipient: str,
        method: str,
        api: str,
        provider: str,
        status: str,
        code: str,
        latency_ms: float,
        subject: Message | None,
    ) -> Record:
        """Record one call, before its answer leaves; no hashing, no I/O.

        Args:
            request_id: The call's x-request-id.
            token_id: The jti of the caller's token ("" when it had none).
            habilitation: The label of the token's habilitation ("" without a token).
            recipient: SIRET of the public body receiving the data.
            method: Full gRPC method name.
            api: The API label ("" for the gateway's own methods).
            provider: The provider service asked ("" for the gateway's own methods).
            status: gRPC status name, e.g. ``OK`` or ``NOT_FOUND``.
            code: API Particulier error code ("" on success).
            latency_ms: Time the gateway spent on the call.
            subject: The message naming the person asked about, if any.

        Returns:
            The record; its ``refusal`` is set when the caller must get that error instead of
            the answer (the row could not be kept, or the journal is known unwritable in
            fail_closed mode), counted in ``gateway_journal_refused_calls_total``.
        """
        record = Record(
            self.subject_digest,
            occurred_at=self._clock(),
            request_id=request_id,
            token_id=token_id,
            habilitation=habilitation,
            recipient=recipient,
            method=method,
            api=api,
            provider=provider,
            status=status,
            code=code,
            latency_ms=latency_ms,
            subject=subject,
        )
        if self.writer is None:
            return record
        reason = self.writer.refusal()
        if reason is not None:
            REFUSED_CALLS.labels(reason.value).inc()
            record.refuse()
        if reason is not Refusal.SPOOL_FULL:
            self.writer.put(record)
        return record

    def log(self, record: Record) -> None:
        """Write the record as one ``api_call`` event."""
        # A fresh proxy each time: a logger cached before logging was configured
        # (or captured in tests) would keep writing to the old processors.
        structlog.get_logger(__name__).info(
            EVENT,
            request_id=record.request_id,
            token_id=record.token_id,
            recipient=record.recipient,
            method=record.method,
            provider=record.provider,
            status=record.status,
            code=record.code,
            latency_ms=round(record.latency_ms, 3),
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
