"""The journal's records: built before the answer leaves, logged after, without personal data."""

from __future__ import annotations

import dataclasses

import structlog

from gateway.journal import Journal
from tests.gateway.journal.conftest import quotient_call
from tests.gateway.journal.test_subject import by_identity, pivot

KEY = b"a secret key of the operator, 32b"


def test_the_event_holds_exactly_its_fields_and_no_value_of_the_request() -> None:
    journal = Journal(KEY)
    identity = pivot()
    request = by_identity(identity)
    digest = journal.subject_digest(request)
    record = journal.record(dataclasses.replace(quotient_call("req-1", request), habilitation_id="hab-1"))
    assert record.refusal is None
    with structlog.testing.capture_logs() as events:
        journal.log(record)
    assert len(events) == 1
    event = events[0]
    assert event.pop("log_level") == "info"
    assert event == {
        "event": "api_call",
        "request_id": "req-1",
        "token_id": "0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
        "habilitation_id": "hab-1",
        "recipient": "13002526500013",
        "method": "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
        "provider": "cnaf",
        "status": "OK",
        "code": "",
        "latency_ms": 1.5,
        "subject_digest": digest,
    }
    rendered = repr(event).upper()
    for value in ("DUPONT", "LEFEVRE", "LEFÈVRE", "ELOISE", "ÉLOÏSE", "MARIE", "1987", "75056", "99100"):
        assert value not in rendered
