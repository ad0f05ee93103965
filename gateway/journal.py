"""The access journal: who asked what and when, never about whom in clear.

Each call leaves one structlog event, ``api_call``, with the request id, the token's
jti, the recipient SIRET, the method, the provider, the outcome, the latency and a
keyed hash of the person looked up. The hash is an HMAC-SHA256, under a secret key
held by the operator (``JOURNAL_HMAC_KEY``), of the subject in a normalised form: an
auditor who knows the key and a person's identity can tell whether that person was
looked up, while the journal alone reveals nobody.

Normalised forms (one kind prefix each, so an INE never collides with an identity):

- ``identite|<NOM>|<PRENOMS>|<YYYY>-<MM>-<DD>|<SEXE>|<pays>|<commune>|<département>``:
  names in upper case without accents, hyphens and apostrophes read as spaces,
  spaces collapsed; first names joined by one space, so ``["Jean", "Pierre"]`` and
  ``["Jean Pierre"]`` agree; unknown date parts left empty. The birthplace is kept
  as its COG codes only. The usage name is left out: it is optional and changes.
- ``ine|<INE>``: upper case, spaces removed.
- ``france_travail|<identifiant>``: spaces around removed.

A FranceConnect subject counts through the identity the gateway resolved for it;
before resolution (only the caller's access token), the request has no subject.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata

import structlog
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from apiparticulier.common.v1 import identity_pb2, options_pb2

# Whitespace, hyphens and dashes, apostrophes (straight, typographic, modifier letter).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015'\u2019\u02bc`\u00b4]+")

EVENT = "api_call"
"""Name of the journal's structlog event."""

# Bound once configured, as every logger of the mesh (`runtime.logs`): binding anew for each
# event cost a third of the journal's time per call.
_LOG = structlog.get_logger(__name__)


def normalise_text(value: str) -> str:
    """Upper case, accents stripped, hyphens and apostrophes as spaces, spaces collapsed.

    Args:
        value: A name as a caller wrote it.

    Returns:
        Its canonical form, e.g. ``"  d'Arc-Éloïse "`` gives ``"D ARC ELOISE"``.
    """
    if value.isascii():  # most names: no accent to strip, no letter to spell out
        return _SEPARATORS.sub(" ", value).strip().upper()
    decomposed = unicodedata.normalize("NFKD", value)
    without_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    # Letters that do not decompose into a base letter plus an accent.
    without_accents = without_accents.replace("Œ", "OE").replace("œ", "oe")
    without_accents = without_accents.replace("Æ", "AE").replace("æ", "ae").replace("ß", "ss")
    return _SEPARATORS.sub(" ", without_accents).strip().upper()


def _date_part(pivot: identity_pb2.IdentityPivot) -> str:
    # The contract ignores the month without a year and the day without a month.
    year = f"{pivot.annee_date_naissance:04d}" if pivot.HasField("annee_date_naissance") else ""
    month = f"{pivot.mois_date_naissance:02d}" if year and pivot.HasField("mois_date_naissance") else ""
    day = f"{pivot.jour_date_naissance:02d}" if month and pivot.HasField("jour_date_naissance") else ""
    return f"{year}-{month}-{day}"


def canonical_identity(pivot: identity_pb2.IdentityPivot) -> str:
    """The normalised form of an identity pivot (see the module's docstring)."""
    first_names = normalise_text(" ".join(pivot.prenoms))
    return "|".join(
        (
            "identite",
            normalise_text(pivot.nom_naissance),
            first_names,
            _date_part(pivot),
            normalise_text(pivot.sexe_etat_civil),
            pivot.code_cog_insee_pays_naissance.strip().upper(),
            pivot.code_cog_insee_commune_naissance.strip().upper(),
            pivot.code_cog_insee_departement_naissance.strip().upper(),
        )
    )


@functools.cache
def _subject_fields(message: Descriptor) -> tuple[tuple[str, int], ...]:
    """The fields of a message the contract marks as its subject, with their kinds, in order."""
    marked = ((field.name, field.GetOptions().Extensions[options_pb2.subject]) for field in message.fields)
    return tuple((name, kind) for name, kind in marked if kind != options_pb2.SUBJECT_KIND_UNSPECIFIED)


def canonical_subject(request: Message) -> str:
    """The normalised form of the person a request is about, or "" when it names nobody.

    The subject is the field the contract marks with the ``subject`` option (the
    Lookup's oneof has two; the one set counts). A FranceConnect subject counts
    through the identity it certifies, once resolved.
    """
    for name, kind in _subject_fields(request.DESCRIPTOR):
        value = getattr(request, name)
        if kind == options_pb2.SUBJECT_KIND_IDENTITY_PIVOT and request.HasField(name):
            return canonical_identity(value)
        if kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT and value.HasField("identite_pivot"):
            return canonical_identity(value.identite_pivot)
        if kind == options_pb2.SUBJECT_KIND_INE and value.strip():
            return "ine|" + "".join(value.split()).upper()
        if kind == options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT and value.strip():
            return "france_travail|" + str(value).strip()
    return ""


class Journal:
    """Writes the access journal; one instance per process.

    Args:
        hmac_key: The secret key of the subject hash; the same on every replica,
            so an audit finds a person whatever replica served the call.

    Raises:
        ValueError: the key is empty (a plain hash of an identity can be reversed by
            trying the population, which a secret key prevents).
    """

    def __init__(self, hmac_key: bytes) -> None:
        if not hmac_key:
            raise ValueError("the journal needs a secret HMAC key (JOURNAL_HMAC_KEY)")
        # Keyed once: each digest starts from a copy of it.
        self._keyed = hmac.new(hmac_key, digestmod=hashlib.sha256)

    def subject_digest(self, request: Message) -> str:
        """HMAC-SHA256 (hex) of the normalised subject of the request; "" when it has none.

        Args:
            request: A provider request, or any message with a subject field.
        """
        subject = canonical_subject(request)
        if not subject:
            return ""
        digest = self._keyed.copy()
        digest.update(subject.encode())
        return digest.hexdigest()

    def record(
        self,
        *,
        request_id: str,
        token_id: str,
        recipient: str,
        method: str,
        provider: str,
        status: str,
        code: str,
        latency_ms: float,
        subject_digest: str,
    ) -> None:
        """Write one ``api_call`` event.

        Args:
            request_id: The call's x-request-id.
            token_id: The jti of the caller's token ("" when it had none).
            recipient: SIRET of the public body receiving the data.
            method: Full gRPC method name.
            provider: The provider service asked ("" for the gateway's own methods).
            status: gRPC status name, e.g. ``OK`` or ``NOT_FOUND``.
            code: API Particulier error code ("" on success).
            latency_ms: Time the gateway spent on the call.
            subject_digest: `subject_digest` of the request.
        """
        _LOG.info(
            EVENT,
            request_id=request_id,
            token_id=token_id,
            recipient=recipient,
            method=method,
            provider=provider,
            status=status,
            code=code,
            latency_ms=round(latency_ms, 3),
            subject_digest=subject_digest,
        )
