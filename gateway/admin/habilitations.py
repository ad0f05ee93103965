"""The registry's commands of ``python -m gateway.admin``, clients of the admin API.

``habilitation …``, ``editor …``, ``delegation …``, ``invitation …``, ``token …``,
``france-connect-client …``, ``audit verify``, ``audit list``, ``migrate-redis-tokens``.

A client of the admin API (`gateway.registry`), the registry's only writer: it reaches it
at ``ADMIN_API_ADDRESS`` (host:port) with the operator secret ``ADMIN_API_TOKEN``, which
`make run` prints as one ``export`` line, over TLS when ``ADMIN_API_CA_FILE`` names the CA
of its certificate. Standard output carries only the result: the new id on the last line
for ``habilitation create``, ``editor create`` and ``delegation create`` (``invitation
create``: its id, then its secret on the last line; ``invitation accept``, which needs no
operator secret but ``INVITATION_SECRET``: the delegation's id), the JWT on the last line
for ``token issue`` (``--habilitation`` or ``--editor``), ``rotate`` and ``ban`` (with a
replacement), a table or JSON for the listings; messages go to standard error.

Exit codes: 0 done; 1 refused (unknown id, the record's state, the operator's role or
credential); 2 invalid arguments (the message names the field); 3 the admin API or its
database unreachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypedDict, TypeVar

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2

from apiparticulier.admin.v1 import admin_pb2, admin_pb2_grpc
from gateway.admin import registry as legacy
from gateway.redis.client import close_sync, connect_sync
from gateway.registry.model import DPO_FIELDS, TOKEN_DEFAULT_DAYS

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

ADDRESS_VARIABLE = "ADMIN_API_ADDRESS"
TOKEN_VARIABLE = "ADMIN_API_TOKEN"  # noqa: S105 - the name of the variable, not a secret
SECRET_VARIABLE = "INVITATION_SECRET"  # noqa: S105 - the name of the variable, not a secret
"""The invitation's secret for ``invitation accept``: from the environment, never on the command line."""
CA_VARIABLE = "ADMIN_API_CA_FILE"
"""PEM CA of the admin API's certificate: set, the CLI speaks TLS (no secret crosses a network in clear)."""
_DURATION = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIMEOUT_SECONDS = 15.0
"""Every call's deadline (`_Defaults`)."""
_REFUSED = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}

Item = TypeVar("Item")
Handler = Callable[[argparse.Namespace, admin_pb2_grpc.AdminServiceStub], int]
"""A command: its arguments and the admin API's stub (`_Defaults` on every call) → its exit code."""
Request = TypeVar("Request")


@dataclass(frozen=True, slots=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _Defaults(grpc.UnaryUnaryClientInterceptor):
    """What every call of a command carries: the operator's credential, if any, and the deadline."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Request], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Request,
    ) -> Any:
        """Call on with the credential's metadata and `_TIMEOUT_SECONDS`."""
        details = _CallDetails(
            client_call_details.method,
            _TIMEOUT_SECONDS,
            self._metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
            client_call_details.compression,
        )
        return continuation(details, request)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m`` or ``3600s``.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30d, 12h, 90m or 3600s")
    return dt.timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _day(stamp: timestamp_pb2.Timestamp) -> str:
    return f"{stamp.ToDatetime(dt.UTC):%Y-%m-%d %H:%M}" if stamp.seconds else "-"


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def done(message: str, *results: object) -> int:
    """A command's end: ``message`` on standard error, each result on a line of standard output; `EXIT_OK`.

    The last line is the one a script reads (the new id, the JWT, the secret).
    """
    _say(message)
    for result in results:
        print(result)
    return EXIT_OK


def _json(message: Any) -> None:
    print(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True), indent=2))


@dataclass(frozen=True, slots=True)
class Columns(Generic[Item]):
    """A table's header, and the row of one item under it."""

    header: tuple[str, ...]
    row: Callable[[Item], tuple[str, ...]]

    def print(self, items: Sequence[Item]) -> None:
        """The table of ``items`` on standard output (the header alone for none)."""
        _table(self.header, [self.row(item) for item in items])


def listing(
    args: argparse.Namespace, found: Any, items: Sequence[Item], columns: Columns[Item], nothing: str | None
) -> int:
    """Print a listing command's answer ``found``; its exit code (`EXIT_OK`).

    With ``--json``: ``found`` as JSON; else ``nothing`` on standard error when ``items`` is empty
    (None: the header alone), or the table of ``items``.
    """
    if args.json:
        _json(found)
    elif not items and nothing is not None:
        _say(nothing)
    else:
        columns.print(items)
    return EXIT_OK


# -- habilitations ---------------------------------------------------------------------------------


def _create_request(args: argparse.Namespace) -> admin_pb2.CreateHabilitationRequest:
    return admin_pb2.CreateHabilitationRequest(
        label=args.label,
        siret=args.siret,
        organisation_name=args.organisation_name,
        scopes=args.scope,
        allowed_ips=args.allowed_ip or [],
        rate_per_second=args.rate_per_second or 0,
        rate_per_minute=args.rate_per_minute or 0,
        contacts=args.contact or [],
        datapass_id=args.datapass_id,
        use_case=args.use_case,
        legal_basis=args.legal_basis,
    )


def _habilitation_create(args: argparse.Namespace, stub: Any) -> int:
    created = stub.CreateHabilitation(_create_request(args))
    habilitation = created.habilitation
    return done(
        f"created habilitation {habilitation.label!r} (SIRET {habilitation.siret}), "
        f"{len(habilitation.scopes)} scope(s)",
        habilitation.id,
    )


def _habilitation_update(args: argparse.Namespace, stub: Any) -> int:
    request = admin_pb2.UpdateHabilitationRequest(id=args.id)
    if args.label is not None:
        request.label = args.label
    if args.organisation_name is not None:
        request.organisation_name = args.organisation_name
    if args.scope is not None:
        request.scopes.values.extend(args.scope)
    if args.allowed_ip is not None or args.any_ip:
        request.allowed_ips.values.extend(args.allowed_ip or [])
    if args.contact is not None:
        request.contacts.values.extend(args.contact)
    if args.rate_per_second is not None:
        request.rate_per_second = args.rate_per_second
    if args.rate_per_minute is not None:
        request.rate_per_minute = args.rate_per_minute
    if args.status is not None:
        request.status = admin_pb2.HabilitationStatus.Value(f"HABILITATION_STATUS_{args.status.upper()}")
    updated = stub.UpdateHabilitation(request).habilitation
    return done(
        f"updated habilitation {updated.label!r}: its tokens take the change within seconds", updated.id
    )


def _habilitation_show(args: argparse.Namespace, stub: Any) -> int:
    found = stub.GetHabilitation(admin_pb2.GetHabilitationRequest(id=args.id))
    if args.json:
        _json(found)
        return EXIT_OK
    habilitation = found.habilitation
    rows = [
        ("id", habilitation.id),
        ("label", habilitation.label),
        ("siret", habilitation.siret),
        ("organisation", habilitation.organisation_name or "-"),
        ("status", _name(admin_pb2.HabilitationStatus, habilitation.status, "HABILITATION_STATUS_")),
        ("scopes", ", ".join(habilitation.scopes)),
        ("allowed ips", ", ".join(habilitation.allowed_ips) or "any"),
        ("rate/s", str(habilitation.rate_per_second or "default")),
        ("rate/min", str(habilitation.rate_per_minute or "none")),
        ("contacts", str(len(habilitation.contacts))),
        ("datapass id", habilitation.datapass_id or "-"),
        ("use case", habilitation.use_case or "-"),
        ("legal basis", habilitation.legal_basis or "-"),
    ]
    for name, value in rows:
        print(f"{name:<12} {value}")
    print(f"tokens       {len(found.tokens)}")
    _token_table(found.tokens)
    return EXIT_OK


_HABILITATIONS: Columns[admin_pb2.Habilitation] = Columns(
    ("ID", "STATUS", "SIRET", "SCOPES", "RATE/S", "RATE/MIN", "LABEL"),
    lambda h: (
        h.id,
        _name(admin_pb2.HabilitationStatus, h.status, "HABILITATION_STATUS_"),
        h.siret,
        str(len(h.scopes)),
        str(h.rate_per_second or "default"),
        str(h.rate_per_minute or "-"),
        h.label,
    ),
)


def _habilitation_list(args: argparse.Namespace, stub: Any) -> int:
    found = stub.ListHabilitations(admin_pb2.ListHabilitationsRequest())
    return listing(args, found, found.habilitations, _HABILITATIONS, None)


# -- tokens ----------------------------------------------------------------------------------------


_TOKENS: Columns[admin_pb2.Token] = Columns(
    ("ID", "STATE", "ENV", "KIND", "EXPIRES (UTC)", "ENDS (UTC)", "HABILITATION"),
    lambda t: (
        t.id,
        _name(admin_pb2.TokenState, t.state, "TOKEN_STATE_"),
        _name(admin_pb2.Environment, t.environment, "ENVIRONMENT_"),
        _name(admin_pb2.TokenKind, t.kind, "TOKEN_KIND_"),
        _day(t.expires_at),
        _day(t.revoked_at),
        t.habilitation_id or f"editor {t.editor_id}",
    ),
)


def _token_table(tokens: Sequence[admin_pb2.Token]) -> None:
    if tokens:
        _TOKENS.print(tokens)


def _token_issue(args: argparse.Namespace, stub: Any) -> int:
    environment = admin_pb2.Environment.Value(f"ENVIRONMENT_{args.environment.upper()}")
    if args.editor is not None:
        issued = stub.IssueEditorToken(
            admin_pb2.IssueEditorTokenRequest(
                editor_id=args.editor,
                days=args.days,
                environment=environment,
                allowed_ips=args.allowed_ip or [],
            )
        )
    elif args.allowed_ip:
        _say("error: --allowed-ip: only an editor token has addresses of its own (the habilitation's apply)")
        return EXIT_USAGE
    else:
        issued = stub.IssueToken(
            admin_pb2.IssueTokenRequest(
                habilitation_id=args.habilitation, days=args.days, environment=environment
            )
        )
    return done(
        f"issued token {issued.token.id} ({args.environment}), expires {_day(issued.token.expires_at)} UTC",
        issued.jwt,
    )


def _token_list(args: argparse.Namespace, stub: Any) -> int:
    request = admin_pb2.ListTokensRequest(**_filters(args))
    if args.expiring_within is not None:
        request.expiring_within.CopyFrom(
            duration_pb2.Duration(seconds=int(args.expiring_within.total_seconds()))
        )
    found = stub.ListTokens(request)
    return listing(args, found, found.tokens, _TOKENS, "no token")


def _token_revoke(args: argparse.Namespace, stub: Any) -> int:
    revoked = stub.RevokeToken(admin_pb2.RevokeTokenRequest(id=args.id, reason=args.reason))
    return done(
        f"revoked token {revoked.token.id}: refused by every gateway from its next call", revoked.token.id
    )


def _token_rotate(args: argparse.Namespace, stub: Any) -> int:
    rotated = stub.RotateToken(
        admin_pb2.RotateTokenRequest(
            id=args.id, grace=duration_pb2.Duration(seconds=int(args.grace.total_seconds()))
        )
    )
    return done(
        f"token {rotated.old_token.id} works until {_day(rotated.old_token.revoked_at)} UTC; "
        f"its replacement is {rotated.new_token.id}",
        rotated.jwt,
    )


def _token_prolong(args: argparse.Namespace, stub: Any) -> int:
    prolonged = stub.ProlongToken(admin_pb2.ProlongTokenRequest(id=args.id, days=args.days))
    return done(
        f"token {prolonged.token.id} now expires {_day(prolonged.token.expires_at)} UTC; "
        "its JWT is unchanged",
        prolonged.token.id,
    )


def _token_ban(args: argparse.Namespace, stub: Any) -> int:
    request = admin_pb2.BanTokenRequest(id=args.id, reason=args.reason, replace=not args.no_replacement)
    if args.at is not None:
        request.at.FromDatetime(args.at.astimezone(dt.UTC))
    banned = stub.BanToken(request)
    _say(f"token {banned.token.id} banned from {_day(banned.token.revoked_at)} UTC")
    if banned.jwt:
        _say(f"its replacement is {banned.replacement.id}")
        print(banned.jwt)
    else:
        print(banned.token.id)
    return EXIT_OK


# -- editors, delegations, FranceConnect clients ----------------------------------------------------


def _editor_create(args: argparse.Namespace, stub: Any) -> int:
    created = stub.CreateEditor(
        admin_pb2.CreateEditorRequest(
            siret=args.siret, name=args.name, allowed_ips=args.allowed_ip or [], contacts=args.contact or []
        )
    )
    return done(f"created editor {created.editor.name!r} (SIRET {created.editor.siret})", created.editor.id)


_DELEGATIONS: Columns[admin_pb2.Delegation] = Columns(
    ("ID", "STATE", "EDITOR", "HABILITATION", "CREATED (UTC)", "REVOKED (UTC)"),
    lambda d: (
        d.id,
        _name(admin_pb2.DelegationState, d.state, "DELEGATION_STATE_"),
        d.editor_id,
        d.habilitation_id,
        _day(d.created_at),
        _day(d.revoked_at),
    ),
)


def _editor_show(args: argparse.Namespace, stub: Any) -> int:
    found = stub.GetEditor(admin_pb2.GetEditorRequest(id=args.id))
    if args.json:
        _json(found)
        return EXIT_OK
    editor = found.editor
    print(f"editor      {editor.id}\nname        {editor.name}\nSIRET       {editor.siret}")
    print(f"allowed IPs {', '.join(editor.allowed_ips) or 'any'}")
    _token_table(found.tokens)
    if found.delegations:
        _DELEGATIONS.print(found.delegations)
    return EXIT_OK


def _editor_list(args: argparse.Namespace, stub: Any) -> int:
    found = stub.ListEditors(admin_pb2.ListEditorsRequest())
    editors: Columns[admin_pb2.Editor] = Columns(("ID", "SIRET", "NAME"), lambda e: (e.id, e.siret, e.name))
    return listing(args, found, found.editors, editors, "no editor")


def _delegation_create(args: argparse.Namespace, stub: Any) -> int:
    created = stub.CreateDelegation(
        admin_pb2.CreateDelegationRequest(editor_id=args.editor, habilitation_id=args.habilitation)
    )
    return done(f"habilitation {args.habilitation} delegated to editor {args.editor}", created.delegation.id)


def _delegation_revoke(args: argparse.Namespace, stub: Any) -> int:
    revoked = stub.RevokeDelegation(admin_pb2.RevokeDelegationRequest(id=args.id))
    return done(
        f"revoked delegation {revoked.delegation.id}: the editor's calls for its holder are refused (00213)",
        revoked.delegation.id,
    )


def _delegation_list(args: argparse.Namespace, stub: Any) -> int:
    found = stub.ListDelegations(admin_pb2.ListDelegationsRequest(**_filters(args)))
    return listing(args, found, found.delegations, _DELEGATIONS, "no delegation")


def _client_map(args: argparse.Namespace, stub: Any) -> int:
    mapped = stub.MapFranceConnectClient(
        admin_pb2.MapFranceConnectClientRequest(client_id=args.client_id, habilitation_id=args.habilitation)
    )
    return done(
        f"FranceConnect client {mapped.client.client_id} "
        f"mapped to habilitation {mapped.client.habilitation_id}",
        mapped.client.client_id,
    )


def _client_list(args: argparse.Namespace, stub: Any) -> int:
    found = stub.ListFranceConnectClients(admin_pb2.ListFranceConnectClientsRequest())
    clients: Columns[admin_pb2.FranceConnectClient] = Columns(
        ("CLIENT", "HABILITATION"), lambda c: (c.client_id, c.habilitation_id)
    )
    return listing(args, found, found.clients, clients, "no FranceConnect client mapped")


def _audit_verify(_args: argparse.Namespace, stub: Any) -> int:
    verified = stub.VerifyAudit(admin_pb2.VerifyAuditRequest())
    if verified.broken_at:
        _say(f"the audit trail is broken at entry {verified.broken_at} of {verified.entries}")
        return EXIT_REFUSED
    return done(
        f"{verified.entries} audit entries verified; compare the head with the heads logged", verified.head
    )


def _audit_list(args: argparse.Namespace, stub: Any) -> int:
    listed = stub.ListAudit(admin_pb2.ListAuditRequest(page_size=args.page_size, page_token=args.page_token))
    entries: Columns[admin_pb2.AuditEntry] = Columns(
        ("SEQ", "WHEN (UTC)", "ACTOR", "ACTION", "TARGET"),
        lambda e: (str(e.seq), _day(e.occurred_at), e.actor, e.action, e.target),
    )
    listing(args, listed, listed.entries, entries, "no audit entry")
    if listed.next_page_token:
        _say(f"older entries: --page-token {listed.next_page_token}")
    return EXIT_OK


# -- migration of the Redis-registered tokens ------------------------------------------------------


def _migrate_redis_tokens(args: argparse.Namespace, stub: Any) -> int:
    client = connect_sync(args.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        records = legacy.list_tokens(client)
    finally:
        close_sync(client)
    now = dt.datetime.now(dt.UTC).timestamp()
    migrated = skipped = 0
    for record in records:
        status = record.status(now)
        if status != "active" or record.iat is None or record.exp is None:
            _say(f"skipped {record.jti}: {status}")
            skipped += 1
            continue
        request = admin_pb2.ImportLegacyTokenRequest(
            habilitation=admin_pb2.CreateHabilitationRequest(
                label=record.label,
                siret=record.siret,
                scopes=record.scopes,
                rate_per_second=record.rate_limit or 0,
            ),
            token_id=record.jti,
        )
        request.issued_at.FromSeconds(record.iat)
        request.expires_at.FromSeconds(record.exp)
        try:
            imported = stub.ImportLegacyToken(request)
        except grpc.RpcError as error:
            if error.code() not in {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT}:
                raise
            _say(f"skipped {record.jti}: {error.details()}")
            skipped += 1
            continue
        _say(f"migrated {record.jti} to habilitation {imported.habilitation.id} ({record.label!r})")
        migrated += 1
    return done(f"{migrated} token(s) migrated, {skipped} skipped", migrated)


# -- parser and dispatch ---------------------------------------------------------------------------


def _command(
    parent: Any, name: str, help_text: str, handler: Handler, *, operator: bool = True
) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
    sub.set_defaults(handler=lambda args: run(args, handler, operator=operator))
    return sub


def _filter_flags(listing: argparse.ArgumentParser) -> None:
    """``--editor`` and ``--habilitation``: a listing of one editor's or one habilitation's records."""
    listing.add_argument("--editor", metavar="ID")
    listing.add_argument("--habilitation", metavar="ID")


class _Filters(TypedDict):
    """A listing request's fields of `_filter_flags` ("": any)."""

    editor_id: str
    habilitation_id: str


def _filters(args: argparse.Namespace) -> _Filters:
    return {"editor_id": args.editor or "", "habilitation_id": args.habilitation or ""}


def _habilitation_fields(sub: argparse.ArgumentParser, *, required: bool) -> None:
    sub.add_argument(
        "--scope", action="append", required=required, help="a scope; repeat (a list given replaces)"
    )
    sub.add_argument(
        "--allowed-ip", action="append", metavar="CIDR", help="an address or CIDR allowed; repeat"
    )
    sub.add_argument("--rate-per-second", type=_whole, help="calls per second shared by its tokens")
    sub.add_argument("--rate-per-minute", type=_whole, help="calls per minute shared by its tokens")
    sub.add_argument(
        "--contact", action="append", metavar="EMAIL", help="an address for expiry notices; repeat"
    )


def _register_habilitation(commands: Any) -> None:
    habilitation = commands.add_parser("habilitation", help="habilitations, through the admin API")
    habilitations = habilitation.add_subparsers(dest="habilitation_command", required=True, metavar="ACTION")
    create = _command(
        habilitations, "create", "create one; prints its id on the last line", _habilitation_create
    )
    create.add_argument("--label", required=True)
    create.add_argument("--siret", required=True, help="the holder's SIRET")
    create.add_argument("--organisation-name", default="", help="the holder's name, shown to citizens")
    _habilitation_fields(create, required=True)
    create.add_argument("--datapass-id", default="")
    create.add_argument("--use-case", default="")
    create.add_argument("--legal-basis", default="")
    update = _command(
        habilitations, "update", "change the fields given (a list replaces)", _habilitation_update
    )
    update.add_argument("id")
    update.add_argument("--label")
    update.add_argument("--organisation-name", help="the holder's name, shown to citizens")
    _habilitation_fields(update, required=False)
    update.add_argument("--any-ip", action="store_true", help="clear the allowed addresses: every address")
    update.add_argument("--status", choices=["validated", "revoked", "archived"])
    show = _command(habilitations, "show", "one habilitation and its tokens", _habilitation_show)
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    listing = _command(habilitations, "list", "every habilitation", _habilitation_list)
    listing.add_argument("--json", action="store_true")


def _register_token(commands: Any) -> None:
    token = commands.add_parser("token", help="tokens of habilitations, through the admin API")
    tokens = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    issue = _command(tokens, "issue", "issue a token; prints its JWT on the last line", _token_issue)
    holder = issue.add_mutually_exclusive_group(required=True)
    holder.add_argument("--habilitation", metavar="ID", help="a classic token of this habilitation")
    holder.add_argument(
        "--editor", metavar="ID", help="an editor token (no scopes of its own) of this editor"
    )
    issue.add_argument(
        "--days", type=_whole, default=TOKEN_DEFAULT_DAYS, help=f"default {TOKEN_DEFAULT_DAYS}"
    )
    issue.add_argument("--environment", choices=["production", "sandbox"], default="production")
    issue.add_argument(
        "--allowed-ip",
        action="append",
        metavar="CIDR",
        help="an editor token's own range, within its editor's",
    )
    token_list = _command(tokens, "list", "tokens (never their JWT)", _token_list)
    _filter_flags(token_list)
    token_list.add_argument("--expiring-within", type=duration, metavar="DURATION", help="such as 30d")
    token_list.add_argument("--json", action="store_true")
    revoke = _command(tokens, "revoke", "revoke a token now", _token_revoke)
    revoke.add_argument("id")
    revoke.add_argument("--reason", required=True)
    rotate = _command(tokens, "rotate", "replace a token; prints the new JWT", _token_rotate)
    rotate.add_argument("id")
    rotate.add_argument(
        "--grace", type=duration, default=dt.timedelta(days=7), help="old token kept (default 7d)"
    )
    prolong = _command(tokens, "prolong", "move a token's expiry; its JWT is unchanged", _token_prolong)
    prolong.add_argument("id")
    prolong.add_argument(
        "--days", type=_whole, default=TOKEN_DEFAULT_DAYS, help=f"from now, default {TOKEN_DEFAULT_DAYS}"
    )
    ban = _command(tokens, "ban", "ban a token from a date; prints the replacement's JWT", _token_ban)
    ban.add_argument("id")
    ban.add_argument("--at", type=_moment, help="ISO 8601 (UTC unless an offset is given); default now")
    ban.add_argument("--reason", required=True)
    ban.add_argument("--no-replacement", action="store_true")


def _register_editor(commands: Any) -> None:
    editor = commands.add_parser("editor", help="software editors, through the admin API")
    editors = editor.add_subparsers(dest="editor_command", required=True, metavar="ACTION")
    create = _command(editors, "create", "record one; prints its id on the last line", _editor_create)
    create.add_argument("--siret", required=True, help="the editor's SIRET")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--allowed-ip",
        action="append",
        metavar="CIDR",
        help="a range its tokens' calls must come from; repeat",
    )
    create.add_argument("--contact", action="append", metavar="EMAIL", help="a contact's address; repeat")
    show = _command(editors, "show", "one editor, its tokens and delegations", _editor_show)
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    listing = _command(editors, "list", "every editor", _editor_list)
    listing.add_argument("--json", action="store_true")
    delegation = commands.add_parser("delegation", help="habilitations delegated to editors")
    delegations = delegation.add_subparsers(dest="delegation_command", required=True, metavar="ACTION")
    create = _command(
        delegations, "create", "delegate a habilitation to an editor; prints its id", _delegation_create
    )
    create.add_argument("--editor", required=True, metavar="ID")
    create.add_argument("--habilitation", required=True, metavar="ID")
    revoke = _command(delegations, "revoke", "revoke a delegation now", _delegation_revoke)
    revoke.add_argument("id")
    listing = _command(delegations, "list", "delegations, revoked ones included", _delegation_list)
    _filter_flags(listing)
    listing.add_argument("--json", action="store_true")
    client = commands.add_parser(
        "france-connect-client", help="FranceConnect clients and their habilitations"
    )
    clients = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    mapping = _command(
        clients, "map", "map a client to the habilitation its citizens' calls count against", _client_map
    )
    mapping.add_argument("client_id")
    mapping.add_argument("--habilitation", required=True, metavar="ID")
    listing = _command(clients, "list", "every client mapped", _client_list)
    listing.add_argument("--json", action="store_true")


def _invitation_create(args: argparse.Namespace, stub: Any) -> int:
    invited = stub.InviteBody(
        admin_pb2.InviteBodyRequest(
            editor_id=args.editor,
            habilitation_id=args.habilitation,
            contact_email=args.contact,
            dpo=admin_pb2.DataProtectionOfficer(
                **{name: getattr(args, f"dpo_{name}") for name in DPO_FIELDS}
            ),
        )
    )
    return done(
        f"invited the holder of habilitation {args.habilitation} until {_day(invited.invitation.expires_at)} "
        f"UTC: send them the id and the secret (shown this once), which {SECRET_VARIABLE} carries to accept",
        invited.invitation.id,
        invited.secret,
    )


def _invitation_accept(args: argparse.Namespace, stub: Any) -> int:
    secret = os.environ.get(SECRET_VARIABLE, "")
    if not secret:
        _say(f"error: set {SECRET_VARIABLE} to the invitation's secret (never on the command line)")
        return EXIT_USAGE
    accepted = stub.AcceptInvitation(
        admin_pb2.AcceptInvitationRequest(
            id=args.id,
            secret=secret,
            siret=args.siret,
            terms_accepted=args.accept_terms,
            dpo_informed=args.dpo_informed,
        )
    )
    return done(
        f"accepted: delegation {accepted.delegation.id} is active; the editor's tokens may call for you",
        accepted.delegation.id,
    )


def _invitation_list(args: argparse.Namespace, stub: Any) -> int:
    found = stub.ListInvitations(admin_pb2.ListInvitationsRequest(**_filters(args)))
    invitations: Columns[admin_pb2.Invitation] = Columns(
        ("ID", "STATE", "EDITOR", "HABILITATION", "INVITED (UTC)", "DELEGATION"),
        lambda i: (
            i.id,
            _name(admin_pb2.InvitationState, i.state, "INVITATION_STATE_"),
            i.editor_id,
            i.habilitation_id,
            _day(i.invited_at),
            i.delegation_id or "-",
        ),
    )
    return listing(args, found, found.invitations, invitations, None)


def _register_invitation(commands: Any) -> None:
    invitation = commands.add_parser(
        "invitation", help="an editor's invitations of public bodies to delegate their habilitation"
    )
    invitations = invitation.add_subparsers(dest="invitation_command", required=True, metavar="ACTION")
    create = _command(
        invitations,
        "create",
        "invite a habilitation's holder for an editor; prints its id, then its secret on the last line",
        _invitation_create,
    )
    create.add_argument("--editor", required=True, metavar="ID")
    create.add_argument("--habilitation", required=True, metavar="ID", help="the body's habilitation")
    create.add_argument("--contact", required=True, metavar="EMAIL", help="the body's contact")
    for name in DPO_FIELDS:
        field = name.replace("_", "-")
        create.add_argument(
            f"--dpo-{field}", required=True, help=f"the body's data protection officer's {field}"
        )
    accept = _command(
        invitations,
        "accept",
        f"the body's holder accepts (secret in ${SECRET_VARIABLE}, no operator); prints the delegation's id",
        _invitation_accept,
        operator=False,
    )
    accept.add_argument("id")
    accept.add_argument("--siret", required=True, help="the accepting body's SIRET (the holder's SIREN)")
    accept.add_argument(
        "--accept-terms", action="store_true", help="the terms of use are accepted (required)"
    )
    accept.add_argument(
        "--dpo-informed", action="store_true", help="the data protection officer was informed (required)"
    )
    listing = _command(invitations, "list", "invitations, newest first", _invitation_list)
    _filter_flags(listing)
    listing.add_argument("--json", action="store_true")


def register(commands: Any, redis_default: str) -> None:
    """Add the registry's commands (see the module's docstring) to the CLI's subcommands."""
    _register_habilitation(commands)
    _register_editor(commands)
    _register_invitation(commands)
    _register_token(commands)
    audit = commands.add_parser("audit", help="the admin actions' audit trail")
    audits = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    _command(audits, "verify", "recompute the hash chain; prints its head", _audit_verify)
    audit_list = _command(audits, "list", "the entries, newest first, a page at a time", _audit_list)
    audit_list.add_argument("--page-size", type=_whole, default=0, help="1 to 200 (default 50)")
    audit_list.add_argument("--page-token", default="", help="the token an earlier page printed")
    audit_list.add_argument("--json", action="store_true", help="JSON, with before and after")
    migrate = _command(
        commands,
        "migrate-redis-tokens",
        "record the tokens registered in Redis (issue) in the registry, one habilitation each",
        _migrate_redis_tokens,
    )
    migrate.add_argument(
        "--redis-url", default=redis_default, help="Redis of the gateways (default: $REDIS_URL)"
    )


def run(args: argparse.Namespace, handler: Handler, *, operator: bool = True) -> int:
    """Run one command against the admin API of ``ADMIN_API_ADDRESS``; its exit code.

    ``operator``: the command needs the operator secret ``ADMIN_API_TOKEN`` (all but a holder's
    ``invitation accept``, whose credential is the invitation's secret).
    """
    address, secret = os.environ.get(ADDRESS_VARIABLE, ""), os.environ.get(TOKEN_VARIABLE, "")
    if not operator:
        secret = secret or "-"  # not sent: the command's request carries its own credential
    if not address or not secret:
        _say(
            f"error: set {ADDRESS_VARIABLE} (host:port) and {TOKEN_VARIABLE} (the operator secret): "
            "make run prints them"
        )
        return EXIT_USAGE
    ca_file = os.environ.get(CA_VARIABLE, "")
    channel = (
        grpc.secure_channel(address, grpc.ssl_channel_credentials(Path(ca_file).read_bytes()))
        if ca_file
        else grpc.insecure_channel(address)
    )
    with channel:
        try:
            metadata = (("authorization", f"Bearer {secret}"),) if operator else ()
            return handler(
                args, admin_pb2_grpc.AdminServiceStub(grpc.intercept_channel(channel, _Defaults(metadata)))
            )
        except grpc.RpcError as error:
            code = error.code()
            _say(f"error: {error.details()}")
            if code is grpc.StatusCode.INVALID_ARGUMENT:
                return EXIT_USAGE
            if code in _REFUSED:
                return EXIT_REFUSED
            if code is grpc.StatusCode.UNAVAILABLE:
                _say(f"the admin API at {address} or its database cannot be reached; nothing was changed")
            return EXIT_UNREACHABLE
