"""``python -m gateway.admin maintenance``: the pings' maintenance windows, a client of the admin API.

- ``maintenance PING --until ISO [--from ISO]``: open (or replace) the ping's window, from now
  unless ``--from``; prints the ping's name;
- ``maintenance PING --clear``: close it: an open window ends now, a scheduled one is cancelled;
  prints the ping's name;
- ``maintenance --list [--json]``: the windows not yet over.

The admin API (`gateway.admin_api.maintenance`) checks the window (a known ping, an end after the
start, in the future, at most 7 days after the start), writes it where every gateway reads it and
records the operator's action in the audit trail. It is reached as the other registry commands
reach it (`gateway.admin.habilitations`: ``ADMIN_API_ADDRESS``, ``ADMIN_API_TOKEN``); exit codes
are theirs: 0 done, 1 refused (no window to close, the operator's role), 2 invalid arguments (the
message names the field), 3 the admin API unreachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from apiparticulier.admin.v1 import admin_pb2
from gateway.admin.habilitations import EXIT_USAGE, Columns, done, listing, run


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _instant(text: str) -> dt.datetime:
    """An ISO 8601 date-time with its offset."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. +01:00 or Z)")
    return moment


def _utc(window: admin_pb2.MaintenanceWindow, field: str) -> str:
    stamp = getattr(window, field)
    return f"{stamp.ToDatetime(dt.UTC):%Y-%m-%d %H:%M:%S}"


def _open(args: argparse.Namespace, stub: Any) -> int:
    request = admin_pb2.OpenMaintenanceWindowRequest(ping=args.ping)
    request.end.FromDatetime(args.until.astimezone(dt.UTC))
    if args.start is not None:
        request.start.FromDatetime(args.start.astimezone(dt.UTC))
    window = stub.OpenMaintenanceWindow(request).window
    return done(
        f"{window.ping} is in maintenance from {_utc(window, 'start')} until {_utc(window, 'end')} UTC, "
        "on every gateway",
        window.ping,
    )


def _close(args: argparse.Namespace, stub: Any) -> int:
    closed = stub.CloseMaintenanceWindow(admin_pb2.CloseMaintenanceWindowRequest(ping=args.ping))
    if closed.HasField("window"):
        return done(f"maintenance window of {args.ping} ended now", args.ping)
    return done(f"scheduled maintenance window of {args.ping} cancelled", args.ping)


def _list(args: argparse.Namespace, stub: Any) -> int:
    listed = stub.ListMaintenanceWindows(admin_pb2.ListMaintenanceWindowsRequest())
    windows: Columns[admin_pb2.MaintenanceWindow] = Columns(
        ("PING", "STATE", "START (UTC)", "END (UTC)"),
        lambda w: (w.ping, "open" if w.open else "scheduled", _utc(w, "start"), _utc(w, "end")),
    )
    return listing(args, listed, listed.windows, windows, "no maintenance window open or scheduled")


def _maintenance(args: argparse.Namespace) -> int:
    if args.list:
        return run(args, _list)
    if args.ping is None:
        _say("error: the ping's name is required (or --list)")
        return EXIT_USAGE
    if args.clear:
        return run(args, _close)
    if args.until is None:
        _say("error: --until is required to open a window (or --clear to close one)")
        return EXIT_USAGE
    return run(args, _open)


def register(commands: Any) -> None:
    """Add ``maintenance`` to the CLI's subcommands."""
    maintenance = commands.add_parser(
        "maintenance",
        help="open (or --clear) a ping's maintenance window, seen by every gateway, through the admin API",
    )
    maintenance.add_argument(
        "ping", nargs="?", help="the ping's name, e.g. men_scolarite (see GET /api/pings)"
    )
    maintenance.add_argument("--from", dest="start", type=_instant, help="start, ISO 8601 (default: now)")
    maintenance.add_argument("--until", type=_instant, help="end, ISO 8601 with its UTC offset")
    action = maintenance.add_mutually_exclusive_group()
    action.add_argument("--clear", action="store_true", help="close the ping's window")
    action.add_argument("--list", action="store_true", help="the windows open or scheduled")
    maintenance.add_argument("--json", action="store_true", help="with --list: JSON instead of a table")
    maintenance.set_defaults(handler=_maintenance)
