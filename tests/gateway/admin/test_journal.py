"""``python -m gateway.admin journal``: keygen, verify (exit 1 naming the row) and an auditor's search.

Run through the CLI's ``main`` in this process (`tests.conftest.run_main`); the exit status
of an unreachable database through the entry point itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from gateway.admin.cli import build_parser, main
from gateway.journal import Journal
from gateway.settings import GatewaySettings
from tests.conftest import run_main, run_python
from tests.gateway.journal.conftest import (
    HMAC_KEY,
    SigningKey,
    journal_db,
    journal_key,
    journal_on,
    quotient_call,
    started,
)
from tests.gateway.journal.test_writer import drained

__all__ = ["journal_db", "journal_key"]


def admin(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``journal <arguments>`` through the CLI's ``main`` in this process, with ``env``'s variables."""
    return run_main(main, "journal", *arguments, env=env)


def admin_process(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m gateway.admin journal <arguments>``: the entry point itself and its exit status."""
    return run_python("-m", "gateway.admin", "journal", *arguments, env={**os.environ, **env})


def call_about(
    journal: Journal, request_id: str, nom: str, prenoms: list[str], born: tuple[int, int, int]
) -> None:
    journal.record(
        quotient_call(
            request_id,
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(
                identite=identity_pb2.IdentityPivot(
                    nom_naissance=nom,
                    prenoms=prenoms,
                    sexe_etat_civil="M",
                    annee_date_naissance=born[0],
                    mois_date_naissance=born[1],
                    jour_date_naissance=born[2],
                    code_cog_insee_pays_naissance="99100",
                )
            ),
        )
    )


async def journal_of_three_calls(url: str, key: SigningKey) -> None:
    async with started(journal_on(url, key)) as journal:
        call_about(journal, "dupont-1", "Dupont", ["Jean Pierre"], (1970, 1, 2))
        call_about(journal, "dupont-2", "DUPONT", ["JEAN-PIERRE"], (1970, 1, 2))
        call_about(journal, "moreau", "MOREAU", ["JEAN"], (1958, 4, 3))
        await drained(journal)


async def test_verify_exits_0_on_an_intact_journal_and_1_naming_a_row_changed_or_deleted(
    journal_db: str, journal_key: SigningKey
) -> None:
    await journal_of_three_calls(journal_db, journal_key)
    intact = admin("verify", "--public-key", str(journal_key.public), "--database-url", journal_db)
    assert intact.returncode == 0, intact.stderr
    assert "3 rows: intact" in intact.stdout
    with psycopg.connect(journal_db) as conn:
        conn.execute("UPDATE journal.calls SET recipient = '21690123100011' WHERE request_id = 'dupont-2'")
    changed = admin(
        "verify", "--public-key", str(journal_key.public), "--json", JOURNAL_DATABASE_URL=journal_db
    )
    assert changed.returncode == 1
    (report,) = json.loads(changed.stdout)
    assert report["problems"] == [
        "row 2: its hash does not follow from its content and the row before (altered, or reordered here)"
    ]
    with psycopg.connect(journal_db) as conn:
        conn.execute("DELETE FROM journal.calls WHERE request_id = 'dupont-1'")
    deleted = admin(
        "verify", "--public-key", str(journal_key.public), "--database-url", journal_db, "--jobs", "2"
    )
    assert deleted.returncode == 1
    assert "row 1: missing (removed)" in deleted.stdout


def test_verify_says_when_postgresql_cannot_be_reached(journal_key: SigningKey) -> None:
    done = admin_process(
        "verify", "--public-key", str(journal_key.public), "--database-url", "postgresql://u@127.0.0.1:1/x"
    )
    assert done.returncode == 3
    assert "cannot be read" in done.stderr and "Traceback" not in done.stderr


async def test_search_finds_one_person_however_written_and_nobody_else(
    journal_db: str, journal_key: SigningKey
) -> None:
    await journal_of_three_calls(journal_db, journal_key)
    person = [
        "--nom",
        "dupont",
        "--prenom",
        "Jean",
        "--prenom",
        "Pierre",
        "--sexe",
        "M",
        "--naissance",
        "1970-01-02",
    ]
    done = admin(
        "search",
        *person,
        "--pays",
        "99100",
        "--database-url",
        journal_db,
        "--json",
        JOURNAL_HMAC_KEY=HMAC_KEY.decode(),
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert sorted(access["request_id"] for access in found) == ["dupont-1", "dupont-2"]
    assert {access["recipient"] for access in found} == {"13002526500013"}
    wrong_key = admin(
        "search", *person, "--pays", "99100", "--database-url", journal_db, "--json", JOURNAL_HMAC_KEY="x"
    )
    assert json.loads(wrong_key.stdout) == []
    nobody = admin("search", "--database-url", journal_db, JOURNAL_HMAC_KEY="x")
    assert nobody.returncode == 2 and "no person" in nobody.stderr


def test_keygen_makes_a_pair_the_gateway_and_verify_read(tmp_path: Path) -> None:
    done = admin("keygen", "--keys-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "journal-signing.private.pem").stat().st_mode & 0o077 == 0
    assert done.stdout.strip() == str(tmp_path / "journal-signing.public.pem")
    again = admin("keygen", "--keys-dir", str(tmp_path))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_verify_expects_what_the_gateways_settings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--checkpoint-seconds`` and ``--retention-months`` default as the gateways' settings do."""
    monkeypatch.delenv("JOURNAL_CHECKPOINT_SECONDS", raising=False)
    monkeypatch.delenv("JOURNAL_RETENTION_MONTHS", raising=False)
    verify = ["journal", "verify", "--public-key", "journal.public.pem"]
    args = build_parser("journal").parse_args(verify)
    fields = GatewaySettings.model_fields
    assert (args.checkpoint_seconds, args.retention_months) == (
        fields["journal_checkpoint_seconds"].default,
        fields["journal_retention_months"].default,
    )
    monkeypatch.setenv("JOURNAL_CHECKPOINT_SECONDS", "2.5")
    monkeypatch.setenv("JOURNAL_RETENTION_MONTHS", "3")
    args = build_parser("journal").parse_args(verify)
    assert (args.checkpoint_seconds, args.retention_months) == (2.5, 3)
    refused = admin("verify", "--public-key", "journal.public.pem", JOURNAL_RETENTION_MONTHS="a year")
    assert refused.returncode == 2 and "--retention-months" in refused.stderr
