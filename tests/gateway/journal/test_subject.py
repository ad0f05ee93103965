"""The subject of a call as the journal keeps it: keyed digests of normalised forms."""

from __future__ import annotations

import pytest

from apiparticulier.c2s.v1 import c2s_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.france_travail.v1 import france_travail_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from apiparticulier.sdh.v1 import sdh_pb2
from gateway.journal import Journal, canonical_identity, canonical_subject, identity_forms, normalise_text
from tests.people import lefebvre

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


def test_an_identity_has_the_forms_a_caller_may_name_it_by() -> None:
    """All first names or the first; the commune, its département or no birthplace; the rest as given."""
    forms = identity_forms(lefebvre())
    assert forms[0] == canonical_identity(lefebvre())
    assert set(forms) == {
        f"identite|LEFEBVRE|{names}|1982-12-27|F|99100|{commune}|{departement}"
        for names in ("ALEXIS GEROME", "ALEXIS")
        for commune, departement in (("08480", ""), ("", "08"), ("", ""))
    }
    overseas = identity_forms(
        pivot(prenoms=["Jean-Pierre", "Marie"], code_cog_insee_commune_naissance="97411")
    )
    assert "identite|DUPONT LEFEVRE|JEAN PIERRE|1987-03-09|F|99100||974" in overseas
    single = identity_forms(pivot(prenoms=["Marie"], code_cog_insee_commune_naissance=""))
    assert single == ["identite|DUPONT LEFEVRE|MARIE|1987-03-09|F|99100||"]


def test_a_call_with_fewer_details_is_one_of_the_forms_of_the_certified_identity() -> None:
    """A call naming the first first name and no commune digests to one of the certified identity's forms."""
    journal = Journal(KEY)
    certified = pivot(prenoms=["Jean", "Pierre"])
    call = by_identity(pivot(prenoms=["JEAN"], code_cog_insee_commune_naissance=""))
    assert journal.subject_digest(call) in journal.digests(identity_forms(certified))
    hyphenated = by_identity(pivot(prenoms=["JEAN-PIERRE"]))
    assert journal.subject_digest(hyphenated) == journal.digests(identity_forms(certified))[0]
    other = by_identity(pivot(prenoms=["Jean"], jour_date_naissance=10))
    assert journal.subject_digest(other) not in journal.digests(identity_forms(certified))
