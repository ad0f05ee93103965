"""The fan-out lookup: one person, several APIs, asked concurrently under one deadline.

`ApiCatalog` ties each value of the contract's ``Api`` enum to the routes of one
API, derived from the names alone: ``API_QUOTIENT_FAMILIAL`` is the API whose
route label (``Route.api``) is ``cnaf.quotient_familial`` (the part after the
provider), and ``API_FRANCE_TRAVAIL_STATUT`` the one labelled
``france_travail.statut`` (the whole label, dot as underscore). No table is
written by hand; an enum value that matches no label, or two, stops the gateway
at start-up. For each API the catalog keeps its route by identity pivot, by
FranceConnect subject and by France Travail identifiant, read from the request
messages' fields.

`LookupService.lookup` then plans one provider call per API asked, in the order
asked (duplicates once), or for every API the scopes open when none is named:

- an API none of whose scopes the caller holds (with a FranceConnect subject:
  that both tokens hold) is refused, 00100, and not called;
- an API that needs a parameter the request lacks (France Travail without
  ``identifiant_france_travail``: 00380; MEN without ``annee_scolaire``: 00411),
  or that cannot be asked about this kind of subject (MEN, France Travail aside,
  has no FranceConnect method: 00400), is refused, INVALID_ARGUMENT, and not called;
- every other API is called through the gateway's own call path
  (`ProviderProxy.admit`, `forward`, `account`): it counts against the token's
  rate limit (over it, that API's result is 00429), is journalled and counted in
  the usage statistics as a call of its API, and its answer is masked as a
  direct call's would be.

The calls run concurrently; each gets what is left of the lookup's deadline (the
caller's, bounded by ``DEFAULT_DEADLINE_SECONDS``) less a small margin, so a slow
provider times out (PP002) in time for the others' answers to go back. Each
result is the masked answer packed in ``Any``, or the error a direct call would
have received (same status, message and details) as a ``CallError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from google.protobuf import any_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from apiparticulier.common.v1 import error_pb2, identity_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from contract.routes import ContractError, Route, RouteTable
from gateway.auth import Token
from gateway.proxy import ProviderProxy, ProviderStatusError, Target
from gateway.ratelimit import RateDecision
from runtime.caller import Caller
from runtime.context import CallContext
from runtime.errors import (
    ApiError,
    FieldViolation,
    insufficient_scopes,
    internal_error,
    invalid_argument,
    invalid_civility,
    missing_identifiant,
    provider_timeout,
)

_LOG = structlog.get_logger("gateway.lookup")

_IDENTITY = identity_pb2.IdentityPivot.DESCRIPTOR.full_name
_FRANCE_CONNECT = identity_pb2.FranceConnectSubject.DESCRIPTOR.full_name
_SCHOOL_FILTERS = ("code_etablissement", "degre_etablissement", "codes_bcn_departements", "codes_bcn_regions")
_TYPE_URL_PREFIX = "type.googleapis.com/"
_RATE_REMAINING = "ratelimit-remaining"

ANSWER_MARGIN_SECONDS = 0.05
"""Time kept, out of the lookup's deadline, to send the answers back after the last provider call ends."""

MAX_APIS = 32
"""Most entries a lookup may list (the enum has fewer values; duplicates are asked once)."""


@dataclass(frozen=True, slots=True)
class ApiRoutes:
    """The routes of one API of the ``Api`` enum, by kind of subject."""

    api: int
    """The ``Api`` value."""
    label: str
    """The route label of the API in the statistics, e.g. ``cnaf.quotient_familial``."""
    by_identity: Route | None
    by_france_connect: Route | None
    by_identifiant: Route | None

    @property
    def routes(self) -> tuple[Route, ...]:
        """The routes a lookup may use."""
        return tuple(r for r in (self.by_identity, self.by_france_connect, self.by_identifiant) if r)

    def route_for(self, france_connect: bool) -> Route | None:
        """The route a lookup uses for a subject of this kind.

        APIs asked by France Travail identifiant use it whatever the subject;
        the others use their identity or FranceConnect method.
        """
        if self.by_identifiant is not None:
            return self.by_identifiant
        return self.by_france_connect if france_connect else self.by_identity


def _message_field(message: Descriptor | Any, full_name: str) -> str | None:
    for field in message.fields:
        if field.message_type is not None and field.message_type.full_name == full_name:
            return str(field.name)
    return None


def api_key(name: str) -> str:
    """The key an ``Api`` value name is matched by: ``API_QUOTIENT_FAMILIAL`` → ``quotient_familial``."""
    return name.removeprefix("API_").lower()


def label_matches(label: str, key: str) -> bool:
    """Whether the route label ``label`` is the API of enum key ``key`` (see the module's docstring)."""
    _provider, _, name = label.partition(".")
    return key in (name, label.replace(".", "_"))


class ApiCatalog:
    """The ``Api`` enum ↔ route labels, derived from the names (see the module's docstring).

    Args:
        routes: The route table.

    Raises:
        ContractError: an ``Api`` value matches no route label, or several.
    """

    def __init__(self, routes: RouteTable) -> None:
        labels = sorted({route.api for route in routes.routes})
        self._by_api: dict[int, ApiRoutes] = {}
        problems = []
        for value in gateway_pb2.Api.DESCRIPTOR.values:
            if value.number == gateway_pb2.API_UNSPECIFIED:
                continue
            matching = [label for label in labels if label_matches(label, api_key(value.name))]
            if len(matching) != 1:
                problems.append(f"{value.name} matches {matching or 'no route label'}")
                continue
            label = matching[0]
            of_api = [route for route in routes.routes if route.api == label]
            self._by_api[value.number] = ApiRoutes(
                api=value.number,
                label=label,
                by_identity=_first(of_api, lambda d: _message_field(d, _IDENTITY) is not None),
                by_france_connect=_first(of_api, lambda d: _message_field(d, _FRANCE_CONNECT) is not None),
                by_identifiant=_first(of_api, lambda d: "identifiant" in d.fields_by_name),
            )
        if problems:
            raise ContractError("the Api enum does not match the route labels: " + "; ".join(problems))
        self._by_label = {entry.label: api for api, entry in self._by_api.items()}

    @property
    def apis(self) -> Mapping[int, ApiRoutes]:
        """Every API, in enum order."""
        return self._by_api

    def api_of_label(self, label: str) -> int:
        """The ``Api`` value of a route label; ``API_UNSPECIFIED`` for a label of no API."""
        return self._by_label.get(label, gateway_pb2.API_UNSPECIFIED)

    def label_of(self, api: int) -> str | None:
        """The route label of an ``Api`` value; None when it has none."""
        entry = self._by_api.get(api)
        return entry.label if entry is not None else None


def _first(routes: Iterable[Route], accepts: Callable[[Any], bool]) -> Route | None:
    for route in routes:
        if accepts(route.request_class.DESCRIPTOR):
            return route
    return None


def call_error_of(error: ApiError) -> error_pb2.CallError:
    """The error a direct call would have received, as a ``CallError``: status, message, details."""
    if isinstance(error, ProviderStatusError):
        try:
            details = status_pb2.Status.FromString(error.details_bin).details
        except DecodeError:
            details = []
        return error_pb2.CallError(code=error.status.value[0], message=error.message, details=details)
    status = error.to_status_proto()
    return error_pb2.CallError(code=status.code, message=status.message, details=status.details)


def unknown_api() -> ApiError:
    """An ``apis`` entry that names no API (00400)."""
    return invalid_argument(
        "00400", "L'API demandée n'existe pas", [FieldViolation("apis", "must be a value of the Api enum")]
    )


def too_many_apis() -> ApiError:
    """A lookup that lists more entries than `MAX_APIS` (00400)."""
    return invalid_argument(
        "00400",
        "La liste des API demandées est trop longue",
        [FieldViolation("apis", f"at most {MAX_APIS} entries")],
    )


def missing_subject() -> ApiError:
    """A lookup without a subject (00366)."""
    return invalid_civility(
        [FieldViolation("identite", "required: an identity pivot (identite) or a FranceConnect subject")]
    )


def subject_not_supported() -> ApiError:
    """An API that has no method for a FranceConnect subject (00400)."""
    return invalid_argument(
        "00400",
        "Cette API ne peut pas être interrogée à partir d'un jeton FranceConnect",
        [FieldViolation("franceConnect", "this API is asked by identity pivot only")],
    )


def missing_school_year() -> ApiError:
    """MEN asked without the school year (00411, the code of the MEN API's school year errors)."""
    return invalid_argument(
        "00411",
        "L'année scolaire est obligatoire (AAAA-AAAA ou AAAA attendu)",
        [FieldViolation("parameters.anneeScolaire", "required by this API: YYYY-YYYY or YYYY")],
    )


def missing_france_travail_identifiant() -> ApiError:
    """France Travail asked without the identifiant (00380)."""
    return missing_identifiant(
        [FieldViolation("parameters.identifiantFranceTravail", "required by this API")]
    )


@dataclass(frozen=True, slots=True)
class _Planned:
    """One provider call of a lookup, ready to send."""

    api: int
    target: Target
    request: Message


class LookupService:
    """Runs lookups through the gateway's call path.

    Args:
        proxy: The gateway's call path (rate limit, forwarding, masking, journal).
        catalog: The APIs.
    """

    def __init__(self, proxy: ProviderProxy, catalog: ApiCatalog) -> None:
        self._proxy = proxy
        self._catalog = catalog

    async def lookup(
        self,
        request: gateway_pb2.LookupRequest,
        *,
        token: Token,
        recipient: str,
        call: CallContext,
        timeout: float,  # noqa: ASYNC109 - the lookup's gRPC deadline, spread over its provider calls
        decision: RateDecision,
    ) -> tuple[gateway_pb2.LookupResponse, tuple[tuple[str, str], ...]]:
        """Ask every API of the request about its subject.

        Args:
            request: The lookup; a FranceConnect subject is resolved in place.
            token: The caller's verified token.
            recipient: The recipient SIRET, forwarded to the providers.
            call: The call's context (request id).
            timeout: Seconds the whole lookup may take.
            decision: The rate-limit decision of the lookup call itself.

        Returns:
            The results, in the order asked, and the rate-limit metadata to send back
            (the tightest of the lookup's decisions).

        Raises:
            ApiError: the lookup as a whole is refused: no subject, too many APIs, or a
                FranceConnect token that is refused or cannot be checked.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        kind = request.WhichOneof("subject")
        if kind is None:
            raise missing_subject()
        if len(request.apis) > MAX_APIS:
            raise too_many_apis()
        scopes = token.scopes
        france_connect = kind == "france_connect"
        if france_connect:
            caller = Caller(recipient, call.request_id, max(0.0, deadline - loop.time()), token.jti)
            scopes = await self._proxy.resolve_france_connect(request, "france_connect", token, caller)
        asked = list(dict.fromkeys(int(api) for api in request.apis)) or [
            api
            for api, entry in self._catalog.apis.items()
            if any(not route.scopes.isdisjoint(scopes) for route in entry.routes)
        ]
        decisions: list[RateDecision] = [decision]

        async def one(api: int) -> gateway_pb2.LookupResult:
            result = gateway_pb2.LookupResult(api=api)  # type: ignore[arg-type]
            try:
                planned = self._plan(api, request, scopes, france_connect)
            except ApiError as error:
                result.error.CopyFrom(call_error_of(error))
                return result
            outcome = await self._call(
                planned,
                token=token,
                recipient=recipient,
                call=call,
                scopes=scopes,
                deadline=deadline,
                decisions=decisions,
            )
            if isinstance(outcome, error_pb2.CallError):
                result.error.CopyFrom(outcome)
            else:
                result.response.CopyFrom(outcome)
            return result

        results = await asyncio.gather(*(one(api) for api in asked))
        return gateway_pb2.LookupResponse(results=results), _tightest(decisions)

    def _plan(
        self, api: int, request: gateway_pb2.LookupRequest, scopes: frozenset[str], france_connect: bool
    ) -> _Planned:
        entry = self._catalog.apis.get(api)
        if entry is None:
            raise unknown_api()
        route = entry.route_for(france_connect)
        if route is None:
            raise subject_not_supported()
        if route.scopes.isdisjoint(scopes):
            raise insufficient_scopes()
        message = route.request_class()
        fields = message.DESCRIPTOR.fields_by_name
        parameters = request.parameters
        if "identifiant" in fields:
            identifiant = parameters.identifiant_france_travail.strip()
            if not identifiant:
                raise missing_france_travail_identifiant()
            message.identifiant = identifiant  # type: ignore[attr-defined]
        elif france_connect:
            field = _message_field(message.DESCRIPTOR, _FRANCE_CONNECT)
            getattr(message, str(field)).CopyFrom(request.france_connect)
        else:
            field = _message_field(message.DESCRIPTOR, _IDENTITY)
            getattr(message, str(field)).CopyFrom(request.identite)
        copy_lookup_parameters(parameters, message)
        return _Planned(api, self._proxy.target(route.path), message)

    async def _call(
        self,
        planned: _Planned,
        *,
        token: Token,
        recipient: str,
        call: CallContext,
        scopes: frozenset[str],
        deadline: float,
        decisions: list[RateDecision],
    ) -> any_pb2.Any | error_pb2.CallError:
        target = planned.target
        started = time.perf_counter()
        status, code = "OK", ""
        try:
            decisions.append(await self._proxy.admit(token))
            answer = await self._proxy.forward(
                target,
                planned.request.SerializeToString(),
                timeout=_time_left(deadline, target),
                request_id=call.request_id,
                recipient=recipient,
                token_id=token.jti,
                scopes=scopes,
            )
        except ApiError as error:
            status, code = error.status.name, error.code
            return call_error_of(error)
        except Exception as exc:
            # One API's failure must not spoil the others: it is that API's INTERNAL, like a direct call's.
            internal = internal_error()
            status, code = internal.status.name, internal.code
            _LOG.error("lookup_call_failed", error_type=type(exc).__name__, api=target.route.api)
            return call_error_of(internal)
        finally:
            self._proxy.account(
                target.route,
                request_id=call.request_id,
                token=token,
                recipient=recipient,
                status=status,
                code=code,
                latency_ms=(time.perf_counter() - started) * 1000,
                subject=planned.request,
            )
        full_name = target.route.response_class.DESCRIPTOR.full_name
        return any_pb2.Any(type_url=_TYPE_URL_PREFIX + full_name, value=answer)


def _time_left(deadline: float, target: Target) -> float:
    """Seconds a provider call may take before the lookup's answer must leave.

    Raises:
        ApiError: PP002, the deadline is spent already.
    """
    left = deadline - asyncio.get_running_loop().time() - ANSWER_MARGIN_SECONDS
    if left <= 0:
        raise provider_timeout(target.provider)
    return left


def _tightest(decisions: Sequence[RateDecision]) -> tuple[tuple[str, str], ...]:
    """The metadata of the decision that left the fewest calls: what the caller may still send."""

    def remaining(decision: RateDecision) -> int:
        values = dict(decision.metadata)
        try:
            return int(values.get(_RATE_REMAINING, "0"))
        except ValueError:
            return 0

    with_metadata = [decision for decision in decisions if decision.metadata]
    if not with_metadata:
        return ()
    return tuple(min(with_metadata, key=remaining).metadata)


def copy_lookup_parameters(parameters: gateway_pb2.LookupParameters, message: Message) -> None:
    """Copy into one API's request the lookup parameters it takes, by their common names.

    Raises:
        ApiError: the API needs the school year and the lookup gives none.
    """
    fields = message.DESCRIPTOR.fields_by_name
    if "annee_scolaire" in fields:
        if not parameters.annee_scolaire.strip():
            raise missing_school_year()
        message.annee_scolaire = parameters.annee_scolaire.strip()  # type: ignore[attr-defined]
    for name in ("annee", "mois"):
        if name in fields and parameters.HasField(name):
            setattr(message, name, getattr(parameters, name))
    # The school search filters keep their names from the MEN request to the lookup's parameters.
    for name in _SCHOOL_FILTERS:
        if name in fields:
            value = getattr(parameters, name)
            if isinstance(value, str):
                setattr(message, name, value.strip())
            else:
                getattr(message, name).extend(value)
