"""The person a call is about, as the journal keeps it: a keyed hash of a normalised form.

The hash is an HMAC-SHA256, under a secret key held by the operator
(``JOURNAL_HMAC_KEY``), of the subject in a normalised form: an auditor who knows the
key and a person's identity can tell whether that person was looked up, while the
journal alone reveals nobody.

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

import hashlib
import hmac
import re
import unicodedata

from google.protobuf.message import Message

from apiparticulier.common.v1 import identity_pb2, options_pb2

# Whitespace, hyphens and dashes, apostrophes (straight, typographic, modifier letter).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015'\u2019\u02bc`\u00b4]+")


def normalise_text(value: str) -> str:
    """Upper case, accents stripped, hyphens and apostrophes as spaces, spaces collapsed.

    Args:
        value: A name as a caller wrote it.

    Returns:
        Its canonical form, e.g. ``"  d'Arc-Éloïse "`` gives ``"D ARC ELOISE"``.
    """
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


def canonical_subject(request: Message) -> str:
    """The normalised form of the person a request is about, or "" when it names nobody.

    The subject is the field the contract marks with the ``subject`` option (the
    Lookup's oneof has two; the one set counts). A FranceConnect subject counts
    through the identity it certifies, once resolved.
    """
    for field in request.DESCRIPTOR.fields:
        kind = field.GetOptions().Extensions[options_pb2.subject]
        if kind == options_pb2.SUBJECT_KIND_UNSPECIFIED:
            continue
        value = getattr(request, field.name)
        if kind == options_pb2.SUBJECT_KIND_IDENTITY_PIVOT and request.HasField(field.name):
            return canonical_identity(value)
        if kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT and value.HasField("identite_pivot"):
            return canonical_identity(value.identite_pivot)
        if kind == options_pb2.SUBJECT_KIND_INE and value.strip():
            return "ine|" + "".join(value.split()).upper()
        if kind == options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT and value.strip():
            return "france_travail|" + str(value).strip()
        if kind == options_pb2.SUBJECT_KIND_SPORTIF_IDENTIFIANT and value.strip():
            return "sportif|" + str(value).strip()
    return ""


def identity_forms(pivot: identity_pb2.IdentityPivot) -> list[str]:
    """The normalised forms under which calls about the person a complete identity names were journalled.

    A caller may name a person with less than FranceConnect certifies: the first
    first name alone (the providers match on it), and the birthplace as its commune
    code, as its département (with the commune's name, which the journal does not
    keep) or not at all. Each of those is a form of the same person; the rest
    (birth name, birth date, sex, birth country) must be as certified.

    Args:
        pivot: An identity as FranceConnect certifies it, or as an auditor gives it.

    Returns:
        The distinct canonical forms (see `canonical_identity`), the complete one first.
    """
    first_names = [list(pivot.prenoms)]
    # Words are split on spaces only, as FranceConnect splits given_name: "Jean-Pierre" is one name.
    words = " ".join(pivot.prenoms).split()
    if len(words) > 1:
        first_names.append(words[:1])
    commune = pivot.code_cog_insee_commune_naissance.strip().upper()
    birthplaces = [(commune, pivot.code_cog_insee_departement_naissance), ("", "")]
    if commune:
        # Overseas communes (97x, 98x) carry a three-character département.
        birthplaces.insert(1, ("", commune[:3] if commune.startswith(("97", "98")) else commune[:2]))
    forms: dict[str, None] = {}
    for names in first_names:
        for code, departement in birthplaces:
            variant = identity_pb2.IdentityPivot()
            variant.CopyFrom(pivot)
            del variant.prenoms[:]
            variant.prenoms.extend(names)
            variant.code_cog_insee_commune_naissance = code
            variant.code_cog_insee_departement_naissance = departement
            forms[canonical_identity(variant)] = None
    return list(forms)


def keyed_digest(key: bytes, form: str) -> str:
    """HMAC-SHA256 (hex) of a normalised form under the journal's key."""
    return hmac.new(key, form.encode(), hashlib.sha256).hexdigest()
