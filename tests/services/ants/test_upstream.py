"""The ants upstream backend against a fake SIV on loopback, behind mutual TLS."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from lxml import etree
from signxml.exceptions import InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from apiparticulier.common.v1 import identity_pb2
from contract.v3_json import render
from runtime.caller import Caller
from runtime.errors import ApiError
from services.ants.extrait import classe_environnementale
from services.ants.settings import AntsSettings
from services.ants.siv import SAML, SIV, SOAP12
from services.ants.upstream import UpstreamAntsBackend
from tests.fake_provider import Answer, FakeProvider, json_answer
from tests.services.ants.conftest import Pki, make_pki

PATH = "/siv/consulter"
CALLER = Caller(
    recipient="13002526500013", request_id="0c0ffee0-1111-4222-8333-944445555666", time_remaining=5.0
)
LEA = identity_pb2.IdentityPivot(
    nom_naissance="Morel",
    prenoms=["Léa Claire"],
    annee_date_naissance=1990,
    mois_date_naissance=5,
    jour_date_naissance=4,
    sexe_etat_civil="F",
)
NOW = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)


def settings_for(pki: Pki, url: str, **fields: Any) -> AntsSettings:
    """Upstream settings pointing at the fake SIV, with the PKI's client certificate."""
    values: dict[str, Any] = {
        "backend": "upstream",
        "upstream_base_url": url,
        "upstream_path": PATH,
        "upstream_timeout_seconds": 2.0,
        "upstream_ca_file": pki.ca_file,
        "upstream_client_cert_file": pki.client_cert_file,
        "upstream_client_key_file": pki.client_key_file,
        "upstream_idp_name": "api-particulier-idp",
        "upstream_code_partenaire": "131614",
        "upstream_code_miat": "QSIV",
        "upstream_code_concentrateur": "CONC42",
    }
    return AntsSettings(**{**values, **fields})


def personne(
    libelle: str, nom: str, prenom: str | None, born: str = "1990-05-04", *, physique: str = "oui"
) -> str:
    """One person of a file, as the SIV writes it."""
    prenom_element = f"<siv:prenom>{prenom}</siv:prenom>" if prenom else ""
    return f"""<siv:personne><siv:libelle_type_personne>{libelle}</siv:libelle_type_personne>
      <siv:identite_personne><siv:flag_pers_physique>{physique}</siv:flag_pers_physique>
        <siv:nom_naiss>{nom}</siv:nom_naiss>{prenom_element}<siv:sexe>F</siv:sexe>
        <siv:date_naissance>{born}</siv:date_naissance><siv:code_dep_naissance>75</siv:code_dep_naissance>
      </siv:identite_personne>
      <siv:adresse_personne><siv:num_voie>12</siv:num_voie><siv:type_voie>RUE</siv:type_voie>
        <siv:libelle_voie>DES LILAS</siv:libelle_voie><siv:code_postal>75020</siv:code_postal>
        <siv:libelle_commune>PARIS</siv:libelle_commune><siv:pays>FRANCE</siv:pays></siv:adresse_personne>
    </siv:personne>"""


def dossier(*personnes: str, plate: str = "SB-101-AA", classe: str = "70/220*2001/100AEURO6b") -> Answer:
    """The SIV's answer holding one file (in a SOAP 1.1 envelope, as the SIV answers)."""
    return Answer(
        200,
        f"""<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<siv:rep_consulter_dossier xmlns:siv="{SIV}">
  <siv:control><siv:code_traitement>0</siv:code_traitement></siv:control>
  <siv:reponse><siv:dossier>
    <siv:immatriculation><siv:num_immat>{plate}</siv:num_immat><siv:date_prem_immat>2019-03-15</siv:date_prem_immat>
      <siv:code_type_immat>N</siv:code_type_immat><siv:libelle_type_immat>Normale</siv:libelle_type_immat>
    </siv:immatriculation>
    <siv:vehicule><siv:caracteristiques_techniques>
      <siv:marque_vehicule>PEUGEOT</siv:marque_vehicule><siv:tvv>4H5FTF</siv:tvv>
      <siv:denomination_com>308</siv:denomination_com><siv:ptac>2145</siv:ptac>
      <siv:categorie_ce>M1</siv:categorie_ce><siv:genre_national>VP</siv:genre_national>
      <siv:cylindree>1598</siv:cylindree><siv:energie>ES</siv:energie><siv:co2>194</siv:co2>
      <siv:classe_environnement_ce>{classe}</siv:classe_environnement_ce>
    </siv:caracteristiques_techniques></siv:vehicule>
    <siv:personne><siv:nb_cotitulaires>1</siv:nb_cotitulaires>
      <siv:liste_personnes>{"".join(personnes)}</siv:liste_personnes></siv:personne>
  </siv:dossier></siv:reponse>
</siv:rep_consulter_dossier></soapenv:Body></soapenv:Envelope>""".encode(),
    )


def refused(code: str, message: str) -> Answer:
    """The SIV's refusal of a request."""
    return Answer(
        200,
        f"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<siv:rep_consulter_dossier xmlns:siv="{SIV}"><siv:control><siv:code_traitement>1</siv:code_traitement>
<siv:code_erreur>{code}</siv:code_erreur><siv:description_erreur><siv:item_erreur>
<siv:message_erreur>{message}</siv:message_erreur></siv:item_erreur></siv:description_erreur></siv:control>
</siv:rep_consulter_dossier></soapenv:Body></soapenv:Envelope>""".encode(),
    )


def verified(assertion: Any, pki: Pki) -> Any:
    """The assertion as its signature covers it, once verified against the client certificate."""
    result: Any = XMLVerifier().verify(
        assertion,
        x509_cert=pki.client_certificate,
        id_attribute="ID",
        expect_config=SignatureConfiguration(require_x509=True),
    )
    return result.signed_xml


@pytest.fixture
def siv(pki: Pki) -> Any:
    """The fake SIV, serving HTTPS and demanding a client certificate of the PKI's CA."""
    with FakeProvider(tls=pki.server_context) as provider:
        yield provider


@pytest.fixture
async def backend(siv: FakeProvider, pki: Pki) -> AsyncIterator[UpstreamAntsBackend]:
    """The upstream backend on the fake SIV, its clock fixed."""
    backend = UpstreamAntsBackend.from_settings(settings_for(pki, siv.url), clock=lambda: NOW)
    yield backend
    await backend.close()


async def failure(backend: UpstreamAntsBackend, identity: identity_pb2.IdentityPivot = LEA) -> ApiError:
    """The error an extract raises."""
    with pytest.raises(ApiError) as raised:
        await backend.extrait("SB-101-AA", identity, CALLER)
    return raised.value


async def test_request_is_a_signed_soap_call_over_mutual_tls(
    siv: FakeProvider, backend: UpstreamAntsBackend, pki: Pki
) -> None:
    """SOAP 1.2 with a SAML assertion the client certificate's key signed, vouching for 600 s."""
    siv.script(PATH, dossier(personne("titulaire", "MOREL", "LEA")))
    await backend.extrait("SB-101-AA", LEA, CALLER)
    (request,) = siv.to(PATH)
    assert request.headers["content-type"] == "application/soap+xml; charset=utf-8"
    assert request.headers["soapaction"] == ""
    envelope: Any = etree.fromstring(request.body)
    assert envelope.tag == f"{{{SOAP12}}}Envelope"
    ns = {"siv": SIV, "saml": SAML}
    control = {child.tag.split("}")[1]: child.text for child in envelope.find(".//siv:control", ns)}
    assert control["code_partenaire"] == "131614" and control["code_miat"] == "QSIV"
    assert control["numero_session"] == f"req_{CALLER.request_id}"
    assert control["type_operation"] == "Consultation Dossier"
    assert envelope.findtext(".//siv:num_immat", namespaces=ns) == "SB-101-AA"
    assertion = envelope.find(".//saml:Assertion", ns)
    signed = verified(assertion, pki)
    assert signed.findtext("saml:Issuer", namespaces=ns) == "api-particulier-idp"
    assert signed.findtext(".//saml:AttributeValue", namespaces=ns) == "CONC42"
    conditions = signed.find("saml:Conditions", ns)
    assert (conditions.get("NotBefore"), conditions.get("NotOnOrAfter")) == (
        "2026-11-30T14:00:00Z",
        "2026-11-30T14:10:00Z",
    )


async def test_a_tampered_assertion_fails_verification(
    siv: FakeProvider, backend: UpstreamAntsBackend, pki: Pki
) -> None:
    """The signature covers the assertion: changing the partner code breaks it."""
    siv.script(PATH, dossier(personne("titulaire", "MOREL", "LEA")))
    await backend.extrait("SB-101-AA", LEA, CALLER)
    (request,) = siv.to(PATH)
    assertion: Any = etree.fromstring(request.body).find(f".//{{{SAML}}}Assertion")
    assertion.find(f".//{{{SAML}}}AttributeValue").text = "OTHER"
    with pytest.raises(InvalidSignature):
        verified(assertion, pki)


async def test_the_extract_of_the_person_who_matches(siv: FakeProvider, backend: UpstreamAntsBackend) -> None:
    """The first natural person whose names match; a company and a namesake of other first name are not."""
    siv.script(
        PATH,
        dossier(
            personne("titulaire", "SOCIETE MOREL", None, physique="non"),
            personne("titulaire", "MOREL", "JEAN", "1960-01-01"),
            personne("cotitulaire", "Morel", "Léa", "1990-05-14"),
        ),
    )
    answer = await backend.extrait("SB-101-AA", LEA, CALLER)
    data = render(answer.data)
    assert data["statut_rattachement"] == "cotitulaire"
    assert data["identite_particulier"] == {
        "nom": "Morel",
        "prenom": "Léa",
        "sexe_etat_civil": "F",
        "annee_date_naissance": 1990,
        "mois_date_naissance": 5,
        "jour_date_naissance": 14,
        "code_departement_naissance": "75",
    }
    assert render(answer.meta)["identity_matching"] == {
        "family_name": 1.0,
        "given_name": 1.0,
        "birth_date": 0.0,
        "overall_match": True,
    }
    assert data["adresse_particulier"]["code_postal_ville"] == "75020"
    assert data["adresse_particulier"]["lieu_dit"] is None
    vehicle = data["caracteristiques_techniques_vehicule"]
    assert vehicle["masse_charge_maximale"] == 2145
    assert isinstance(vehicle["masse_charge_maximale"], int)
    assert vehicle["type_carburant"] == {"code": "ES", "label": "Essence"}
    assert vehicle["classe_environnementale"] == {
        "code": "Euro 6",
        "label": "Norme européenne d'émission Euro 6",
    }
    assert data["donnees_immatriculation_vehicule"]["statut_location"] == {"code": "N", "label": "Normale"}


async def test_an_fni_file_holds_the_whole_name_in_nom_naiss(
    siv: FakeProvider, backend: UpstreamAntsBackend
) -> None:
    """ "MOREL LEA" without prenom: MOREL is the birth name, LEA the first name."""
    siv.script(PATH, dossier(personne("titulaire", "MOREL LEA", None), plate="1234 SB 75"))
    answer = await backend.extrait("1234 SB 75", LEA, CALLER)
    assert (answer.data.identite_particulier.nom, answer.data.identite_particulier.prenom) == ("MOREL", "LEA")


@pytest.mark.parametrize(
    "personnes",
    [
        (personne("titulaire", "DURAND", "PAUL"),),
        (personne("titulaire", "MOREL", "CLARA"),),
        (personne("titulaire", "MOREL LEA SARL", None, physique="non"),),
    ],
    ids=["someone-else", "another-first-name", "a-company"],
)
async def test_no_person_of_the_file_is_the_user(
    siv: FakeProvider, backend: UpstreamAntsBackend, personnes: tuple[str, ...]
) -> None:
    """The file exists, but nobody on it is the user: 42005, "Identité non trouvée"."""
    siv.script(PATH, dossier(*personnes))
    error = await failure(backend)
    assert (error.status, error.code, error.title) == (
        grpc.StatusCode.NOT_FOUND,
        "42005",
        "Identité non trouvée",
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (refused("20", "Aucune réponse trouvée pour les critères en entrée."), "42003"),
        (refused("31", "Aucune réponse trouvée pour les critères en entrée."), "42003"),
        (refused("12", "Erreur technique"), "42999"),
        (Answer(200, b"<html>maintenance</html>"), "42999"),
        (Answer(200, b"not xml"), "42999"),
        (Answer(500, b"<soapenv:Fault/>"), "42999"),
        (json_answer({}, status=503), "42001"),
        (json_answer({}, status=504), "42002"),
    ],
    ids=["not-found", "not-found-message", "other-refusal", "not-the-siv", "not-xml", "500", "503", "504"],
)
async def test_siv_refusals_and_failures(
    siv: FakeProvider, backend: UpstreamAntsBackend, answer: Answer, code: str
) -> None:
    """Not found is 42003; every other refusal or failure is one of the ANTS's codes."""
    siv.script(PATH, answer)
    assert (await failure(backend)).code == code


async def test_a_client_certificate_the_siv_does_not_trust_is_refused(
    siv: FakeProvider, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The handshake fails before any request: 42001, and the SIV received nothing."""
    stranger = make_pki(tmp_path_factory.mktemp("stranger"))
    settings = settings_for(
        pki,
        siv.url,
        upstream_client_cert_file=stranger.client_cert_file,
        upstream_client_key_file=stranger.client_key_file,
    )
    backend = UpstreamAntsBackend.from_settings(settings)
    try:
        assert (await failure(backend)).code == "42001"
    finally:
        await backend.close()
    assert siv.to(PATH) == []


@pytest.mark.parametrize(
    ("raw", "code", "label"),
    [
        ("70/220*2003/76EURO4", "Euro 4", "Norme européenne d'émission Euro 4"),
        ("715/2007*692/2008EURO5A", "Euro 5", "Norme européenne d'émission Euro 5"),
        ("595/2009*2011/582EUROVI", "Euro VI", "Norme européenne d'émission Euro VI"),
        ("2007/46", "2007/46", None),
    ],
)
def test_the_euro_level_is_read_off_the_raw_class(raw: str, code: str, label: str | None) -> None:
    """5a/5b are Euro 5, 6b/6c/6d Euro 6; a text without a level is passed through, without label."""
    assert render(classe_environnementale(raw)) == {"code": code, "label": label}


def test_missing_partner_codes_fail_at_start(pki: Pki) -> None:
    """BACKEND=upstream without the ANTS's codes names the variables."""
    with pytest.raises(ValueError, match="UPSTREAM_CODE_MIAT"):
        settings_for(pki, "https://siv", upstream_code_miat=None)
