"""Which person of a registration file is the FranceConnect user.

Both sides are normalised (upper case, no accents, punctuation as spaces). A
natural person of the file matches when their birth name is the user's and one
of their first names is one of the user's (a compound FranceConnect first name
counts word by word too). The birth date is compared and reported, never
required: the SIV's dates are often missing or wrong. Companies never match. The
first person who matches is the one the extract is about.

Older (FNI) files hold the whole name in ``nom_naiss`` ("MOREL LEA") and no
``prenom``: its first word is then the birth name and the others the first names.
"""

from __future__ import annotations

from dataclasses import dataclass

from apiparticulier.ants.v1 import ants_pb2
from apiparticulier.common.v1 import identity_pb2
from services.ants.siv import Personne
from services.common.pivot import birth_date
from services.common.sandbox import normalise_name


@dataclass(frozen=True, slots=True)
class Match:
    """The person of the file who is the user, and how they compare."""

    personne: Personne
    nom: str | None
    """Their birth name, split off an FNI full name when need be."""
    prenoms: tuple[str, ...]
    """Their first names, in the file's order."""
    identity_matching: ants_pb2.IdentityMatching


def names(personne: Personne) -> tuple[str | None, tuple[str, ...]]:
    """The birth name and first names of a person of the file."""
    nom, prenom = personne.identite.get("nom_naiss"), personne.identite.get("prenom")
    if prenom is None and nom is not None and len(nom.split()) > 1:
        first, *rest = nom.split()
        return first, tuple(rest)
    return nom, tuple((prenom or "").split())


def _score(same: bool) -> float:
    return 1.0 if same else 0.0


def compare(identity: identity_pb2.IdentityPivot, personne: Personne) -> ants_pb2.IdentityMatching:
    """How a person of the file compares with the FranceConnect identity."""
    nom, prenoms = names(personne)
    given = {normalise_name(prenom) for prenom in identity.prenoms}
    given |= {word for name in given for word in name.split()}
    family = nom is not None and normalise_name(nom) == normalise_name(identity.nom_naissance)
    first = any(normalise_name(prenom) in given for prenom in prenoms)
    born = personne.identite.get("date_naissance") == birth_date(identity)
    return ants_pb2.IdentityMatching(
        family_name=_score(family),
        given_name=_score(first),
        birth_date=_score(born),
        overall_match=family and first,
    )


def matching_person(identity: identity_pb2.IdentityPivot, personnes: tuple[Personne, ...]) -> Match | None:
    """The first natural person of the file who is the user, if any."""
    for personne in personnes:
        if not personne.physique:
            continue
        compared = compare(identity, personne)
        if compared.overall_match:
            nom, prenoms = names(personne)
            return Match(personne, nom, prenoms, compared)
    return None
