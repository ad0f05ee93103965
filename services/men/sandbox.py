"""The men sandbox backend: answers from the fictitious population in sandbox_population.json.

A pupil's entry lists their schoolings, each with where it takes place::

    "scolarites": [{"departement": "013", "region": "18", "degre": "2D",
                    "scolarite": {<v5 data object without annee_scolaire>}}]

The first schooling inside the query's establishment or perimeter (and degree,
when asked) is the answer, dated with the school year asked, so a pupil is
found whatever the current year is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from apiparticulier.men.v1 import men_pb2
from runtime.caller import Caller
from runtime.providers import MEN
from services.common.sandbox import SandboxBackend, found
from services.men.backend import PerimetreKind, ScolariteQuery, pupil_not_found

POPULATION_FILE = Path(__file__).with_name("sandbox_population.json")
_API = "scolarites"


def _within(schooling: Mapping[str, Any], query: ScolariteQuery) -> bool:
    if query.degre_etablissement is not None and schooling["degre"] != query.degre_etablissement:
        return False
    if query.code_etablissement is not None:
        return bool(schooling["scolarite"]["etablissement"]["code_uai"] == query.code_etablissement)
    if query.perimetre is not None:
        key = "departement" if query.perimetre.kind is PerimetreKind.DEPARTEMENT else "region"
        return schooling[key] in query.perimetre.codes
    return False


class SandboxMenBackend(SandboxBackend):
    """Answers for the sandbox pupils; everyone else is schooled nowhere the ministry knows."""

    population_file = POPULATION_FILE

    async def scolarite(self, query: ScolariteQuery, caller: Caller) -> men_pb2.ScolariteV5Data:
        """The pupil's first schooling within the query's establishment or perimeter."""
        person = found(await self._population.by_identity(query.identity), MEN, pupil_not_found)
        for schooling in person.answers.get(_API, ()):
            if _within(schooling, query):
                data = json_format.ParseDict(schooling["scolarite"], men_pb2.ScolariteV5Data())
                data.annee_scolaire = query.annee_scolaire
                return data
        raise pupil_not_found()
