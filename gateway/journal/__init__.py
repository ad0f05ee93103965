"""The access journal: who asked what and when, never about whom in clear.

Every call of the gateway leaves one record: time, request id, token id and habilitation,
recipient, method, API, provider, outcome and code, latency, and the HMAC of the person
it was about (`gateway.journal.subject`). It is written as a structlog event and, with
``JOURNAL_DATABASE_URL``, as a row of a hash-chained, signed, time-partitioned table in
PostgreSQL (`gateway.journal.writer`, `gateway.journal.chain`, `gateway.journal.signing`,
`gateway.journal.schema`), which ``python -m gateway.admin journal verify`` checks
(`gateway.journal.verify`) and from which a citizen's access history and an auditor's
search are read (`gateway.journal.queries`).
"""

from gateway.journal.recorder import EVENT, Call, Journal, Record
from gateway.journal.subject import canonical_identity, canonical_subject, identity_forms, normalise_text

__all__ = [
    "EVENT",
    "Call",
    "Journal",
    "Record",
    "canonical_identity",
    "canonical_subject",
    "identity_forms",
    "normalise_text",
]
