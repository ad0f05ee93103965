"""``python -m gateway.admin``: keys, tokens (issue, list, revoke), maintenance windows, the journal.

``issue``, ``list``, ``revoke`` and the FranceConnect links write the gateways' Redis directly:
the tokens of a gateway without a registry (``REGISTRY_DATABASE_URL`` empty), which trusts
their claims. A gateway that reads the registry takes the admin API's tokens
(`gateway.admin.habilitations`: ``habilitation …``, ``token …``).

Exit codes: 0 done; 1 refused (unknown kid or jti, key file problem); 2 invalid
arguments; 3 Redis unreachable. Messages go to standard error; standard output
carries only the result (the token for ``issue``, the table or JSON for ``list``).
``journal`` (keygen, verify, search) has its own exit codes (`gateway.admin.journal`).
"""

from __future__ import annotations

# Each command imports what it uses, in its handler or its group's registration, not here: an
# operator's command, a `make run` line or a test is a process of its own, and importing every
# command's stack (Redis and its telemetry, the settings, JWT, PostgreSQL, gRPC) cost it 1.3 s.
import argparse
import datetime
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND, TOKEN_LIFETIME_MAX_DAYS, is_rate_limit

if TYPE_CHECKING:
    import redis

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_REDIS = 3
EXIT_PIPE = 128 + 13
"""The reader of the output went away (``| head``): a shell's status for a writer ended by SIGPIPE."""

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_LABEL = 200


class UsageError(Exception):
    """An argument is invalid; the message says which and why."""


def setting_default(name: str) -> str:
    """The gateway's default for its setting ``name``, overridden by its environment variable, as there.

    A string, which argparse converts with the option's ``type`` as it would a value given.
    """
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    field = GatewaySettings.model_fields[name]
    return os.environ.get(name.upper(), str(field.default))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, parts.fragment))


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _redis(url: str) -> redis.Redis:
    from gateway.redis.client import connect_sync  # noqa: PLC0415

    return connect_sync(url, socket_timeout=5, socket_connect_timeout=5)


def _close(client: redis.Redis) -> None:
    from gateway.redis.client import close_sync  # noqa: PLC0415

    close_sync(client)


# -- keygen ----------------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    from gateway.admin import keys  # noqa: PLC0415

    kid = args.kid or f"es256-{datetime.datetime.now(datetime.UTC):%Y%m%d}-{uuid.uuid4().hex[:6]}"
    private_file, public_file = keys.generate(args.keys_dir, kid)
    _say(f"created ES256 key pair {kid!r}: give {public_file.name} to the gateways (KEYS_DIR)")
    _say(f"keep {private_file.name} secret: it signs tokens")
    print(kid)
    return EXIT_OK


# -- issue -----------------------------------------------------------------------------------------


def _checked_scopes(requested: Sequence[str]) -> list[str]:
    from contract.routes import contract_scopes  # noqa: PLC0415

    known = contract_scopes()
    unknown = sorted({scope for scope in requested if scope not in known})
    if unknown:
        raise UsageError(f"unknown scope(s): {', '.join(unknown)}; known scopes: {', '.join(sorted(known))}")
    return list(dict.fromkeys(requested))  # order kept, duplicates dropped


def _claims(args: argparse.Namespace, now: int) -> dict[str, Any]:
    from gateway.recipient import is_valid_siret  # noqa: PLC0415

    label = args.label.strip()
    if not label or len(label) > _MAX_LABEL:
        raise UsageError(f"--label must be 1 to {_MAX_LABEL} characters")
    if not is_valid_siret(args.siret):
        raise UsageError(f"--siret {args.siret!r} is not a SIRET: 14 digits passing the Luhn check")
    if not 1 <= args.days <= TOKEN_LIFETIME_MAX_DAYS:
        raise UsageError(f"--days must be from 1 to {TOKEN_LIFETIME_MAX_DAYS} (ten years)")
    if args.rate_limit is not None and not is_rate_limit(args.rate_limit):
        raise UsageError(f"--rate-limit must be from 1 to {RATE_LIMIT_MAX_PER_SECOND} requests per second")
    claims: dict[str, Any] = {
        "iss": args.issuer,
        "aud": args.audience,
        "sub": label,
        "jti": str(uuid.uuid4()),
        "siret": args.siret,
        "scopes": _checked_scopes(args.scope),
        "iat": now,
        "nbf": now,
        "exp": now + args.days * 86400,
    }
    if args.rate_limit is not None:
        claims["rate_limit"] = args.rate_limit
    return claims


def _issue(args: argparse.Namespace) -> int:
    import jwt  # noqa: PLC0415

    from gateway.admin import keys, registry  # noqa: PLC0415

    claims = _claims(args, int(time.time()))
    key = keys.load_private(args.keys_dir, keys.check_kid(args.kid))
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": args.kid, "typ": "JWT"})
    # Registered before it is shown: a token nobody can list or revoke must not exist.
    client = _redis(args.redis_url)
    try:
        registry.register(client, claims)
    finally:
        _close(client)
    expires = datetime.datetime.fromtimestamp(claims["exp"], datetime.UTC)
    _say(
        f"issued token {claims['jti']} for {claims['sub']!r} (SIRET {claims['siret']}), "
        f"{len(claims['scopes'])} scope(s), expires {expires:%Y-%m-%d %H:%M} UTC"
    )
    print(token)
    return EXIT_OK


# -- list ------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    from gateway.admin import registry  # noqa: PLC0415

    client = _redis(args.redis_url)
    try:
        records = registry.list_tokens(client)
    finally:
        _close(client)
    now = time.time()
    if args.json:
        print(json.dumps([record.as_json(now) for record in records], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not records:
        _say("no token registered")
        return EXIT_OK
    header = ("JTI", "STATUS", "EXPIRES (UTC)", "SIRET", "RATE/S", "SCOPES", "LABEL")
    rows = [
        (
            record.jti,
            record.status(now),
            "-"
            if record.exp is None
            else f"{datetime.datetime.fromtimestamp(record.exp, datetime.UTC):%Y-%m-%d}",
            record.siret,
            "default" if record.rate_limit is None else str(record.rate_limit),
            str(len(record.scopes)),
            record.label,
        )
        for record in records
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


# -- revoke ----------------------------------------------------------------------------------------


def _revoke(args: argparse.Namespace) -> int:
    from gateway.admin import registry  # noqa: PLC0415

    jti = args.jti.strip().lower()
    if not _UUID.fullmatch(jti):
        raise UsageError(f"{args.jti!r} is not a token jti (a UUID)")
    client = _redis(args.redis_url)
    try:
        record = registry.revoke(client, jti)
    except registry.UnknownTokenError:
        _say(f"error: no token with jti {jti} is registered; nothing revoked")
        return EXIT_REFUSED
    finally:
        _close(client)
    _say(f"revoked token {jti} of {record.label!r}: refused by every gateway from its next call")
    print(jti)
    return EXIT_OK


# -- FranceConnect clients -------------------------------------------------------------------------


def _link_france_connect(args: argparse.Namespace) -> int:
    from gateway.admin import registry  # noqa: PLC0415
    from gateway.france_connect import clients as france_connect_clients  # noqa: PLC0415
    from gateway.registry.model import CLIENT_ID_SHAPE  # noqa: PLC0415

    jti = args.jti.strip().lower()
    if not _UUID.fullmatch(jti):
        raise UsageError(f"{args.jti!r} is not a token jti (a UUID)")
    if not CLIENT_ID_SHAPE.fullmatch(args.client_id):
        raise UsageError(f"{args.client_id!r} is not a FranceConnect client id")
    client = _redis(args.redis_url)
    try:
        record = registry.record_of(client, jti)
        if record.status(time.time()) != "active":
            _say(f"error: token {jti} is {record.status(time.time())}; nothing linked")
            return EXIT_REFUSED
        france_connect_clients.link(client, args.client_id, record)
    except registry.UnknownTokenError:
        _say(f"error: no token with jti {jti} is registered; nothing linked")
        return EXIT_REFUSED
    finally:
        _close(client)
    _say(
        f"FranceConnect client {args.client_id} now calls under token {jti} of {record.label!r} "
        "(seen by every gateway within FRANCE_CONNECT_LINK_CACHE_SECONDS)"
    )
    print(args.client_id)
    return EXIT_OK


def _unlink_france_connect(args: argparse.Namespace) -> int:
    from gateway.france_connect import clients as france_connect_clients  # noqa: PLC0415

    client = _redis(args.redis_url)
    try:
        found = france_connect_clients.unlink(client, args.client_id)
    finally:
        _close(client)
    if not found:
        _say(f"error: FranceConnect client {args.client_id!r} is linked to no token; nothing changed")
        return EXIT_REFUSED
    _say(f"FranceConnect client {args.client_id} unlinked")
    print(args.client_id)
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------------


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the CLI: every command, or only ``command``'s group when it names one.

    The help (no command, ``--help``) and a name no group declares (argparse's "invalid
    choice", or a command added to a group and not to ``COMMAND_GROUPS``) get every command.
    """
    parser = argparse.ArgumentParser(
        prog="python -m gateway.admin",
        description="Administer API Particulier tokens: signing keys, issuing, listing, revoking.",
        epilog="Exit codes: 0 done, 1 refused, 2 invalid arguments, 3 Redis unreachable.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    known = any(command in names for names in COMMAND_GROUPS)
    for names, add in COMMAND_GROUPS.items():
        if not known or command in names:
            add(commands)
    return parser


def _with_keys_dir(sub: argparse.ArgumentParser) -> None:
    default = os.environ.get("KEYS_DIR")
    sub.add_argument(
        "--keys-dir",
        type=Path,
        default=Path(default) if default else None,
        required=default is None,
        help="directory of <kid>.private.pem / <kid>.public.pem (default: $KEYS_DIR)",
    )


def _with_redis(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--redis-url",
        default=setting_default("redis_url"),
        help="Redis of the gateways (default: $REDIS_URL)",
    )


def _add_token_commands(commands: Any) -> None:
    """``keygen``, ``issue`` and ``list``: the signing keys and the tokens."""
    from gateway.registry.model import TOKEN_DEFAULT_DAYS  # noqa: PLC0415

    keygen = commands.add_parser("keygen", help="create an ES256 (P-256) signing key pair")
    _with_keys_dir(keygen)
    keygen.add_argument("--kid", help="key id (default: es256-<date>-<random>)")
    keygen.set_defaults(handler=_keygen)

    issue = commands.add_parser("issue", help="issue a token (a gateway without a registry); prints the JWT")
    _with_keys_dir(issue)
    issue.add_argument("--kid", required=True, help="key id of the signing key")
    issue.add_argument("--label", required=True, help="the habilitation the token is for (claim sub)")
    issue.add_argument("--siret", required=True, help="SIRET of the organisation holding the habilitation")
    issue.add_argument("--scope", action="append", required=True, help="a scope granted; repeat for several")
    issue.add_argument(
        "--days",
        type=_whole_number,
        default=TOKEN_DEFAULT_DAYS,
        help=f"lifetime in days, 1 to {TOKEN_LIFETIME_MAX_DAYS} (default {TOKEN_DEFAULT_DAYS})",
    )
    issue.add_argument(
        "--rate-limit",
        type=_whole_number,
        help=f"requests per second for this token, 1 to {RATE_LIMIT_MAX_PER_SECOND} (default: the gateway's)",
    )
    issue.add_argument(
        "--issuer", default=setting_default("token_issuer"), help="claim iss (default: $TOKEN_ISSUER)"
    )
    issue.add_argument(
        "--audience", default=setting_default("token_audience"), help="claim aud (default: $TOKEN_AUDIENCE)"
    )
    _with_redis(issue)
    issue.set_defaults(handler=_issue)

    listing = commands.add_parser("list", help="list the tokens of issue (never the tokens themselves)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    _with_redis(listing)
    listing.set_defaults(handler=_list)


def _add_journal_commands(commands: Any) -> None:
    from gateway.admin import journal  # noqa: PLC0415

    journal.register(commands)


def _add_admin_api_commands(commands: Any) -> None:
    from gateway.admin import habilitations  # noqa: PLC0415

    habilitations.register(commands, setting_default("redis_url"))


def _add_maintenance_commands(commands: Any) -> None:
    from gateway.admin import maintenance  # noqa: PLC0415

    maintenance.register(commands)


def _add_registry_commands(commands: Any) -> None:
    """``revoke`` and the FranceConnect clients' links: what every gateway reads in Redis."""
    for name, help_text, handler, positionals in (
        ("revoke", "revoke a token of issue everywhere", _revoke, (("jti", "the token's jti (see list)"),)),
        (
            "link-france-connect",
            "count a FranceConnect client's calls (FranceConnect token alone) against a token",
            _link_france_connect,
            (
                ("client_id", "the FranceConnect client id the access tokens are issued to"),
                ("jti", "the token whose habilitation the calls use (see list)"),
            ),
        ),
        (
            "unlink-france-connect",
            "remove a FranceConnect client's link",
            _unlink_france_connect,
            (("client_id", "the FranceConnect client id"),),
        ),
    ):
        command = commands.add_parser(name, help=help_text)
        for positional, positional_help in positionals:
            command.add_argument(positional, help=positional_help)
        _with_redis(command)
        command.set_defaults(handler=handler)


COMMAND_GROUPS: dict[tuple[str, ...], Callable[[Any], None]] = {
    ("keygen", "issue", "list"): _add_token_commands,
    ("revoke", "link-france-connect", "unlink-france-connect"): _add_registry_commands,
    ("journal",): _add_journal_commands,
    (
        "habilitation",
        "editor",
        "delegation",
        "france-connect-client",
        "invitation",
        "token",
        "audit",
        "migrate-redis-tokens",
    ): _add_admin_api_commands,
    ("maintenance",): _add_maintenance_commands,
}
"""The top-level commands, by the function that adds them (and imports their module), in help order.

A command missing here still runs (with every group's parser); tests/gateway/admin/test_cli.py
checks the names against what each group adds.
"""


def _key_file_error() -> type[Exception]:
    from gateway.admin import keys  # noqa: PLC0415

    return keys.KeyFileError


def _unreachable_errors() -> tuple[type[Exception], ...]:
    import redis  # noqa: PLC0415

    return (redis.RedisError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit code.
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    # The command is the first argument: the parser has no option before it but --help.
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        status = handler(args)
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's last flush
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"error: {exc}\n")
    # The except clauses below are evaluated only once a command has failed: their modules are
    # imported then, never on a command's way to success.
    except _key_file_error() as exc:
        _say(f"error: {exc}")
        return EXIT_REFUSED
    except BrokenPipeError:
        # Nothing left to say to whom; the interpreter's last flush must not fail on it either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except _unreachable_errors() as exc:
        where = (
            f"Redis at {_redacted(args.redis_url)}" if hasattr(args, "redis_url") else "a service it needs"
        )
        _say(f"error: {where} cannot be reached ({type(exc).__name__}); nothing was changed")
        return EXIT_REDIS
    return status
