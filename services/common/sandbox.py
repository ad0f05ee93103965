"""The sandbox population: fictitious persons a provider service answers for by default.

Each provider ships a JSON file in its package. A person is found from the subject
alone (identity pivot, INE or France Travail identifiant), so integrators select
an answer or an error path by whom they ask about, as on the real staging
environment. The file's answers are written in the v3 JSON of the API, so a
person's data reads exactly as the API returns it.

A person is matched by birth name, first first name and birth date as far as
known, each normalised (`pivot_key`): case, accents and punctuation do not
count, and first names are the words of all the first names given, so
``["ALEXIS GÉRÔME"]`` and ``["Alexis", "Gérôme"]`` are the same person.

File shape::

    {"persons": [{
        "label": "what this person demonstrates",
        "identite": {"nomNaissance": "...", "prenoms": ["..."], "anneeDateNaissance": 1982,
                     "moisDateNaissance": 12, "jourDateNaissance": 27, "sexeEtatCivil": "F"},
        "ine": "optional", "identifiant": "optional (France Travail's, or a sportsperson's)",
        "error": "optional: not_found | ambiguous | provider_unavailable | provider_timeout
                  | provider_unknown_answer",
        "answers": {"<api>": {<v3 data object>}},
        "refusals": {"<api>": "<code>"},
        "answer_seconds": "optional: how long the provider takes to find the person (a slow answer)"
    }]}

``refusals`` (optional) names the APIs whose own rule refuses the answer written
for the person, with the code it refuses with (the EAJE participation familiale
of a household without a child under 7: 37003). The service applies the rule
itself and never reads the key: it tells readers and the tests what to expect.

``answer_seconds`` (optional) makes the provider take that long to find the person, whatever
it answers then: a slow answer, to try the duplicate-call lock (409 ``00015``) or a deadline.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from apiparticulier.common.v1 import identity_pb2
from runtime.errors import (
    ApiError,
    ErrorSource,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)
from services.common.pivot import birth_date
from services.common.settings import ProviderSettings

_Data = TypeVar("_Data", bound=Message)

NotFound = Callable[[], ApiError]
"""The provider's refusal of a subject it does not know."""
Ambiguous = Callable[[], ApiError]
"""The provider's refusal of a subject that matches several persons."""


class SandboxError(StrEnum):
    """Error paths a sandbox person triggers."""

    NOT_FOUND = "not_found"
    AMBIGUOUS = "ambiguous"
    """The provider finds several persons; not found where the provider has no such answer."""
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNKNOWN_ANSWER = "provider_unknown_answer"


@dataclass(frozen=True)
class SandboxPerson:
    """One fictitious person and what each API answers about them."""

    label: str
    answers: Mapping[str, Any] = field(default_factory=dict)
    error: SandboxError | None = None
    answer_seconds: float = 0.0
    """How long the provider takes to find the person."""


async def in_its_time(person: SandboxPerson | None) -> SandboxPerson | None:
    """The person, once the time the provider takes to find them (``answer_seconds``) has passed."""
    if person is not None and person.answer_seconds:
        await asyncio.sleep(person.answer_seconds)
    return person


def normalise_name(name: str) -> str:
    """Upper case, without accents, with every run of non-letters made one space."""
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in letters).split())


def first_names(prenoms: Iterable[str]) -> list[str]:
    """The first names, one per word of those given, each normalised.

    ``["ALEXIS GÉRÔME"]`` and ``["Alexis", "Gérôme"]`` both give ``["ALEXIS",
    "GEROME"]``. Spaces separate first names; a compound one keeps its parts
    together (``JEAN-PIERRE`` gives ``JEAN PIERRE``).
    """
    return [normalise_name(word) for prenom in prenoms for word in prenom.split()]


def pivot_key(pivot: identity_pb2.IdentityPivot) -> str:
    """The key a person is found by: birth name, first first name and birth date as far as known."""
    first = next(iter(first_names(pivot.prenoms)), "")
    return f"{normalise_name(pivot.nom_naissance)}|{first}|{birth_date(pivot)}"


class SandboxPopulation:
    """The persons of one provider's sandbox, indexed by every subject they answer to."""

    def __init__(self, persons: list[tuple[dict[str, Any], SandboxPerson]]) -> None:
        """Index persons given with their raw subject fields (``identite`` in the pivot's JSON)."""
        self._by_identity: dict[str, SandboxPerson] = {}
        self._by_ine: dict[str, SandboxPerson] = {}
        self._by_identifiant: dict[str, SandboxPerson] = {}
        for subject, person in persons:
            if "identite" in subject:
                identity = json_format.ParseDict(subject["identite"], identity_pb2.IdentityPivot())
                self._by_identity[pivot_key(identity)] = person
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
                answer_seconds=float(entry.get("answer_seconds", 0)),
            )
            persons.append((entry, person))
        return cls(persons)

    async def by_identity(self, pivot: identity_pb2.IdentityPivot) -> SandboxPerson | None:
        """The person a validated identity pivot designates, if any (`in_its_time`)."""
        return await in_its_time(self._by_identity.get(pivot_key(pivot)))

    async def by_ine(self, ine: str) -> SandboxPerson | None:
        """The person with this INE, if any (`in_its_time`)."""
        return await in_its_time(self._by_ine.get(ine.upper()))

    async def by_identifiant(self, identifiant: str) -> SandboxPerson | None:
        """The person with this identifiant (France Travail's, or the sports ministry's), if any."""
        return await in_its_time(self._by_identifiant.get(identifiant))


def _transport_error(error: SandboxError, provider: ErrorSource) -> ApiError | None:
    """The provider-side failure a sandbox person stands for; None for not-found and success."""
    if error is SandboxError.PROVIDER_UNAVAILABLE:
        return provider_unavailable(provider)
    if error is SandboxError.PROVIDER_TIMEOUT:
        return provider_timeout(provider)
    if error is SandboxError.PROVIDER_UNKNOWN_ANSWER:
        return provider_unknown_answer(provider)
    return None


def found(
    person: SandboxPerson | None,
    source: ErrorSource,
    not_found: NotFound,
    ambiguous: Ambiguous | None = None,
) -> SandboxPerson:
    """The person, when they stand for an answer.

    Args:
        person: Whom the subject designates, if anyone.
        source: The provider named by the failures a person stands for.
        not_found: The provider's refusal of a subject it does not know.
        ambiguous: The provider's refusal of a subject matching several persons, if it has one.

    Raises:
        ApiError: ``not_found()`` for nobody and for a person who stands for not
            found; ``ambiguous()`` for a person who stands for several; the failure
            of ``source`` the person stands for.
    """
    if person is None:
        raise not_found()
    if person.error is SandboxError.AMBIGUOUS and ambiguous is not None:
        raise ambiguous()
    if person.error is not None:
        raise _transport_error(person.error, source) or not_found()
    return person


def answer(
    person: SandboxPerson | None,
    api: str,
    data_type: type[_Data],
    source: ErrorSource,
    not_found: NotFound,
    *,
    ambiguous: Ambiguous | None = None,
) -> _Data:
    """The person's answer to one API, as its data message.

    Args:
        person: Whom the subject designates, if anyone.
        api: The key of the answer in the person's ``answers``.
        data_type: The API's data message.
        source: The provider named by the failures a person stands for.
        not_found: The provider's refusal of a subject it does not know.
        ambiguous: The provider's refusal of a subject matching several persons, if it has one.

    Raises:
        ApiError: as `found`, and ``not_found()`` when the person has no answer for ``api``.
    """
    answers = found(person, source, not_found, ambiguous).answers
    if api not in answers:
        raise not_found()
    return json_format.ParseDict(answers[api], data_type())


class SandboxBackend:
    """What every sandbox backend shares: its population, read from its file, and nothing to close."""

    population_file: ClassVar[Path]
    """The population file the backend answers from."""

    def __init__(self, population: SandboxPopulation) -> None:
        """Serve the given population."""
        self._population = population

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> Self:
        """The backend on its population file; no setting changes a sandbox."""
        return cls(SandboxPopulation.load(cls.population_file))

    async def close(self) -> None:
        """Nothing to release."""
