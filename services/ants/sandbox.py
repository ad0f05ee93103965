"""The ants sandbox backend: answers from the fictitious files in sandbox_population.json.

Each entry is one person's extract of one file, found by the registration number
and the person's FranceConnect identity (as every sandbox matches persons)::

    {"label": "…", "identite": {<the FranceConnect identity, pivot JSON>},
     "parameters": {"immatriculation": "SB-101-AA"},
     "answers": {"extrait_immatriculation_vehicule": {"data": {<v3 data>}, "meta": {<v3 meta>}}}}

An entry without ``identite`` gives a number the error it stands for, whoever asks.
A number no entry names is not in the SIV (42003); a number other people's
entries name is found, but the user is not on it (42005).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from google.protobuf import json_format

from apiparticulier.common.v1 import identity_pb2
from runtime.caller import Caller
from runtime.providers import ANTS
from services.ants.backend import Extrait, identity_not_found, registration_not_found
from services.common.sandbox import SandboxError, SandboxPerson, answer, found, in_its_time, pivot_key
from services.common.settings import ProviderSettings

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")
_API = "extrait_immatriculation_vehicule"


@dataclass
class _File:
    """What the sandbox holds under one registration number."""

    error: SandboxPerson | None = None
    persons: dict[str, SandboxPerson] = field(default_factory=dict)
    """By `pivot_key` of their FranceConnect identity."""


class SandboxAntsBackend:
    """Answers for the sandbox files."""

    def __init__(self, files: dict[str, _File]) -> None:
        """Serve the given files, by upper-cased registration number."""
        self._files = files

    @classmethod
    def load(cls, path: Path) -> Self:
        """The backend on a population file."""
        files: dict[str, _File] = {}
        for entry in json.loads(path.read_text(encoding="utf-8"))["persons"]:
            error = SandboxError(entry["error"]) if "error" in entry else None
            person = SandboxPerson(
                entry["label"], entry.get("answers", {}), error, entry.get("answer_seconds", 0.0)
            )
            file = files.setdefault(entry["parameters"]["immatriculation"].upper(), _File())
            if "identite" in entry:
                identity = json_format.ParseDict(entry["identite"], identity_pb2.IdentityPivot())
                file.persons[pivot_key(identity)] = person
            else:
                file.error = person
        return cls(files)

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> Self:
        """The backend on its population file; no setting changes a sandbox."""
        return cls.load(POPULATION_FILE)

    async def extrait(
        self, immatriculation: str, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> Extrait:
        """The person's extract of the file, as written in the population file."""
        file = self._files.get(immatriculation)
        if file is None:
            raise registration_not_found()
        if file.error is not None:
            found(file.error, ANTS, registration_not_found)
        person = await in_its_time(file.persons.get(pivot_key(identity)))
        if person is None:
            raise identity_not_found()
        return answer(person, _API, Extrait, ANTS, identity_not_found)

    async def close(self) -> None:
        """Nothing to release."""
