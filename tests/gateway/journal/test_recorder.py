"""The journal's records: built before the answer leaves, logged after, without personal data."""

from __future__ import annotations

import structlog

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from gateway.journal import Journal

KEY = b"a secret key of the operator, 32b"


def pivot() -> identity_pb2.IdentityPivot:
    return identity_pb2.IdentityPivot(
        nom_naissance="Dupont-Lefèvre",
        prenoms=["Éloïse", "Marie"],
        annee_date_naissance=1987,
        mois_date_naissance=3,
        jour_date_naissance=9,
        sexe_etat_civil="F",
        code_cog_insee_pays_naissance="99100",
        code_cog_insee_commune_naissance="75056",
    )


def by_identity(identity: identity_pb2.IdentityPivot) -> cnaf_pb2.GetQuotientFamilialByIdentityRequest:
    return cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=identity)


def test_the_event_holds_exactly_its_fields_and_no_value_of_the_request() -> None:
    journal = Journal(KEY)
    identity = pivot()
    request = by_identity(identity)
    digest = journal.subject_digest(request)
    record = journal.record(
        request_id="req-1",
        token_id="0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
        habilitation="CCAS de Lyon",
        recipient="13002526500013",
        method="/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
        api="cnaf.quotient_familial",
        provider="cnaf",
        status="OK",
        code="",
        latency_ms=12.34567,
        subject=request,
    )
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
        "recipient": "13002526500013",
        "method": "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
        "provider": "cnaf",
        "status": "OK",
        "code": "",
        "latency_ms": 12.346,
        "subject_digest": digest,
    }
    rendered = repr(event).upper()
    for value in ("DUPONT", "LEFEVRE", "LEFÈVRE", "ELOISE", "ÉLOÏSE", "MARIE", "1987", "75056", "99100"):
        assert value not in rendered
