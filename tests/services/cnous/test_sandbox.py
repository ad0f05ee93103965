"""The cnous sandbox population file: valid subjects, answers in the contract's shape."""

from __future__ import annotations

import datetime as dt
import json

from google.protobuf import json_format

from apiparticulier.cnous.v1 import cnous_pb2
from apiparticulier.common.v1 import identity_pb2
from services.cnous.sandbox import POPULATION_FILE
from services.common.sandbox import SandboxError, pivot_key
from services.common.validation import CIVILITY, Subject, checked_ine


def test_every_person_is_reachable_and_every_answer_parses() -> None:
    """Each person has a valid pivot and INE, both unique, and either an answer or an error."""
    persons = json.loads(POPULATION_FILE.read_text(encoding="utf-8"))["persons"]
    keys, ines = set(), set()
    for entry in persons:
        identity = json_format.ParseDict(entry["identite"], identity_pb2.IdentityPivot())
        assert CIVILITY.violations(Subject(identity, dt.date.today())) == [], entry["label"]
        assert checked_ine(entry["ine"]) == entry["ine"].upper(), entry["label"]
        keys.add(pivot_key(identity))
        ines.add(entry["ine"].upper())
        if "error" in entry:
            SandboxError(entry["error"])
            assert "answers" not in entry
        else:
            json_format.ParseDict(entry["answers"]["etudiant_boursier"], cnous_pb2.EtudiantBoursierV5Data())
    assert len(keys) == len(ines) == len(persons)
