"""The sandbox population: fictitious persons a provider service answers for by default.

Each provider ships a JSON file in its package. A person is found from the subject
alone (identity pivot, INE or France Travail identifiant), so integrators select
an answer or an error path by whom they ask about, as on the real staging
environment. The file's answers are written in the v3 JSON of the API, so a
person's data reads exactly as the API returns it.

File shape::

    {"persons": [{
        "label": "what this person demonstrates",
        "identite": {"nomNaissance": "...", "prenoms": ["..."], "anneeDateNaissance": 1982,
                     "moisDateNaissance": 12, "jourDateNaissance": 27, "sexeEtatCivil": "F"},
        "ine": "optional", "identifiant": "optional",
        "error": "optional: not_found | provider_unavailable | provider_timeout | provider_unknown_answer",
        "answers": {"<api>": {<v3 data object>}}
    }]}
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from apiparticulier.common.v1 import identity_pb2
from runtime.errors import (
    ApiError,
    ErrorSource,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)


class SandboxError(StrEnum):
    """Error paths a sandbox person triggers."""

    NOT_FOUND = "not_found"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNKNOWN_ANSWER = "provider_unknown_answer"


@dataclass(frozen=True)
class SandboxPerson:
    """One fictitious person and what each API answers about them."""

    label: str
    answers: Mapping[str, Any] = field(default_factory=dict)
    error: SandboxError | None = None


def normalise_name(name: str) -> str:
    """Upper case, without accents, with every run of non-letters made one space."""
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in letters).split())


def identity_key(
    birth_name: str, first_name: str, year: int | None, month: int | None, day: int | None
) -> str:
    """The key a person is found by: birth name, first first name and the birth date as known."""
    date = "-".join(str(part) for part in (year, month, day) if part is not None)
    return f"{normalise_name(birth_name)}|{normalise_name(first_name)}|{date}"


def pivot_key(pivot: identity_pb2.IdentityPivot) -> str:
    """The key of a validated identity pivot."""
    year = pivot.annee_date_naissance if pivot.HasField("annee_date_naissance") else None
    month = pivot.mois_date_naissance if year is not None and pivot.HasField("mois_date_naissance") else None
    day = pivot.jour_date_naissance if month is not None and pivot.HasField("jour_date_naissance") else None
    return identity_key(pivot.nom_naissance, pivot.prenoms[0], year, month, day)


class SandboxPopulation:
    """The persons of one provider's sandbox, indexed by every subject they answer to."""

    def __init__(self, persons: list[tuple[dict[str, Any], SandboxPerson]]) -> None:
        """Index persons given with their raw subject fields."""
        self._by_identity: dict[str, SandboxPerson] = {}
        self._by_ine: dict[str, SandboxPerson] = {}
        self._by_identifiant: dict[str, SandboxPerson] = {}
        for subject, person in persons:
            identity = subject.get("identite")
            if identity is not None:
                key = identity_key(
                    identity["nomNaissance"],
                    identity["prenoms"][0],
                    identity.get("anneeDateNaissance"),
                    identity.get("moisDateNaissance"),
                    identity.get("jourDateNaissance"),
                )
                self._by_identity[key] = person
            if "ine" in subject:
                self._by_ine[subject["ine"].upper()] = person
            if "identifiant" in subject:
                self._by_identifiant[subject["identifiant"]] = person

    @classmethod
    def load(cls, path: Path) -> SandboxPopulation:
        """Read a population file."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        persons = []
        for entry in raw["persons"]:
            error = entry.get("error")
            person = SandboxPerson(
                label=entry["label"],
                answers=entry.get("answers", {}),
                error=SandboxError(error) if error else None,
            )
            persons.append((entry, person))
        return cls(persons)

    def by_identity(self, pivot: identity_pb2.IdentityPivot) -> SandboxPerson | None:
        """The person a validated identity pivot designates, if any."""
        return self._by_identity.get(pivot_key(pivot))

    def by_ine(self, ine: str) -> SandboxPerson | None:
        """The person with this INE, if any."""
        return self._by_ine.get(ine.upper())

    def by_identifiant(self, identifiant: str) -> SandboxPerson | None:
        """The person with this France Travail identifiant, if any."""
        return self._by_identifiant.get(identifiant)


def transport_error(error: SandboxError, provider: ErrorSource) -> ApiError | None:
    """The provider-side failure a sandbox person stands for; None for not-found and success."""
    if error is SandboxError.PROVIDER_UNAVAILABLE:
        return provider_unavailable(provider)
    if error is SandboxError.PROVIDER_TIMEOUT:
        return provider_timeout(provider)
    if error is SandboxError.PROVIDER_UNKNOWN_ANSWER:
        return provider_unknown_answer(provider)
    return None
