"""The identity pivot's command-line form, for the tools that name a person.

The client (`client.cli`) and the auditor's journal search (`gateway.admin.journal`)
take the same flags and read them back the same way: one definition below both.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")


class FlagError(ValueError):
    """A flag's value cannot be read; the message names the flag."""


def birth_date(value: str) -> dict[str, int]:
    """The proto3 JSON fields of a ``--naissance`` value: YYYY, YYYY-MM or YYYY-MM-DD.

    Raises:
        FlagError: the value has none of these forms.
    """
    match = _DATE.fullmatch(value)
    if match is None:
        raise FlagError(f"--naissance {value!r}: expected YYYY, YYYY-MM or YYYY-MM-DD")
    names = ("anneeDateNaissance", "moisDateNaissance", "jourDateNaissance")
    return {name: int(part) for name, part in zip(names, match.groups(), strict=True) if part is not None}


def identity_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The identity pivot the flags describe, in proto3 JSON; empty when no identity flag is given."""
    identity: dict[str, Any] = {}
    simple = {
        "nom": "nomNaissance",
        "nom_usage": "nomUsage",
        "sexe": "sexeEtatCivil",
        "pays": "codeCogInseePaysNaissance",
        "commune": "codeCogInseeCommuneNaissance",
        "commune_nom": "nomCommuneNaissance",
        "departement": "codeCogInseeDepartementNaissance",
    }
    for flag, name in simple.items():
        value = getattr(args, flag, None)
        if value is not None:
            identity[name] = value
    if getattr(args, "prenom", None):
        identity["prenoms"] = list(args.prenom)
    if getattr(args, "naissance", None):
        identity.update(birth_date(args.naissance))
    return identity


def identity_flags(group: argparse._ActionsContainer) -> None:
    """The flags of an identity pivot, read back by `identity_from_flags` (also the journal search's)."""
    group.add_argument("--nom", help="birth name (nomNaissance)")
    group.add_argument("--nom-usage", dest="nom_usage", help="usage name (nomUsage)")
    group.add_argument("--prenom", action="append", help="a first name; repeat for each, in order")
    group.add_argument("--sexe", choices=("M", "F"), help="sex at civil status")
    group.add_argument("--naissance", help="birth date: YYYY-MM-DD, or YYYY-MM, or YYYY")
    group.add_argument("--pays", help="COG code of the birth country (99100: France)")
    group.add_argument("--commune", help="COG code of the birth commune")
    group.add_argument(
        "--commune-nom", dest="commune_nom", help="name of the birth commune (with --departement)"
    )
    group.add_argument("--departement", help="COG code of the birth département")
