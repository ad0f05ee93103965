"""The SIV's SOAP exchange: the signed ``req_consulter_dossier`` request and its answer.

A request is a SOAP 1.2 envelope whose WS-Security header carries a SAML 2.0
assertion (sender-vouches, valid 600 s, attribute ``CodePartenaire`` = the
concentrator code) signed enveloped with XML-DSig: RSA-SHA256, exclusive C14N,
SHA-256 digest, the signing certificate embedded. The body asks for one file by
registration number::

    <siv:req_consulter_dossier>
      <siv:control> code_partenaire, code_miat, type_operation "Consultation Dossier",
                    numero_session "req_<request id>", date_envoi </siv:control>
      <siv:requete> mode_appel "L", informations/num_immat </siv:requete>

The answer's ``rep_consulter_dossier`` holds a control block (``code_traitement``
0 done, 1 refused, with ``code_erreur`` and messages) and, when done, the
``dossier``: registration, technical characteristics, and the persons of the
file with their identity and address.

lxml builds and reads the XML (the parser resolves no entity and loads nothing
from the network); signxml signs. Nothing here is written as text.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree
from signxml.algorithms import SignatureConstructionMethod
from signxml.signer import XMLSigner

SIV = "http://siv.mi.fr/DefinitionsServices/2007-06"
"""The SIV's namespace."""
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
ASSERTION_SECONDS = 600
"""How long a signed assertion vouches for its request."""
NOT_FOUND_ERROR = "20"
"""The SIV's ``code_erreur`` of "Aucune réponse trouvée pour les critères en entrée"."""

_ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:nameid-format:unspecified"
_SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
_XMLDSIG_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:XMLDSig"
_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
_EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class _Maker:
    """Builds the elements of one namespace: ``maker.tag(*children, **attributes)``; a str child is text."""

    def __init__(self, prefix: str, namespace: str) -> None:
        self._nsmap = {prefix: namespace}
        self._namespace = namespace

    def __getattr__(self, tag: str) -> Callable[..., etree._Element]:
        def make(*children: etree._Element | str, **attributes: str) -> etree._Element:
            element = etree.Element(etree.QName(self._namespace, tag), attrib=attributes, nsmap=self._nsmap)
            for child in children:
                if isinstance(child, str):
                    element.text = child
                else:
                    element.append(child)
            return element

        return make


@dataclass(frozen=True, slots=True)
class Partner:
    """Who asks the SIV, as the ANTS registered API Particulier."""

    idp_name: str
    code_partenaire: str
    code_miat: str
    code_concentrateur: str


@dataclass(frozen=True, slots=True)
class Signer:
    """The key that signs the assertions and the certificate (chain) embedded beside the signature."""

    key: RSAPrivateKey
    certificates: tuple[x509.Certificate, ...]


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _assertion(partner: Partner, now: dt.datetime, assertion_id: str) -> etree._Element:
    saml = _Maker("saml", SAML)
    instant = _utc(now)
    # signxml fills this placeholder, which keeps the signature where SAML wants it: after Issuer.
    placeholder = etree.Element(etree.QName(DSIG, "Signature"), Id="placeholder", nsmap={"ds": DSIG})
    assertion: etree._Element = saml.Assertion(
        saml.Issuer(partner.idp_name, Format=_ENTITY),
        placeholder,
        saml.Subject(
            saml.NameID(partner.idp_name, Format=_UNSPECIFIED),
            saml.SubjectConfirmation(Method=_SENDER_VOUCHES),
        ),
        saml.Conditions(NotBefore=instant, NotOnOrAfter=_utc(now + dt.timedelta(seconds=ASSERTION_SECONDS))),
        saml.AuthnStatement(
            saml.AuthnContext(saml.AuthnContextClassRef(_XMLDSIG_CONTEXT)), AuthnInstant=instant
        ),
        saml.AttributeStatement(
            saml.Attribute(
                saml.AttributeValue(partner.code_concentrateur), Name="CodePartenaire", NameFormat=_BASIC
            )
        ),
        ID=assertion_id,
        IssueInstant=instant,
        Version="2.0",
    )
    return assertion


def signed_assertion(partner: Partner, signer: Signer, now: dt.datetime) -> etree._Element:
    """A SAML assertion vouching for one request, signed enveloped (XML-DSig, RSA-SHA256, exclusive C14N)."""
    assertion_id = f"_{uuid.uuid4().hex}"
    xml_signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=_EXCLUSIVE_C14N,
    )
    signed: etree._Element = xml_signer.sign(
        _assertion(partner, now, assertion_id),
        key=signer.key,
        cert=list(signer.certificates),
        reference_uri=assertion_id,
        id_attribute="ID",
    )
    return signed


def consulter_dossier(
    partner: Partner, signer: Signer, immatriculation: str, session: str, now: dt.datetime
) -> bytes:
    """The SOAP 1.2 request for the file of one registration number, signed, as UTF-8 bytes.

    Args:
        partner: Who asks.
        signer: What signs the assertion.
        immatriculation: The upper-cased registration number.
        session: The request's session number, ``req_<request id>``.
        now: When the request leaves.
    """
    soap = _Maker("env", SOAP12)
    wsse = _Maker("wsse", WSSE)
    siv = _Maker("siv", SIV)
    envelope = soap.Envelope(
        soap.Header(wsse.Security(signed_assertion(partner, signer, now), mustUnderstand="1")),
        soap.Body(
            siv.req_consulter_dossier(
                siv.control(
                    siv.code_partenaire(partner.code_partenaire),
                    siv.code_miat(partner.code_miat),
                    siv.type_operation("Consultation Dossier"),
                    siv.numero_session(session),
                    siv.date_envoi(now.astimezone().isoformat(timespec="seconds")),
                ),
                siv.requete(siv.mode_appel("L"), siv.informations(siv.num_immat(immatriculation))),
            )
        ),
    )
    body: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return body


@dataclass(frozen=True, slots=True)
class Personne:
    """A person of a file, as the SIV holds them."""

    libelle_type_personne: str | None
    """How they stand to the vehicle: titulaire, cotitulaire, locataire…"""
    physique: bool
    """A natural person (``flag_pers_physique`` oui), not a company."""
    identite: Mapping[str, str | None]
    """``identite_personne``'s fields by tag: nom_naiss, prenom, sexe, date_naissance, code_dep_naissance…"""
    adresse: Mapping[str, str | None]
    """``adresse_personne``'s fields by tag: num_voie, type_voie, libelle_voie, code_postal…"""


@dataclass(frozen=True, slots=True)
class Dossier:
    """A registration file."""

    immatriculation: Mapping[str, str | None]
    """``immatriculation``'s fields by tag: num_immat, date_prem_immat, code_type_immat…"""
    caracteristiques: Mapping[str, str | None]
    """``vehicule/caracteristiques_techniques``'s fields by tag: marque_vehicule, tvv, ptac, energie…"""
    personnes: tuple[Personne, ...]


@dataclass(frozen=True, slots=True)
class Reponse:
    """The SIV's answer: its control block, and the file when the request was served."""

    code_traitement: str | None
    code_erreur: str | None
    messages: tuple[str, ...]
    dossier: Dossier | None


def _fields(element: etree._Element | None) -> dict[str, str | None]:
    if element is None:
        return {}
    return {
        etree.QName(child).localname: (child.text or "").strip() or None
        for child in element
        if isinstance(child.tag, str) and len(child) == 0
    }


def _find(element: etree._Element, path: str) -> etree._Element | None:
    found: etree._Element | None = element.find(path, namespaces={"siv": SIV})
    return found


def read_answer(body: bytes) -> Reponse:
    """The SIV's answer, whatever the SOAP version of its envelope.

    Raises:
        ValueError: the body is not XML or holds no ``rep_consulter_dossier``.
    """
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError:
        raise ValueError("the SIV's answer is not XML") from None
    answer = _find(root, ".//siv:rep_consulter_dossier")
    if answer is None:
        raise ValueError("the SIV's answer holds no rep_consulter_dossier")
    control = _fields(_find(answer, "siv:control"))
    messages = tuple(
        (item.text or "").strip()
        for item in answer.iterfind(".//siv:message_erreur", namespaces={"siv": SIV})
    )
    file = _find(answer, "siv:reponse/siv:dossier")
    dossier = None
    if file is not None:
        personnes = tuple(
            Personne(
                libelle_type_personne=_fields(personne).get("libelle_type_personne"),
                physique=(
                    _fields(_find(personne, "siv:identite_personne")).get("flag_pers_physique") or ""
                ).lower()
                == "oui",
                identite=_fields(_find(personne, "siv:identite_personne")),
                adresse=_fields(_find(personne, "siv:adresse_personne")),
            )
            for personne in file.iterfind(
                "siv:personne/siv:liste_personnes/siv:personne", namespaces={"siv": SIV}
            )
        )
        dossier = Dossier(
            immatriculation=_fields(_find(file, "siv:immatriculation")),
            caracteristiques=_fields(_find(file, "siv:vehicule/siv:caracteristiques_techniques")),
            personnes=personnes,
        )
    return Reponse(control.get("code_traitement"), control.get("code_erreur"), messages, dossier)
