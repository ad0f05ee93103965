"""``python -m gateway.admin journal``: the journal's signing key, its verification, an auditor's search.

- ``journal keygen --keys-dir DIR``: an Ed25519 key pair for the journal's checkpoints
  (``journal-signing.private.pem`` for the gateways' ``JOURNAL_SIGNING_KEY_FILE``,
  ``journal-signing.public.pem`` for whoever verifies).
- ``journal verify --public-key FILE [--witness FILE] [--checkpoint-seconds S]
  [--margin-seconds S] [--retention-months M] [--jobs N]``: checks every chain (``N`` at
  once, each in a process of its own), signed head and how late rows were signed, and the
  chain heads a witness file kept (`gateway.journal.verify`, `gateway.journal.witness`);
  exit 1, naming each row at fault, when the journal was tampered with.
- ``journal search --nom … --prenom … [--ine …] [--identifiant …]``: the calls about a
  person, for a data-protection officer answering a request: the same identity flags as
  the client, the HMAC key (``JOURNAL_HMAC_KEY``) and PostgreSQL, nothing else.

The database is ``--database-url`` or ``JOURNAL_DATABASE_URL``. Exit codes: 0 done (and,
for verify, the journal intact); 1 tampering found or a key refused; 2 invalid arguments;
3 PostgreSQL unreachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg
from google.protobuf import json_format

from apiparticulier.common.v1 import identity_pb2
from contract.identity_flags import identity_flags, identity_from_flags
from gateway.admin.cli import setting_default
from gateway.journal import Journal, identity_forms
from gateway.journal.queries import MAX_ACCESSES, as_json, calls_about
from gateway.journal.signing import SigningKeyError, Verifier, generate
from gateway.journal.verify import (
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_MARGIN_SECONDS,
    Timing,
    verify,
    verify_in_parallel,
)
from gateway.journal.witness import WitnessedHead, WitnessError, read_witness

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3

KEY_NAME = "journal-signing"
"""The file name of the key pair ``keygen`` makes."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _database_url(args: argparse.Namespace) -> str | None:
    url: str = args.database_url or os.environ.get("JOURNAL_DATABASE_URL", "")
    if not url:
        _say("error: no database: pass --database-url or set JOURNAL_DATABASE_URL")
        return None
    return url


def _unreachable(exc: psycopg.Error) -> int:
    _say(f"error: the journal's PostgreSQL cannot be read ({type(exc).__name__}); nothing was checked")
    return EXIT_DATABASE


def _keygen(args: argparse.Namespace) -> int:
    try:
        private_file, public_file = generate(args.keys_dir, args.name)
    except SigningKeyError as exc:
        _say(f"error: {exc}")
        return EXIT_TAMPERED
    _say(f"created the journal's Ed25519 key pair: {private_file.name} is JOURNAL_SIGNING_KEY_FILE")
    _say(f"give {public_file.name} to whoever verifies the journal; it signs nothing else")
    print(public_file)
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    url = _database_url(args)
    if url is None:
        return EXIT_USAGE
    try:
        verifier = Verifier.from_files(args.public_key)
    except SigningKeyError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    witnessed: list[WitnessedHead] = []
    for path in args.witness or ():
        try:
            witnessed += read_witness(path)
        except OSError as exc:
            _say(f"error: cannot read the witness {path}: {exc.strerror}")
            return EXIT_USAGE
        except WitnessError as exc:
            _say(f"error: {exc}")
            return EXIT_TAMPERED
    timing = Timing(args.checkpoint_seconds, args.margin_seconds)
    try:
        if args.jobs > 1:
            reports = verify_in_parallel(
                url, verifier, timing, witnessed, args.retention_months, jobs=args.jobs
            )
        else:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                reports = verify(conn, verifier, timing, witnessed, args.retention_months)
    except psycopg.Error as exc:
        return _unreachable(exc)
    failed = [report for report in reports if report.problems]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "chain": str(report.chain_id),
                        "rows": report.rows,
                        "signed_up_to": report.signed_seq,
                        "unsigned": report.unsigned,
                        "problems": report.problems,
                    }
                    for report in reports
                ],
                indent=2,
            )
        )
    else:
        for report in reports:
            state = "TAMPERED" if report.problems else "ok"
            unsigned = f", {report.unsigned} after its last signed head" if report.unsigned else ""
            print(
                f"chain {report.chain_id}: {state}, {report.rows} rows, "
                f"signed up to row {report.signed_seq}{unsigned}"
            )
            for problem in report.problems:
                print(f"  chain {report.chain_id} {problem}")
        rows = sum(report.rows for report in reports)
        print(f"{len(reports)} chains, {rows} rows: " + (f"{len(failed)} TAMPERED" if failed else "intact"))
    return EXIT_TAMPERED if failed else EXIT_OK


def _subject_digests(args: argparse.Namespace, journal: Journal) -> list[str]:
    forms: list[str] = []
    identity = identity_from_flags(args)
    if identity:
        pivot = identity_pb2.IdentityPivot()
        try:
            json_format.ParseDict(identity, pivot)
        except json_format.ParseError as error:
            raise ValueError(f"bad identity: {error}") from None
        if not pivot.nom_naissance or not pivot.prenoms:
            raise ValueError("an identity needs at least --nom and --prenom")
        forms += identity_forms(pivot)
    if args.ine:
        forms.append("ine|" + "".join(args.ine.split()).upper())
    if args.identifiant:
        forms.append("france_travail|" + args.identifiant.strip())
    if not forms:
        raise ValueError("no person: give an identity (--nom, --prenom, …), --ine or --identifiant")
    return journal.digests(forms)


def _search(args: argparse.Namespace) -> int:
    key = os.environ.get("JOURNAL_HMAC_KEY", "")
    if args.hmac_key_file is not None:
        key = args.hmac_key_file.read_text().strip()
    if not key:
        _say("error: no HMAC key: set JOURNAL_HMAC_KEY or pass --hmac-key-file")
        return EXIT_USAGE
    try:
        digests = _subject_digests(args, Journal(key.encode()))
    except ValueError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    url = _database_url(args)
    if url is None:
        return EXIT_USAGE
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            accesses = calls_about(conn, digests, args.limit)
    except psycopg.Error as exc:
        return _unreachable(exc)
    if args.json:
        print(json.dumps([as_json(access) for access in accesses], ensure_ascii=False, indent=2))
        return EXIT_OK
    _say(
        f"{len(accesses)} calls about this person"
        + (" (the most recent)" if len(accesses) == args.limit else "")
    )
    for access in accesses:
        outcome = access.status + (f" {access.code}" if access.code else "")
        print(
            "  ".join(
                (
                    f"{access.occurred_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z",
                    access.recipient or "-",
                    access.api or access.method,
                    outcome,
                    access.habilitation or "-",
                    f"request {access.request_id}",
                    f"token {access.token_id or '-'}",
                )
            )
        )
    return EXIT_OK


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def register(commands: Any) -> None:
    """Add ``journal`` and its subcommands to the admin CLI's parser."""
    journal = commands.add_parser(
        "journal", help="the journal: signing key, verification, an auditor's search"
    )
    actions = journal.add_subparsers(dest="journal_command", required=True, metavar="ACTION")

    def with_database(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--database-url", help="the journal's postgresql:// URL (default: $JOURNAL_DATABASE_URL)"
        )
        sub.add_argument("--json", action="store_true", help="JSON instead of lines")

    keygen = actions.add_parser("keygen", help="create the Ed25519 key pair that signs the journal")
    keygen.add_argument("--keys-dir", type=Path, required=True, help="directory to write the key pair in")
    keygen.add_argument("--name", default=KEY_NAME, help=f"file name of the pair (default {KEY_NAME})")
    keygen.set_defaults(handler=_keygen)

    check = _add_verify(actions)
    with_database(check)
    check.set_defaults(handler=_verify)

    search = actions.add_parser("search", help="the calls about one person (needs JOURNAL_HMAC_KEY)")
    people = search.add_argument_group("the person (the client's flags)")
    identity_flags(people)
    people.add_argument("--ine", help="INE of a student")
    people.add_argument("--identifiant", help="France Travail identifiant")
    search.add_argument(
        "--hmac-key-file", type=Path, help="file holding the HMAC key (default: $JOURNAL_HMAC_KEY)"
    )
    search.add_argument(
        "--limit", type=int, default=MAX_ACCESSES, help=f"most calls listed (default {MAX_ACCESSES})"
    )
    with_database(search)
    search.set_defaults(handler=_search)


def _add_verify(actions: Any) -> argparse.ArgumentParser:
    """``journal verify`` and its flags, but the database's."""
    check: argparse.ArgumentParser = actions.add_parser(
        "verify", help="check every chain and signed head; exit 1 if tampered"
    )
    check.add_argument(
        "--public-key",
        type=Path,
        action="append",
        required=True,
        help="a trusted public key; repeat for several",
    )
    check.add_argument(
        "--witness",
        type=Path,
        action="append",
        help="a witness file of the gateways' signed heads (JOURNAL_WITNESS_FILE); repeat for several",
    )
    check.add_argument(
        "--checkpoint-seconds",
        type=_positive_seconds,
        default=setting_default("journal_checkpoint_seconds"),
        help="the gateways' JOURNAL_CHECKPOINT_SECONDS (default: $JOURNAL_CHECKPOINT_SECONDS or 5)",
    )
    check.add_argument(
        "--margin-seconds",
        type=_positive_seconds,
        default=DEFAULT_MARGIN_SECONDS,
        help=f"how much later than that a row may be signed (default {DEFAULT_MARGIN_SECONDS:g})",
    )
    check.add_argument(
        "--retention-months",
        type=int,
        default=setting_default("journal_retention_months"),
        help="JOURNAL_RETENTION_MONTHS: older witnessed chains are not expected (default: $… or 12)",
    )
    check.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        help="chains checked at once, each by a process of its own (up to the cores; default 1)",
    )
    return check
