"""The journal: keyed digests of normalised subjects, and events without personal data."""

from __future__ import annotations

import pytest
import structlog

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.france_travail.v1 import france_travail_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from apiparticulier.sdh.v1 import sdh_pb2
from gateway.journal import Journal, canonical_subject, normalise_text

KEY = b"a secret key of the operator, 32b"


def pivot(**overrides: object) -> identity_pb2.IdentityPivot:
    values: dict[str, object] = {
        "nom_naissance": "Dupont-Lefèvre",
        "prenoms": ["Éloïse", "Marie"],
        "annee_date_naissance": 1987,
        "mois_date_naissance": 3,
        "jour_date_naissance": 9,
        "sexe_etat_civil": "F",
        "code_cog_insee_pays_naissance": "99100",
        "code_cog_insee_commune_naissance": "75056",
    }
    values.update(overrides)
    return identity_pb2.IdentityPivot(**values)  # type: ignore[arg-type]


def by_identity(identity: identity_pb2.IdentityPivot) -> cnaf_pb2.GetQuotientFamilialByIdentityRequest:
    return cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=identity)


def test_normalisation_strips_accents_case_and_spacing() -> None:
    assert normalise_text("  d'Arc-Éloïse  ") == "D ARC ELOISE"
    assert normalise_text("Lætitia Œdipe") == "LAETITIA OEDIPE"
    assert normalise_text("JEAN\t  PIERRE") == "JEAN PIERRE"


def test_the_same_person_written_differently_has_one_digest() -> None:
    journal = Journal(KEY)
    reference = journal.subject_digest(by_identity(pivot()))
    assert len(reference) == 64
    variants = [
        pivot(nom_naissance="DUPONT LEFEVRE"),
        pivot(nom_naissance="  dupont   lefevre "),
        pivot(prenoms=["ELOISE", "MARIE"]),
        pivot(prenoms=["eloïse marie"]),
        pivot(sexe_etat_civil="f"),
    ]
    for variant in variants:
        assert journal.subject_digest(by_identity(variant)) == reference
    # The same identity through another API, or resolved from FranceConnect.
    c2s = c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=pivot())
    assert journal.subject_digest(c2s) == reference
    france_connect = cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
        france_connect=identity_pb2.FranceConnectSubject(access_token="abc", identite_pivot=pivot())
    )
    assert journal.subject_digest(france_connect) == reference
    lookup = gateway_pb2.LookupRequest(identite=pivot(prenoms=["Eloise Marie"]))
    assert journal.subject_digest(lookup) == reference


def test_different_people_have_different_digests() -> None:
    journal = Journal(KEY)
    reference = journal.subject_digest(by_identity(pivot()))
    others = [
        pivot(nom_naissance="Dupont"),
        pivot(prenoms=["Marie", "Éloïse"]),  # the order of first names is civil status
        pivot(jour_date_naissance=10),
        pivot(sexe_etat_civil="M"),
        pivot(code_cog_insee_commune_naissance="69123"),
    ]
    assert len({journal.subject_digest(by_identity(other)) for other in others} | {reference}) == 6


def test_a_different_key_gives_a_different_digest() -> None:
    request = by_identity(pivot())
    assert Journal(KEY).subject_digest(request) != Journal(b"another key").subject_digest(request)


def test_ine_and_identifiants_are_subjects() -> None:
    journal = Journal(KEY)
    mesr = journal.subject_digest(mesr_pb2.GetStatutEtudiantByIneRequest(ine="1234567890g"))
    cnous = journal.subject_digest(cnous_pb2.GetEtudiantBoursierByIneRequest(ine=" 1234567890G "))
    assert mesr == cnous != ""
    statut = france_travail_pb2.GetStatutByIdentifiantRequest(identifiant="jdupont")
    indemnites = france_travail_pb2.GetIndemnitesByIdentifiantRequest(identifiant="jdupont ")
    assert journal.subject_digest(statut) == journal.subject_digest(indemnites) != ""
    assert canonical_subject(statut) == "france_travail|jdupont"
    sportif = sdh_pb2.GetStatutSportifByIdentifiantRequest(identifiant=" 700001")
    assert canonical_subject(sportif) == "sportif|700001"
    assert journal.subject_digest(sportif) != journal.subject_digest(
        france_travail_pb2.GetStatutByIdentifiantRequest(identifiant="700001")
    )


def test_requests_without_a_subject_have_an_empty_digest() -> None:
    journal = Journal(KEY)
    assert journal.subject_digest(gateway_pb2.IntrospectTokenRequest()) == ""
    assert journal.subject_digest(mesr_pb2.GetStatutEtudiantByIneRequest()) == ""
    unresolved = cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
        france_connect=identity_pb2.FranceConnectSubject(access_token="abc")
    )
    assert journal.subject_digest(unresolved) == ""


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="JOURNAL_HMAC_KEY"):
        Journal(b"")


def test_the_event_holds_exactly_its_fields_and_no_value_of_the_request() -> None:
    journal = Journal(KEY)
    identity = pivot()
    request = by_identity(identity)
    digest = journal.subject_digest(request)
    with structlog.testing.capture_logs() as events:
        journal.record(
            request_id="req-1",
            token_id="0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
            recipient="13002526500013",
            method="/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
            provider="cnaf",
            status="OK",
            code="",
            latency_ms=12.34567,
            subject_digest=digest,
        )
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
