"""The men sandbox population file: valid subjects, schoolings in the contract's shape."""

from __future__ import annotations

import datetime as dt
import json

from google.protobuf import json_format

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.men.v1 import men_pb2
from services.common.sandbox import SandboxError, pivot_key
from services.common.validation import CIVILITY, Subject, required_sex
from services.men.sandbox import POPULATION_FILE
from services.men.validation import DEGRES, DEPARTEMENTS, REGIONS


def test_every_person_is_reachable_and_every_schooling_parses() -> None:
    """Each pupil has a unique valid pivot, and each schooling a valid place and a v5 data object."""
    persons = json.loads(POPULATION_FILE.read_text(encoding="utf-8"))["persons"]
    keys = set()
    for entry in persons:
        identity = json_format.ParseDict(entry["identite"], identity_pb2.IdentityPivot())
        assert CIVILITY.then(required_sex).violations(Subject(identity, dt.date.today())) == [], entry[
            "label"
        ]
        keys.add(pivot_key(identity))
        if "error" in entry:
            SandboxError(entry["error"])
            assert "answers" not in entry
            continue
        for schooling in entry["answers"]["scolarites"]:
            assert schooling["departement"] in DEPARTEMENTS
            assert schooling["region"] in REGIONS
            assert schooling["degre"] in DEGRES
            data = json_format.ParseDict(schooling["scolarite"], men_pb2.ScolariteV5Data())
            assert not data.annee_scolaire, "the school year is the one asked"
            assert data.etablissement.code_uai[:3] == schooling["departement"]
    assert len(keys) == len(persons)
