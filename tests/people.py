"""The sandbox's people, as the tests ask about them: one definition each, in every form a test needs.

LEFEBVRE Alexis Gérôme, born 1982-12-27 in Charleville-Mézières (08480), is the sandbox's
CNAF household allocataire (quotient familial 2550) and a person covered by the C2S; the
sandbox backends match the name and first names without regard to case or accents.
"""

from __future__ import annotations

from typing import Any

from apiparticulier.common.v1 import identity_pb2

RECIPIENT = "13002526500013"
"""A recipient SIRET the sandbox accepts (DINUM's)."""

_LEFEBVRE: dict[str, Any] = {
    "nom_naissance": "Lefebvre",
    "prenoms": ["Alexis", "Gérôme"],
    "annee_date_naissance": 1982,
    "mois_date_naissance": 12,
    "jour_date_naissance": 27,
    "sexe_etat_civil": "F",
    "code_cog_insee_pays_naissance": "99100",
    "code_cog_insee_commune_naissance": "08480",
}


def lefebvre(**overrides: Any) -> identity_pb2.IdentityPivot:
    """LEFEBVRE's identity pivot, with fields overridden (``nom_naissance="INCONNU"``…)."""
    return identity_pb2.IdentityPivot(**{**_LEFEBVRE, **overrides})


def lefebvre_in_capitals(**overrides: Any) -> identity_pb2.IdentityPivot:
    """LEFEBVRE in capitals, accents kept: her FranceConnect claims (`LEFEBVRE_CLAIMS`) as a pivot."""
    return lefebvre(**{"nom_naissance": "LEFEBVRE", "prenoms": ["ALEXIS", "GÉRÔME"], **overrides})


def lefebvre_briefly(**overrides: Any) -> identity_pb2.IdentityPivot:
    """LEFEBVRE as callers most often name her: in capitals, her first first name, no birth commune."""
    fields = {**_LEFEBVRE, "nom_naissance": "LEFEBVRE", "prenoms": ["ALEXIS"], **overrides}
    if "code_cog_insee_commune_naissance" not in overrides:
        del fields["code_cog_insee_commune_naissance"]
    return identity_pb2.IdentityPivot(**fields)


LEFEBVRE_CLAIMS: dict[str, Any] = {
    "gender": "female",
    "family_name": "LEFEBVRE",
    "given_name": "ALEXIS GÉRÔME",
    "given_name_array": ["ALEXIS", "GÉRÔME"],
    "birthdate": "1982-12-27",
    "birthplace": "08480",
    "birthcountry": "99100",
}
"""LEFEBVRE's identity as FranceConnect's token introspection certifies it."""


LEFEBVRE_QUERY: dict[str, str | list[str]] = {
    "nomNaissance": "LEFEBVRE",
    "prenoms[]": ["ALEXIS"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "1982",
    "moisDateNaissance": "12",
    "jourDateNaissance": "27",
    "codeCogInseePaysNaissance": "99100",
    "codeCogInseeCommuneNaissance": "08480",
    "recipient": RECIPIENT,
}
"""LEFEBVRE as the REST front's query string, recipient included: the quotient familial call of the API."""
