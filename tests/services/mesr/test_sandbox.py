"""The mesr sandbox population file: valid subjects, answers in the contract's shape."""

from __future__ import annotations

import datetime as dt
import json

from google.protobuf import json_format

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from services.common.sandbox import SandboxError, pivot_key
from services.common.validation import MESRI, Subject, checked_ine
from services.mesr.sandbox import POPULATION_FILE


def test_every_person_is_reachable_and_every_answer_parses() -> None:
    """Each person has a valid pivot and INE, both unique, and either an answer or an error."""
    persons = json.loads(POPULATION_FILE.read_text(encoding="utf-8"))["persons"]
    keys, ines = set(), set()
    for entry in persons:
        identity = json_format.ParseDict(entry["identite"], identity_pb2.IdentityPivot())
        assert MESRI.violations(Subject(identity, dt.date.today())) == [], entry["label"]
        assert checked_ine(entry["ine"]) == entry["ine"].upper(), entry["label"]
        keys.add(pivot_key(identity))
        ines.add(entry["ine"].upper())
        if "error" in entry:
            SandboxError(entry["error"])
            assert "answers" not in entry
        else:
            json_format.ParseDict(entry["answers"]["statut_etudiant"], mesr_pb2.StatutEtudiantData())
    assert len(keys) == len(ines) == len(persons)
