"""The ants upstream backend: the SIV's ``consulter dossier`` over SOAP 1.2 and mutual TLS.

Request: ``POST <UPSTREAM_BASE_URL>/<UPSTREAM_PATH>`` with
``Content-Type: application/soap+xml; charset=utf-8``, an empty ``SOAPAction``, the
request id in ``X-Correlation-ID``, the service's client certificate presented in
the TLS handshake, and the signed request of `services.ants.siv`, its session
number ``req_<request id>``.

The answer decides:

- HTTP 200 whose control block says done (``code_traitement`` 0) with a file: the
  first natural person of the file who is the user (`services.ants.matching`) gets
  the extract; none: 42005;
- refused with ``code_erreur`` 20 or the message "Aucune réponse trouvée": 42003;
- any other refusal, another status (500 included), a body that is not the SIV's
  answer: 42999, save the transport statuses (429, 502, 503, 504).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.providers import ANTS
from runtime.upstream import UpstreamClient
from services.ants.backend import Extrait, identity_not_found, registration_not_found
from services.ants.extrait import extrait
from services.ants.matching import matching_person
from services.ants.settings import AntsSettings
from services.ants.siv import NOT_FOUND_ERROR, Partner, Signer, consulter_dossier, read_answer
from services.common.caller_headers import CORRELATION_HEADER

_NOT_FOUND_MESSAGE = "Aucune réponse trouvée"
_DONE = "0"


def load_signer(certificate_file: Path, key_file: Path) -> Signer:
    """The signing key and certificate chain of PEM files.

    Raises:
        TypeError: the key is not an RSA key.
        ValueError: the key is encrypted or unreadable, or the file holds no certificate.
    """
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise TypeError("UPSTREAM_CLIENT_KEY_FILE must hold an RSA key: the SIV wants RSA-SHA256 signatures")
    certificates = tuple(x509.load_pem_x509_certificates(certificate_file.read_bytes()))
    return Signer(key, certificates)


class UpstreamAntsBackend:
    """Asks the SIV."""

    def __init__(
        self,
        http: UpstreamClient,
        endpoint: str,
        partner: Partner,
        signer: Signer,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        """Ask through ``http`` (which presents the client certificate) at ``endpoint``."""
        self._http = http
        self._endpoint = endpoint
        self._partner = partner
        self._signer = signer
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: AntsSettings, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> UpstreamAntsBackend:
        """The backend the settings describe (they were checked complete at start); ``clock`` dates requests.

        Raises:
            TypeError: the key is not an RSA key.
            ValueError: the key or certificate files cannot be used.
        """
        certificate, key = settings.upstream_client_cert_file, settings.upstream_client_key_file
        if certificate is None or key is None:
            raise ValueError("BACKEND=upstream needs UPSTREAM_CLIENT_CERT_FILE and UPSTREAM_CLIENT_KEY_FILE")
        partner = Partner(
            idp_name=settings.upstream_idp_name or "",
            code_partenaire=settings.upstream_code_partenaire or "",
            code_miat=settings.upstream_code_miat or "",
            code_concentrateur=settings.upstream_code_concentrateur or "",
        )
        base = (settings.upstream_base_url or "").rstrip("/")
        endpoint = f"{base}/{settings.upstream_path.lstrip('/')}" if settings.upstream_path else base
        http = settings.upstream_client(ANTS, client_certificate=(certificate, key))
        return cls(http, endpoint, partner, load_signer(certificate, key), clock)

    async def extrait(
        self, immatriculation: str, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> Extrait:
        """The extract of the file under ``immatriculation``, for the person of it who is the user."""
        request = consulter_dossier(
            self._partner, self._signer, immatriculation, f"req_{caller.request_id}", self._clock()
        )
        response = await self._http.send(
            "POST",
            self._endpoint,
            caller,
            content=request,
            headers={
                "Content-Type": "application/soap+xml; charset=utf-8",
                "SOAPAction": "",
                CORRELATION_HEADER: caller.request_id,
            },
        )
        if response.status_code != httpx.codes.OK:
            raise self._http.error_for_status(response)
        try:
            answer = read_answer(response.content)
        except ValueError:
            raise self._http.unknown_answer(response, "not_siv_answer") from None
        if answer.code_traitement != _DONE:
            if answer.code_erreur == NOT_FOUND_ERROR or any(_NOT_FOUND_MESSAGE in m for m in answer.messages):
                raise registration_not_found()
            raise self._http.unknown_answer(response, "siv_refusal")
        if answer.dossier is None:
            raise self._http.unknown_answer(response, "no_dossier")
        match = matching_person(identity, answer.dossier.personnes)
        if match is None:
            raise identity_not_found()
        return extrait(answer.dossier, match)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()
