"""``python -m client``: call the mesh through the gateway from a terminal or a script.

Commands:

- ``call <api>``: one provider API, by its label (``cnaf.quotient_familial``,
  ``france_travail.statut``, ``mesr.statut_etudiant``…); the method follows from
  the subject: ``--fc-token`` asks by FranceConnect, ``--ine`` by INE,
  ``--identifiant`` by France Travail identifiant, otherwise by identity pivot;
- ``lookup <api>…``: several APIs about one person at once, those named and no other;
- ``introspect``: the rights of the token;
- ``usage``: the token's calls per day, API and outcome, as a table;
- ``pings``: what each ping of the real API says (status, maintenance window);
- ``proofs``: the public figure of proofs avoided;
- ``accesses --fc-token TOKEN``: the citizen's own access history (the calls public
  bodies made about them), with their FranceConnect access token alone.

The gateway, token and recipient come from ``API_PARTICULIER_ADDRESS`` (default
``127.0.0.1:50051``), ``API_PARTICULIER_TOKEN`` and ``API_PARTICULIER_RECIPIENT``,
or the flags ``--address``, ``--token`` and ``--recipient``, which win. The
subject is given by flags, or as the proto3 JSON of the request in
``--subject-file`` (flags given too override its fields).

Output is readable by default; ``--json`` prints JSON for scripts: a provider
answer as ``{"data": <the exact v3 data object>, "withheld": [<paths>]}`` (a
lookup: one such object per API, with its ``api`` label, or its ``error``),
the gateway's own answers as proto3 JSON with the contract's field names. Every
error is one line on standard error (status, API Particulier code, title and
detail, the fields at fault, the delay before a retry), with exit status 1 when
the API refused or failed, 2 for a usage mistake, 3 when the gateway could not
be reached; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from apiparticulier.common.v1 import options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from client.render import (
    Problem,
    answer_lines,
    answer_of,
    dumps,
    problem_of,
    problem_of_rpc,
    status_name,
    table,
    timestamp,
    to_json,
)
from contract.catalog import ApiCatalog
from contract.identity_flags import FlagError, identity_flags, identity_from_flags
from contract.routes import Route, RouteTable, build_routes

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_ENV = "API_PARTICULIER_ADDRESS"
TOKEN_ENV = "API_PARTICULIER_TOKEN"  # noqa: S105 - the name of a variable, not a secret
RECIPIENT_ENV = "API_PARTICULIER_RECIPIENT"

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class UsageError(FlagError):
    """A mistake in the command line or the subject file."""


# -- subject ---------------------------------------------------------------------------------------


def request_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The request the flags describe, in proto3 JSON (only what was given)."""
    request: dict[str, Any] = {}
    identity = identity_from_flags(args)
    if identity:
        request["identite"] = identity
    if args.fc_token is not None:
        request["franceConnect"] = {"accessToken": args.fc_token}
    extras = {
        "ine": "ine",
        "identifiant": "identifiant",
        "annee": "annee",
        "mois": "mois",
        "annee_scolaire": "anneeScolaire",
        "code_etablissement": "codeEtablissement",
        "degre": "degreEtablissement",
        "immatriculation": "immatriculation",
    }
    for flag, name in extras.items():
        value = getattr(args, flag, None)
        if value is not None:
            request[name] = value
    for flag, name in (("departements", "codesBcnDepartements"), ("regions", "codesBcnRegions")):
        if getattr(args, flag, None):
            request[name] = list(getattr(args, flag))
    return request


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _canonical_keys(document: dict[str, Any]) -> dict[str, Any]:
    # A subject file may use the original field names (france_connect) as proto3 JSON allows.
    aliases = {"france_connect": "franceConnect", "annee_scolaire": "anneeScolaire"}
    return {aliases.get(key, key): value for key, value in document.items()}


def load_subject(args: argparse.Namespace) -> dict[str, Any]:
    """The request document: the subject file, if any, with the flags on top."""
    base: dict[str, Any] = {}
    if args.subject_file is not None:
        try:
            loaded = json.loads(Path(args.subject_file).read_text(encoding="utf-8"))
        except OSError as error:
            raise UsageError(
                f"--subject-file {args.subject_file}: {error.strerror or 'unreadable'}"
            ) from None
        except json.JSONDecodeError as error:
            raise UsageError(
                f"--subject-file {args.subject_file}: not JSON ({error.msg}, line {error.lineno})"
            ) from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--subject-file {args.subject_file}: expected a JSON object")
        base = _canonical_keys(loaded)
    return _merge(base, request_from_flags(args))


_IDENTIFIANTS: frozenset[options_pb2.SubjectKind.ValueType] = frozenset(
    {options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT, options_pb2.SUBJECT_KIND_SPORTIF_IDENTIFIANT}
)


_SUBJECT_WORDS = {
    options_pb2.SUBJECT_KIND_IDENTITY_PIVOT: "identity",
    options_pb2.SUBJECT_KIND_FRANCE_CONNECT: "FranceConnect token",
    options_pb2.SUBJECT_KIND_INE: "ine",
    options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT: "identifiant",
    options_pb2.SUBJECT_KIND_SPORTIF_IDENTIFIANT: "identifiant",
}
"""How the messages of the command line name each kind of subject."""


def _kinds(document: dict[str, Any]) -> frozenset[options_pb2.SubjectKind.ValueType]:
    """The subject kinds (the contract's ``SubjectKind``) a request document can be sent as."""
    if "franceConnect" in document:
        return frozenset({options_pb2.SUBJECT_KIND_FRANCE_CONNECT})
    if "ine" in document:
        return frozenset({options_pb2.SUBJECT_KIND_INE})
    if "identifiant" in document:
        return _IDENTIFIANTS
    return frozenset({options_pb2.SUBJECT_KIND_IDENTITY_PIVOT})


def choose_route(routes: RouteTable, label: str, document: dict[str, Any]) -> Route:
    """The method of API ``label`` that takes the subject of ``document``, a current one if it has one."""
    of_api = routes.of_api(label)
    if not of_api:
        known = ", ".join(sorted({route.api_label for route in routes.routes}))
        raise UsageError(f"unknown API {label!r}; one of: {known}")
    kinds = _kinds(document)
    for route in of_api:
        if route.subject.kind in kinds:
            return route
    ways = ", ".join(route.method for route in of_api)
    subject = " or ".join(sorted({_SUBJECT_WORDS[kind] for kind in kinds}))
    raise UsageError(f"{label} cannot be asked by {subject}; its methods: {ways}")


def build_request(route: Route, document: dict[str, Any]) -> Message:
    """The request message of ``route`` from its proto3 JSON."""
    accepted = {f.json_name for f in route.request_class.DESCRIPTOR.fields}
    extra = sorted(set(document) - accepted)
    if extra:
        raise UsageError(f"{route.method} takes no {', '.join(extra)}")
    try:
        return json_format.ParseDict(document, route.request_class())
    except json_format.ParseError as error:
        raise UsageError(f"bad subject for {route.method}: {error}") from None


# -- calls -----------------------------------------------------------------------------------------


class Session:
    """Where and as whom the client calls."""

    def __init__(self, args: argparse.Namespace) -> None:
        """Read the address, token and recipient from the flags or the environment."""
        self.address: str = args.address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
        self.token: str | None = args.token or os.environ.get(TOKEN_ENV) or None
        self.recipient: str | None = args.recipient or os.environ.get(RECIPIENT_ENV) or None
        self.timeout: float = args.timeout
        self.request_id: str | None = args.request_id
        self.json: bool = args.json

    def metadata(self, *, token: bool = True) -> tuple[tuple[str, str], ...]:
        """The call's metadata: bearer token, recipient, request id.

        Args:
            token: The call needs the API token; False for the public ones and for a
                FranceConnect method, which the FranceConnect token alone may open.
        """
        pairs: list[tuple[str, str]] = []
        if token and not self.token:
            raise UsageError(f"no token: set {TOKEN_ENV} or pass --token")
        if self.token:
            pairs.append(("authorization", f"Bearer {self.token}"))
        if self.recipient:
            pairs.append(("x-recipient", self.recipient))
        if self.request_id:
            pairs.append(("x-request-id", self.request_id))
        return tuple(pairs)

    def call(self, path: str, request: Message, response_class: type[Message], *, token: bool = True) -> Any:
        """Call one unary method; raises `grpc.RpcError` on failure."""
        metadata = self.metadata(token=token)
        with grpc.insecure_channel(self.address) as channel:
            method: grpc.UnaryUnaryMultiCallable[Message, Any] = channel.unary_unary(
                path,
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=response_class.FromString,
            )
            return method(request, timeout=self.timeout, metadata=metadata)


def _gateway_path(method: str) -> str:
    return f"/{gateway_pb2.DESCRIPTOR.services_by_name['GatewayService'].full_name}/{method}"


def _print(lines: Sequence[str]) -> None:
    print("\n".join(lines))


def cmd_call(args: argparse.Namespace, session: Session) -> int:
    """One provider API."""
    routes = build_routes()
    document = load_subject(args)
    route = choose_route(routes, args.api, document)
    request = build_request(route, document)
    # A FranceConnect method may be called with the FranceConnect token alone.
    by_france_connect = route.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT
    answer = session.call(route.path, request, route.response_class, token=not by_france_connect)
    if session.json:
        print(dumps(answer_of(answer)))
    else:
        _print([f"{route.api_label} ({route.method}): OK", *answer_lines(answer, 1)])
    return EXIT_OK


def lookup_request(args: argparse.Namespace, catalog: ApiCatalog) -> gateway_pb2.LookupRequest:
    """The lookup the command line asks for."""
    document = load_subject(args)
    request = gateway_pb2.LookupRequest()
    if "franceConnect" in document:
        json_format.ParseDict(document["franceConnect"], request.france_connect)
    elif "identite" in document:
        try:
            json_format.ParseDict(document["identite"], request.identite)
        except json_format.ParseError as error:
            raise UsageError(f"bad identity: {error}") from None
    else:
        raise UsageError("no subject: give the identity (--nom, --prenom, …), --fc-token or --subject-file")
    known = ", ".join(entry.label for entry in catalog.apis.values())
    if not args.apis:
        # Data minimisation: the gateway asks no API the caller did not name, and refuses none named.
        raise UsageError(f"name the APIs to ask, and only them; among: {known}")
    for label in args.apis:
        api = catalog.api_of_label(label)
        if api == gateway_pb2.API_UNSPECIFIED:
            raise UsageError(f"unknown API {label!r}; one of: {known}")
        request.apis.append(api)  # type: ignore[arg-type]
    parameters = request.parameters
    if args.annee is not None:
        parameters.annee = args.annee
    if args.mois is not None:
        parameters.mois = args.mois
    parameters.annee_scolaire = args.annee_scolaire or ""
    parameters.identifiant_france_travail = args.identifiant or ""
    parameters.identifiant_sportif = args.identifiant_sportif or ""
    parameters.immatriculation = args.immatriculation or ""
    parameters.code_etablissement = args.code_etablissement or ""
    parameters.degre_etablissement = args.degre or ""
    parameters.codes_bcn_departements.extend(args.departements or ())
    parameters.codes_bcn_regions.extend(args.regions or ())
    return request


def cmd_lookup(args: argparse.Namespace, session: Session) -> int:
    """Several APIs about one person."""
    routes = build_routes()
    catalog = ApiCatalog(routes)
    response_classes = {
        route.response_class.DESCRIPTOR.full_name: route.response_class for route in routes.routes
    }
    request = lookup_request(args, catalog)
    response = session.call(_gateway_path("Lookup"), request, gateway_pb2.LookupResponse)
    lines: list[str] = []
    results: list[dict[str, Any]] = []
    for result in response.results:
        label = catalog.label_of(result.api) or gateway_pb2.Api.Name(result.api)
        if result.HasField("response"):
            answer = response_classes[result.response.TypeName()]()
            result.response.Unpack(answer)
            results.append({"api": label, **answer_of(answer)})
            lines.extend([f"{label}: OK", *answer_lines(answer, 1)])
        else:
            failure = result.error
            problem = problem_of(status_name(failure.code), failure.message, failure.details)
            results.append({"api": label, "error": problem.as_dict()})
            lines.append(f"{label}: {problem.line()}")
    if session.json:
        print(dumps({"results": results}))
    else:
        _print(lines or ["(no API asked: the token opens none for this subject)"])
    return EXIT_OK


def cmd_introspect(args: argparse.Namespace, session: Session) -> int:
    """The rights of the token."""
    answer = session.call(
        _gateway_path("IntrospectToken"),
        gateway_pb2.IntrospectTokenRequest(),
        gateway_pb2.IntrospectTokenResponse,
    )
    if session.json:
        print(to_json(answer))
        return EXIT_OK
    _print(
        [
            f"token_id: {answer.token_id}",
            f"habilitation: {answer.habilitation}",
            f"siret: {answer.siret}",
            f"expires_at: {timestamp(answer.expires_at, answer.HasField('expires_at'))}",
            f"rate_limit_per_second: {answer.rate_limit_per_second}",
            f"scopes ({len(answer.scopes)}):",
            *(f"  - {scope}" for scope in answer.scopes),
        ]
    )
    return EXIT_OK


def cmd_usage(args: argparse.Namespace, session: Session) -> int:
    """The token's calls per day, API and outcome."""
    catalog = ApiCatalog(build_routes())
    answer = session.call(
        _gateway_path("GetUsageStatistics"),
        gateway_pb2.GetUsageStatisticsRequest(days=args.days),
        gateway_pb2.GetUsageStatisticsResponse,
    )
    if session.json:
        print(to_json(answer))
        return EXIT_OK
    if not answer.counts:
        print(f"no call in the last {args.days or 62} days")
        return EXIT_OK
    rows = [
        (
            count.day,
            catalog.label_of(count.api) or gateway_pb2.Api.Name(count.api),
            count.outcome,
            str(count.calls),
        )
        for count in answer.counts
    ]
    _print(table(("day", "api", "outcome", "calls"), rows))
    return EXIT_OK


def cmd_pings(args: argparse.Namespace, session: Session) -> int:
    """What each ping says (no token needed)."""
    answer = session.call(
        _gateway_path("ListProviderAvailability"),
        gateway_pb2.ListProviderAvailabilityRequest(),
        gateway_pb2.ListProviderAvailabilityResponse,
        token=False,
    )
    if session.json:
        print(to_json(answer))
        return EXIT_OK
    names = {
        gateway_pb2.PROVIDER_STATUS_OK: "ok",
        gateway_pb2.PROVIDER_STATUS_BAD_GATEWAY: "bad_gateway",
        gateway_pb2.PROVIDER_STATUS_UNKNOWN: "unknown",
        gateway_pb2.PROVIDER_STATUS_MAINTENANCE: "maintenance",
        gateway_pb2.PROVIDER_STATUS_UNSPECIFIED: "unknown",
    }
    rows = [
        (
            entry.ping,
            entry.provider,
            names[entry.status],
            timestamp(entry.last_update, entry.HasField("last_update")),
            timestamp(entry.last_ok_status, entry.HasField("last_ok_status")),
            timestamp(entry.until, entry.HasField("until")),
        )
        for entry in answer.providers
    ]
    _print(table(("ping", "provider", "status", "last_update", "last_ok_status", "until"), rows))
    return EXIT_OK


def cmd_proofs(args: argparse.Namespace, session: Session) -> int:
    """The public figure of proofs avoided (no token needed)."""
    answer = session.call(
        _gateway_path("GetProofsAvoided"),
        gateway_pb2.GetProofsAvoidedRequest(),
        gateway_pb2.GetProofsAvoidedResponse,
        token=False,
    )
    if session.json:
        print(to_json(answer))
    else:
        print(f"{answer.proofs_avoided} proofs avoided over the last {answer.days} days")
    return EXIT_OK


def cmd_accesses(args: argparse.Namespace, session: Session) -> int:
    """The calls made about the citizen whose FranceConnect token is given (no API token needed)."""
    catalog = ApiCatalog(build_routes())
    request = gateway_pb2.ListAccessesRequest()
    request.france_connect.access_token = args.fc_token
    answer = session.call(
        _gateway_path("ListAccesses"), request, gateway_pb2.ListAccessesResponse, token=False
    )
    if session.json:
        print(to_json(answer))
        return EXIT_OK
    if not answer.accesses:
        print("no access recorded about you")
        return EXIT_OK
    rows = [
        (
            timestamp(access.time, access.HasField("time")),
            access.recipient,
            access.habilitation,
            catalog.label_of(access.api) or gateway_pb2.Api.Name(access.api),
            access.outcome if not access.code else f"{access.outcome} {access.code}",
        )
        for access in answer.accesses
    ]
    _print(table(("time", "recipient", "habilitation", "api", "outcome"), rows))
    return EXIT_OK


# -- command line ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and the usage hint, exit status 2, as argparse does, in the client's words.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _subject_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("subject (or --subject-file)")
    identity_flags(group)
    group.add_argument(
        "--fc-token", dest="fc_token", help="a FranceConnect access token, instead of an identity"
    )
    group.add_argument(
        "--subject-file", dest="subject_file", help="proto3 JSON of the request (flags override)"
    )
    group.add_argument("--identifiant", help="France Travail identifiant (or, with call, an SDH identifiant)")
    group.add_argument("--immatriculation", help="ANTS: the vehicle's registration number (with --fc-token)")
    group.add_argument("--annee", type=int, help="quotient familial: year")
    group.add_argument("--mois", type=int, help="quotient familial: month")
    group.add_argument("--annee-scolaire", dest="annee_scolaire", help="MEN: school year, YYYY-YYYY or YYYY")


def _school_flags(parser: argparse.ArgumentParser) -> None:
    """The MEN search filters, shared by ``call`` and ``lookup``."""
    parser.add_argument(
        "--code-etablissement", dest="code_etablissement", help="MEN: UAI of an establishment"
    )
    parser.add_argument("--degre", help="MEN: degree of the establishment, 1D or 2D")
    parser.add_argument(
        "--departement-bcn", dest="departements", action="append", help="MEN: BCN département code"
    )
    parser.add_argument("--region-bcn", dest="regions", action="append", help="MEN: BCN académie region code")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    common = _Parser(add_help=False)
    options = common.add_argument_group("connection")
    options.add_argument("--address", help=f"gateway host:port (${ADDRESS_ENV}, default {DEFAULT_ADDRESS})")
    options.add_argument("--token", help=f"API Particulier token (${TOKEN_ENV})")
    options.add_argument(
        "--recipient", help=f"SIRET of the public body receiving the data (${RECIPIENT_ENV})"
    )
    options.add_argument(
        "--request-id", dest="request_id", help="x-request-id to send: a UUID (others are replaced)"
    )
    options.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer")
    options.add_argument("--json", action="store_true", help="proto3 JSON output, for scripts")

    parser = _Parser(
        prog="python -m client",
        description="Call API Particulier through the gateway of the mesh.",
        epilog="exit status: 0 ok, 1 refused or failed, 2 usage mistake, 3 gateway unreachable",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    call = commands.add_parser("call", parents=[common], help="call one provider API")
    call.add_argument("api", help="API label, e.g. cnaf.quotient_familial, france_travail.statut")
    _subject_flags(call)
    call.add_argument("--ine", help="INE of a student (mesr, cnous)")
    _school_flags(call)
    call.set_defaults(handler=cmd_call)

    lookup = commands.add_parser("lookup", parents=[common], help="ask several APIs about one person")
    lookup.add_argument("apis", nargs="*", help="API labels: the APIs to ask, and only them (at least one)")
    lookup.add_argument(
        "--identifiant-sportif", dest="identifiant_sportif", help="SDH: the sportsperson's identifiant"
    )
    _subject_flags(lookup)
    _school_flags(lookup)
    lookup.set_defaults(handler=cmd_lookup)

    commands.add_parser("introspect", parents=[common], help="the rights of the token").set_defaults(
        handler=cmd_introspect
    )
    usage = commands.add_parser("usage", parents=[common], help="the token's calls, as a table")
    usage.add_argument("--days", type=int, default=0, help="days back, 1 to 62 (default 62)")
    usage.set_defaults(handler=cmd_usage)
    commands.add_parser("pings", parents=[common], help="availability of the providers").set_defaults(
        handler=cmd_pings
    )
    commands.add_parser("proofs", parents=[common], help="proofs avoided, last 30 days").set_defaults(
        handler=cmd_proofs
    )
    accesses = commands.add_parser(
        "accesses", parents=[common], help="your own access history, with your FranceConnect token"
    )
    accesses.add_argument(
        "--fc-token", dest="fc_token", required=True, help="your FranceConnect access token"
    )
    accesses.set_defaults(handler=cmd_accesses)
    return parser


def _fail(problem: Problem, session: Session | None, code: int) -> int:
    if session is not None and session.json:
        print(dumps({"error": problem.as_dict()}))
    print(f"error: {problem.line()}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    session: Session | None = None
    handler: Callable[[argparse.Namespace, Session], int] = args.handler
    try:
        session = Session(args)
        return handler(args, session)
    except FlagError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as error:
        problem = problem_of_rpc(error)
        if problem.detailed:
            return _fail(problem, session, EXIT_REFUSED)
        address = session.address if session is not None else "?"
        if problem.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            problem.localized = f"cannot reach the gateway at {address} ({problem.message or 'no answer'})"
            return _fail(problem, session, EXIT_UNREACHABLE)
        return _fail(problem, session, EXIT_REFUSED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # never a traceback: one line that says what kind of failure it was
        print(f"error: unexpected failure ({type(error).__name__})", file=sys.stderr)
        return EXIT_REFUSED
