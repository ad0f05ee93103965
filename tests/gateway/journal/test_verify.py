"""Verification names the row when one was altered, inserted, removed or reordered, or a chain cut back."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.journal.chain import CONTENT_COLUMNS, REFERENCES, Content, genesis, row_hash
from gateway.journal.schema import ensure_partitions, migrate
from gateway.journal.signing import Verifier, generate
from gateway.journal.verify import Timing, verify, verify_in_parallel
from gateway.journal.witness import read_witness
from tests.gateway.journal.conftest import TIMING, SigningKey, journal_on, lefebvre, quotient_call, started
from tests.gateway.journal.test_writer import drained, record


@pytest.fixture
async def written(journal_db: str, journal_key: SigningKey) -> str:
    """A journal of 30 rows in one chain, its head signed every 10 rows and at the end."""
    journal = journal_on(journal_db, journal_key, batch_rows=10, checkpoint_seconds=0.0001)
    async with started(journal):
        for number in range(30):
            record(journal, f"req-{number}")
            if number % 10 == 9:
                await drained(journal)
    return journal_db


def problems(url: str, verifier: Verifier) -> list[str]:
    with psycopg.connect(url) as conn:
        return [problem for report in verify(conn, verifier, TIMING) for problem in report.problems]


def tamper(url: str, statement: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement.encode())


def test_an_intact_journal_verifies(written: str, journal_key: SigningKey) -> None:
    with psycopg.connect(written) as conn:
        reports = verify(conn, journal_key.verifier(), TIMING)
    assert [(report.rows, report.signed_seq, report.problems) for report in reports] == [(30, 30, [])]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE journal.calls SET recipient = '21690123100011' WHERE seq = 12",
            ["row 12: its hash does not follow"],
        ),
        (
            "UPDATE journal.calls SET status = 'NOT_FOUND' WHERE seq = 30",
            ["row 30: its hash does not follow"],
        ),
        ("DELETE FROM journal.calls WHERE seq = 7", ["row 7: missing (removed)"]),
        ("DELETE FROM journal.calls WHERE seq IN (7, 8)", ["rows 7 to 8: missing (removed)"]),
        (
            "DELETE FROM journal.calls WHERE seq >= 25",
            ["chain ends at row 24, before its head signed at row 30"],
        ),
        (
            "INSERT INTO journal.calls SELECT * FROM journal.calls WHERE seq = 5",
            ["row 5: a second row at this position"],
        ),
        (
            "UPDATE journal.calls SET seq = CASE seq WHEN 3 THEN 4 ELSE 3 END WHERE seq IN (3, 4)",
            [
                "row 3: its hash does not follow",
                "row 4: its hash does not follow",
                "row 5: its hash does not follow",
            ],
        ),
        (
            "UPDATE journal.checkpoints SET head_hash = sha256(head_hash) WHERE seq = 20",
            ["checkpoint at row 20: signature invalid"],
        ),
        (
            "UPDATE journal.calls SET occurred_at = date_trunc('month', occurred_at) + interval '1 month' "
            "WHERE seq = 2",
            ["row 2: its hash does not follow", "row 2: outside its chain's month"],
        ),
    ],
    ids=[
        "altered",
        "altered-last",
        "removed",
        "removed-two",
        "cut-back",
        "inserted",
        "reordered",
        "forged",
        "moved",
    ],
)
def test_each_tampering_is_named(
    written: str, journal_key: SigningKey, statement: str, expected: list[str]
) -> None:
    assert problems(written, journal_key.verifier()) == []
    tamper(written, statement)
    found = problems(written, journal_key.verifier())
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), found


def test_a_re_hashed_chain_shows_against_its_signed_heads(written: str, journal_key: SigningKey) -> None:
    """Altering a row and re-computing every later hash is caught by the next signed head."""
    with psycopg.connect(written) as conn:
        conn.execute("UPDATE journal.calls SET recipient = '21690123100011' WHERE seq = 12")
        (chain_id,) = conn.execute("SELECT chain_id FROM journal.calls LIMIT 1").fetchone()  # type: ignore[misc]
        previous = genesis(chain_id)
        rows: list[Any] = conn.execute(
            f"SELECT seq, {', '.join(CONTENT_COLUMNS)} FROM journal.calls ORDER BY seq".encode()
        ).fetchall()
        for seq, *values in rows:
            previous = row_hash(previous, chain_id, seq, Content(*values))
            conn.execute("UPDATE journal.calls SET row_hash = %s WHERE seq = %s", (previous, seq))
    found = problems(written, journal_key.verifier())
    assert [problem.split(":")[0] for problem in found] == ["row 20", "row 30"], found
    assert all("re-hashed" in problem for problem in found)


def test_a_chain_no_gateway_started_is_refused(written: str, journal_key: SigningKey) -> None:
    """Rows under a chain id of their own, with no signed start, are not the gateways'."""
    tamper(written, "UPDATE journal.calls SET chain_id = gen_random_uuid() WHERE seq = 30")
    found = problems(written, journal_key.verifier())
    assert "chain ends at row 29, before its head signed at row 30 (cut back)" in found
    assert "rows of a chain no gateway registered (inserted)" in found


def test_chains_checked_in_parallel_are_reported_as_one_process_reports_them(
    written: str, journal_key: SigningKey
) -> None:
    """Two chains, each tampered: the processes' reports are the sequential ones, in their order."""
    tamper(written, "UPDATE journal.calls SET recipient = '21690123100011' WHERE seq = 12")
    tamper(written, "UPDATE journal.calls SET chain_id = gen_random_uuid() WHERE seq = 30")
    timing = dataclasses.replace(TIMING, now=dt.datetime.now(dt.UTC))  # one judgement of lateness
    with psycopg.connect(written) as conn:
        alone = verify(conn, journal_key.verifier(), timing)
    together = verify_in_parallel(written, journal_key.verifier(), timing, jobs=2)
    assert len(alone) == 2 and all(report.problems for report in alone)
    assert together == alone


def test_an_unknown_key_fails_every_signature(written: str, tmp_path: Any) -> None:
    _, other = generate(tmp_path, "other")
    found = problems(written, Verifier.from_files([other]))
    assert found and all(
        "signature invalid or by an unknown key" in problem or "signed start" in problem for problem in found
    )


OLD_JOURNAL = Path(__file__).parent / "data"
"""Rows, chain and checkpoints written by the gateway before the columns were declared once."""


def test_a_row_hashes_as_it_always_has() -> None:
    """The row encoding is a contract with every journal already written: a known row, its known hash."""
    chain = uuid.UUID("5f3c1d0e-8a7b-4c2d-9e1f-0a1b2c3d4e5f")
    expected = "dcd0d765504c60376848f5eed7aad7ce369ba2d56199a9c483d647fed70be813"
    assert row_hash(genesis(chain), chain, 1, _known_content()).hex() == expected


def _known_content() -> Content:
    return Content(
        entry_id=uuid.UUID("0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b"),
        occurred_at=dt.datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=dt.UTC),
        request_id="req-1",
        token_id="0b7c8f2e-5f0e-4a53-9d5c-0d1c2b3a4f5e",
        habilitation="CCAS de Lyon",
        recipient="13002526500013",
        method="/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
        api="cnaf.quotient_familial",
        provider="cnaf",
        status="OK",
        code="",
        latency_us=1500,
        subject_digest="ab" * 32,
    )


def test_a_row_naming_its_habilitation_hashes_as_v2_and_one_naming_none_as_v1() -> None:
    """The references of journal migration 2 change the encoding only of the rows that name one."""
    chain = uuid.UUID("5f3c1d0e-8a7b-4c2d-9e1f-0a1b2c3d4e5f")
    content = _known_content()
    v1 = row_hash(genesis(chain), chain, 1, content).hex()
    named = dataclasses.replace(content, habilitation_id="8c3a6f0e-2b1d-4e5f-9a7b-6c5d4e3f2a1b")

    assert v1 == "dcd0d765504c60376848f5eed7aad7ce369ba2d56199a9c483d647fed70be813"
    assert row_hash(genesis(chain), chain, 1, named).hex() == (
        "1d91da8f3de7978f30d785296eeb12b061ecf96d9c11d2cc5912e9a4f33545fc"
    )
    # Each reference counts, and so does its place: an editor id is not a delegation id.
    references: list[dict[str, Any]] = [{column: "x"} for column in REFERENCES]
    hashes = {
        row_hash(genesis(chain), chain, 1, dataclasses.replace(content, **named)) for named in references
    }
    assert len(hashes) == len(REFERENCES) and v1 not in {h.hex() for h in hashes}


async def test_rows_naming_their_habilitation_verify_and_a_changed_reference_is_named(
    journal_db: str, journal_key: SigningKey
) -> None:
    journal = journal_on(journal_db, journal_key, batch_rows=10, checkpoint_seconds=0.0001)
    async with started(journal):
        for number in range(10):
            call = quotient_call(f"req-{number}", lefebvre())
            journal.record(dataclasses.replace(call, habilitation_id=f"habilitation-{number % 2}"))
        record(journal, "req-10")  # a token without registry: no reference, a v1 row
        await drained(journal)
    with psycopg.connect(journal_db) as conn:
        stored = conn.execute("SELECT habilitation_id FROM journal.calls ORDER BY seq").fetchall()
    assert [row[0] for row in stored] == [f"habilitation-{n % 2}" for n in range(10)] + [None]
    assert problems(journal_db, journal_key.verifier()) == []

    tamper(journal_db, "UPDATE journal.calls SET habilitation_id = NULL WHERE seq = 3")
    tamper(journal_db, "UPDATE journal.calls SET delegation_id = 'delegation' WHERE seq = 11")

    found = problems(journal_db, journal_key.verifier())
    assert [problem.split(":")[0] for problem in found] == ["row 3", "row 11"], found


async def test_a_journal_written_by_the_first_release_still_verifies(journal_db: str) -> None:
    async with await psycopg.AsyncConnection.connect(journal_db, autocommit=True) as conn:
        await migrate(conn)
        await ensure_partitions(conn, [dt.date(2026, 12, 1)])
    with psycopg.connect(journal_db) as conn:
        conn.execute((OLD_JOURNAL / "v1-journal.sql").read_bytes())
    verifier = Verifier.from_files([OLD_JOURNAL / "v1-journal-signing.public.pem"])
    with psycopg.connect(journal_db) as conn:
        reports = verify(conn, verifier, TIMING)
    assert [(report.rows, report.signed_seq, report.problems) for report in reports] == [(6, 6, [])]


GROUPS, GROUP_ROWS, GROUP_SECONDS = 4, 5, 0.6
STRICT = Timing(checkpoint_seconds=0.2, margin_seconds=0.2)
"""Rows signed within 0.4 s: the `spread` journal's writer signs each group as it writes it."""


@pytest.fixture
async def spread(journal_db: str, journal_key: SigningKey, tmp_path: Path) -> tuple[str, Path]:
    """GROUPS groups of rows GROUP_SECONDS apart, each signed as written; the journal and its witness."""
    witness = tmp_path / "witness.jsonl"
    journal = journal_on(journal_db, journal_key, witness, batch_rows=GROUP_ROWS, checkpoint_seconds=0.0001)
    async with started(journal):
        for group in range(GROUPS):
            if group:
                await asyncio.sleep(GROUP_SECONDS)
            for number in range(GROUP_ROWS):
                record(journal, f"req-{group}-{number}")
            await drained(journal)
    return journal_db, witness


def findings(url: str, key: SigningKey, timing: Timing = STRICT, witness: Path | None = None) -> list[str]:
    witnessed = [] if witness is None else read_witness(witness)
    with psycopg.connect(url) as conn:
        return [
            problem
            for report in verify(conn, key.verifier(), timing, witnessed)
            for problem in report.problems
        ]


def test_a_spread_journal_verifies_with_its_witness(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    url, witness = spread
    assert findings(url, journal_key, witness=witness) == []
    assert len(read_witness(witness)) == GROUPS + 1  # the start and each group's head


def later(seconds: float) -> Timing:
    """STRICT as it judges ``seconds`` from now."""
    return Timing(
        STRICT.checkpoint_seconds,
        STRICT.margin_seconds,
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
    )


def test_every_checkpoint_but_the_start_deleted_and_a_row_re_hashed_is_named(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    """The drill: one row turned from OK to NOT_FOUND, the rows after re-hashed, the checkpoints gone."""
    url, _ = spread
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM journal.checkpoints WHERE seq > 0")
        conn.execute("UPDATE journal.calls SET status = 'NOT_FOUND' WHERE seq = 8")
        rehash(conn)
    found = findings(url, journal_key, later(5))
    # Five seconds on, every row should have been signed long ago.
    assert found == [
        f"rows 1 to {GROUPS * GROUP_ROWS}: unsigned more than 0.4 s after written "
        "(rewritten after the last signed head, or their gateway died before signing)"
    ], found


def test_checkpoints_removed_inside_a_chain_are_named(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    url, _ = spread
    tamper(url, f"DELETE FROM journal.checkpoints WHERE seq = {2 * GROUP_ROWS}")
    found = findings(url, journal_key)
    assert found == [
        f"rows {GROUP_ROWS + 1} to {2 * GROUP_ROWS}: signed more than 0.4 s after written "
        "(checkpoints removed)"
    ], found


def sign_last_head_late(url: str, key: SigningKey, seconds: float, *, keep_before: bool = True) -> None:
    """Sign the chain's last row ``seconds`` from now instead of when it was written: as the gateway
    that takes over a killed one's write-ahead file does (its head and the checkpoint before it
    deleted first, that one too unless ``keep_before``)."""
    last = GROUPS * GROUP_ROWS
    late = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    signer = key.signer()
    with psycopg.connect(url) as conn:
        (chain_id, head) = conn.execute(
            "SELECT chain_id, row_hash FROM journal.calls WHERE seq = %s", (last,)
        ).fetchone()  # type: ignore[misc]
        gone = last if keep_before else last - GROUP_ROWS
        conn.execute("DELETE FROM journal.checkpoints WHERE seq >= %s", (gone,))
        conn.execute(
            "INSERT INTO journal.checkpoints (chain_id, seq, head_hash, signed_at, key_id, signature) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (chain_id, last, head, late, signer.key_id, signer.sign(chain_id, last, bytes(head), late)),
        )


def test_a_killed_gateway_s_last_rows_signed_late_on_takeover_are_on_time(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    """A last checkpoint at the chain's last row: its rows are judged by when that last row was written."""
    url, _ = spread
    sign_last_head_late(url, journal_key, 5)
    assert findings(url, journal_key, later(6)) == []


def test_a_late_last_checkpoint_does_not_hide_the_checkpoint_removed_before_it(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    url, _ = spread
    sign_last_head_late(url, journal_key, 5, keep_before=False)
    found = findings(url, journal_key, later(6))
    assert found == [
        f"rows {(GROUPS - 2) * GROUP_ROWS + 1} to {(GROUPS - 1) * GROUP_ROWS}: signed more than 0.4 s after "
        "written (checkpoints removed)"
    ], found


def test_a_row_appended_with_a_correct_hash_is_named_once_it_should_have_been_signed(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    url, _ = spread
    last = GROUPS * GROUP_ROWS
    with psycopg.connect(url) as conn:
        (chain_id, stored) = conn.execute(
            "SELECT chain_id, row_hash FROM journal.calls WHERE seq = %s", (last,)
        ).fetchone()  # type: ignore[misc]
        values = conn.execute(
            f"SELECT {', '.join(CONTENT_COLUMNS)} FROM journal.calls WHERE seq = 1".encode()
        ).fetchone()
        assert values is not None
        forged = dataclasses.replace(Content(*values), entry_id=uuid.uuid4())
        digest = row_hash(bytes(stored), chain_id, last + 1, forged)
        conn.execute(
            f"INSERT INTO journal.calls (chain_id, seq, {', '.join(CONTENT_COLUMNS)}, row_hash) "
            f"VALUES (%s, %s, {', '.join(['%s'] * len(CONTENT_COLUMNS))}, %s)".encode(),
            (chain_id, last + 1, *forged.values(), digest),
        )
    assert findings(url, journal_key, later(5))[0].startswith(f"row {last + 1}: unsigned more than 0.4 s")


def test_a_chain_removed_with_its_checkpoints_is_named_by_the_witness(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    url, witness = spread
    tamper(url, "DELETE FROM journal.calls; DELETE FROM journal.chains")
    assert findings(url, journal_key) == []
    found = findings(url, journal_key, witness=witness)
    assert found == [
        f"witnessed up to row {GROUPS * GROUP_ROWS}, missing from the journal (removed with its checkpoints)"
    ]


def test_a_chain_cut_back_with_its_checkpoints_is_named_by_the_witness(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    url, witness = spread
    cut = 3 * GROUP_ROWS
    tamper(
        url, f"DELETE FROM journal.calls WHERE seq > {cut}; DELETE FROM journal.checkpoints WHERE seq > {cut}"
    )
    assert findings(url, journal_key) == []
    found = findings(url, journal_key, witness=witness)
    assert found == [
        f"checkpoint at row {GROUPS * GROUP_ROWS}: witnessed, missing from the journal (deleted)",
        f"chain ends at row {cut}, before its head signed at row {GROUPS * GROUP_ROWS} (cut back)",
    ], found


def test_a_checkpoint_deleted_and_its_rows_re_hashed_is_named_by_the_witness(
    spread: tuple[str, Path], journal_key: SigningKey
) -> None:
    """Within the timing's margin the deletion alone does not show; the witness still has the head."""
    url, witness = spread
    with psycopg.connect(url) as conn:
        conn.execute(f"DELETE FROM journal.checkpoints WHERE seq >= {2 * GROUP_ROWS}")
        conn.execute("UPDATE journal.calls SET status = 'NOT_FOUND' WHERE seq = 8")
        rehash(conn)
    lenient = Timing(checkpoint_seconds=60)
    found = findings(url, journal_key, lenient, witness)
    assert [problem.split(":")[0] for problem in found] == [
        f"checkpoint at row {seq}" for seq in range(2 * GROUP_ROWS, GROUPS * GROUP_ROWS + 1, GROUP_ROWS)
    ] + [f"row {seq}" for seq in range(2 * GROUP_ROWS, GROUPS * GROUP_ROWS + 1, GROUP_ROWS)], found


def rehash(conn: psycopg.Connection[Any]) -> None:
    """Re-compute every row's hash with the public algorithm, as a forger would."""
    (chain_id,) = conn.execute("SELECT chain_id FROM journal.calls LIMIT 1").fetchone()  # type: ignore[misc]
    previous = genesis(chain_id)
    rows: list[Any] = conn.execute(
        f"SELECT seq, {', '.join(CONTENT_COLUMNS)} FROM journal.calls ORDER BY seq".encode()
    ).fetchall()
    for seq, *values in rows:
        previous = row_hash(previous, chain_id, seq, Content(*values))
        conn.execute("UPDATE journal.calls SET row_hash = %s WHERE seq = %s", (previous, seq))
