"""The log of the whole test run holds no personal data of the sandbox persons.

Marked ``runs_last`` (tests/conftest.py), it runs after every other test of the run,
whatever the order of the files (after every parallel worker with `make test`), and reads
what every in-process gateway and provider of every test process logged (the journal included).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import LOG_DIR

_ROOT = Path(__file__).resolve().parent.parent
# Short first names ("LEA", "TOM") would match ordinary words; longer ones cannot.
_SHORTEST_NAME = 5


def sandbox_secrets() -> set[str]:
    """Names, birth dates, INEs, identifiants and registration numbers of every sandbox person."""
    found: set[str] = set()
    for population in _ROOT.glob("services/*/sandbox_population.json"):
        for person in json.loads(population.read_text(encoding="utf-8"))["persons"]:
            identity = person.get("identite", {})
            names = [identity.get("nomNaissance", ""), *identity.get("prenoms", [])]
            found.update(name.upper() for name in names if len(name) >= _SHORTEST_NAME)
            if "jourDateNaissance" in identity:
                year, month, day = (
                    identity[k] for k in ("anneeDateNaissance", "moisDateNaissance", "jourDateNaissance")
                )
                found.add(f"{year:04d}-{month:02d}-{day:02d}")
            found.update(person[key] for key in ("ine", "identifiant") if key in person)
            # What else names the person's records: a vehicle's registration number.
            found.update(str(value) for value in person.get("parameters", {}).values())
    return found


@pytest.mark.runs_last
def test_the_run_log_holds_no_personal_data() -> None:
    """No sandbox person's name, birth date, INE, identifiant or plate appears in any logged event."""
    text = "".join(log.read_text(encoding="utf-8") for log in sorted(LOG_DIR.glob("*.log")))
    assert '"event": "api_call"' in text, "the run journalled no call: the audit would prove nothing"
    upper = text.upper()
    leaked = sorted(secret for secret in sandbox_secrets() if _appears(secret.upper(), upper))
    assert leaked == []


def _appears(secret: str, text: str) -> bool:
    """Whether ``secret`` stands in ``text``; all-digit ones (SDH identifiants) as a whole token only.

    Six digits stand inside timestamps' microseconds and hex digests by chance; an identifiant
    logged would stand alone, between quotes or spaces.
    """
    if not secret.isdigit():
        return secret in text
    return re.search(rf"(?<![0-9A-Z.]){secret}(?![0-9A-Z])", text) is not None
