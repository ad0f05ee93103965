"""The fan-out lookup: one person, several APIs, asked concurrently under one deadline.

A Lookup is one call of the gateway's call path (`gateway.call_path`): token,
recipient and rate limit are checked in the same order as for a direct call.
Its body plans one provider call per API asked, in the order asked (duplicates
once), and asks no other API: a Lookup that names none is refused (00400), so that
no API the caller did not need learns of the person nor shows in their access
history (data minimisation, GDPR art. 5.1.c):

- an API none of whose scopes the caller holds (with a FranceConnect subject:
  that both tokens hold) is refused, 00100, and not called;
- an API that needs a parameter the request lacks (France Travail without
  ``identifiant_france_travail``, SDH without ``identifiant_sportif``: 00380; MEN
  without ``annee_scolaire``: 00411; ANTS without ``immatriculation``: 00430),
  or that cannot be asked about this kind of subject (00400), is refused and not called;
- every other API is called with `CallPath.call_within`: it counts against the
  token's rate limit (over it, that API's result is 00429), is journalled and
  counted as a call of its API, and its answer is masked as a direct call's.

Which route serves a kind of subject, and which request fields take which
``LookupParameters``, is declared in the contracts (`contract.catalog`,
`contract.routes`). The calls run concurrently; each gets what is left of the
lookup's deadline less a small margin, so a slow provider times out (PP002) in
time for the others' answers to go back. Each result is the masked answer packed
in ``Any``, or the error a direct call would have received as a ``CallError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from apiparticulier.common.v1 import error_pb2, options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from contract.catalog import ApiCatalog
from contract.routes import ContractError, Route
from gateway.call_path import CallPath, Exchange
from gateway.forwarding import ProviderStatusError, Target
from runtime.errors import (
    ApiError,
    FieldViolation,
    api_error,
    bad_request,
    insufficient_scopes,
    internal_error,
    invalid_civility,
)
from runtime.interceptors import with_request_id

_LOG = structlog.get_logger(__name__)

_TYPE_URL_PREFIX = "type.googleapis.com/"

ANSWER_MARGIN_SECONDS = 0.05
"""Time kept, out of the lookup's deadline, to send the answers back after the last provider call ends."""

MAX_APIS = 32
"""Most entries a lookup may list (the enum has fewer values; duplicates are asked once)."""

_SUBJECT_KINDS = {
    "identite": options_pb2.SUBJECT_KIND_IDENTITY_PIVOT,
    "france_connect": options_pb2.SUBJECT_KIND_FRANCE_CONNECT,
}
"""The kind of each subject of the ``LookupRequest`` oneof."""
_SUBJECT_JSON_NAMES = {"identite": "identite", "france_connect": "franceConnect"}
"""The JSON name of each subject of the ``LookupRequest`` oneof, for the violation that names it."""


def _missing(code: str, parameter: str, description: str) -> Callable[[], ApiError]:
    return lambda: api_error(code, violations=[FieldViolation(f"parameters.{parameter}", description)])


_REQUIRED: dict[str, Callable[[], ApiError]] = {
    "identifiant_france_travail": _missing("00380", "identifiantFranceTravail", "required by this API"),
    "identifiant_sportif": _missing("00380", "identifiantSportif", "required by this API"),
    "immatriculation": _missing("00430", "immatriculation", "required by this API: the registration number"),
    "annee_scolaire": _missing("00411", "anneeScolaire", "required by this API: YYYY-YYYY or YYYY"),
}
"""The ``LookupParameters`` without which the API that takes them is not asked, and the refusal."""


def check_lookup_parameters() -> None:
    """Refuse to start when `_REQUIRED` names a field ``LookupParameters`` no longer has.

    Raises:
        ContractError: a required parameter is not a field of ``LookupParameters``.
    """
    missing = set(_REQUIRED) - set(gateway_pb2.LookupParameters.DESCRIPTOR.fields_by_name)
    if missing:
        raise ContractError(f"LookupParameters lacks the required parameters {sorted(missing)}")


def call_error_of(error: ApiError, request_id: str) -> error_pb2.CallError:
    """The error a direct call would have received, as a ``CallError``: status, message, details.

    Its ``ErrorInfo`` names the request id, as every refusal of the mesh does.
    """
    if isinstance(error, ProviderStatusError):
        message, details_bin = error.message, error.details_bin
    else:
        message, details_bin = str(error), error.to_status_proto().SerializeToString()
    try:
        details = status_pb2.Status.FromString(with_request_id(details_bin, request_id)).details
    except DecodeError:
        details = []
    return error_pb2.CallError(code=error.status.value[0], message=message, details=details)


class LookupService:
    """Plans and runs lookups on the call path.

    Args:
        call_path: The gateway's call path.
        catalog: The APIs.
    """

    def __init__(self, call_path: CallPath, catalog: ApiCatalog) -> None:
        check_lookup_parameters()
        self._call_path = call_path
        self._catalog = catalog

    async def lookup(self, request: gateway_pb2.LookupRequest, call: Exchange) -> gateway_pb2.LookupResponse:
        """Ask every API of the request about its subject.

        Args:
            request: The lookup; a FranceConnect subject is resolved in place.
            call: The lookup's own call, past steps 1 to 4 of the call path.

        Returns:
            The results, in the order asked.

        Raises:
            ApiError: the lookup as a whole is refused: no subject, no API or too many (00400),
                or a FranceConnect token that is refused or cannot be checked.
        """
        kind = request.WhichOneof("subject")
        if kind is None:
            raise invalid_civility(
                [
                    FieldViolation(
                        "identite", "required: an identity pivot (identite) or a FranceConnect subject"
                    )
                ]
            )
        if not request.apis:
            raise bad_request([FieldViolation("apis", "required: the APIs to ask, and only them")])
        if len(request.apis) > MAX_APIS:
            raise bad_request([FieldViolation("apis", f"at most {MAX_APIS} entries")])
        call.subject = request
        if kind == "france_connect":
            await self._call_path.resolve_france_connect(call, request, kind)
        asked = dict.fromkeys(int(api) for api in request.apis)
        results = await asyncio.gather(
            *(self._result(call, request, _SUBJECT_KINDS[kind], api) for api in asked)
        )
        return gateway_pb2.LookupResponse(results=results)

    async def _result(
        self, call: Exchange, request: gateway_pb2.LookupRequest, kind: int, api: int
    ) -> gateway_pb2.LookupResult:
        """One API's result: its masked answer, or the error a direct call would have received."""
        result = gateway_pb2.LookupResult(api=api)  # type: ignore[arg-type]
        try:
            target, message = self._plan(api, request, kind, call.scopes)
            answer = await self._call(call, target, message)
        except ApiError as error:
            result.error.CopyFrom(call_error_of(error, call.request_id))
        else:
            result.response.CopyFrom(answer)
        return result

    def _plan(
        self, api: int, request: gateway_pb2.LookupRequest, kind: int, scopes: frozenset[str]
    ) -> tuple[Target, Message]:
        entry = self._catalog.apis.get(api)
        if entry is None:
            raise bad_request([FieldViolation("apis", "must be a value of the Api enum")])
        route = entry.route_for(kind) or _by_parameter(entry.routes)
        if route is None:
            subject = _SUBJECT_JSON_NAMES[request.WhichOneof("subject") or ""]
            raise bad_request(
                [FieldViolation(subject, "this API cannot be asked about this kind of subject")]
            )
        if route.scopes.isdisjoint(scopes):
            raise insufficient_scopes()
        message = route.request_class()
        if route.subject.kind == kind:
            getattr(message, route.subject.name).CopyFrom(
                getattr(request, request.WhichOneof("subject") or "")
            )
        fill_parameters(request.parameters, route, message)
        return self._call_path.targets[route.path], message

    async def _call(self, lookup: Exchange, target: Target, message: Message) -> any_pb2.Any:
        # The lookup's deadline, less the time its answer needs to leave.
        call = lookup.child(target.method, message, ANSWER_MARGIN_SECONDS)
        try:
            answer = await self._call_path.call_within(call, target, message)
        except ApiError:
            raise
        except Exception as exc:
            # One API's failure must not spoil the others: it is that API's INTERNAL, like a direct call's.
            _LOG.error("lookup_call_failed", error_type=type(exc).__name__, api=target.route.api_label)
            raise internal_error() from None
        full_name = target.route.response_class.DESCRIPTOR.full_name
        return any_pb2.Any(type_url=_TYPE_URL_PREFIX + full_name, value=answer.serialized())


def _by_parameter(routes: Sequence[Route]) -> Route | None:
    """The route whose subject the Lookup fills from its parameters (France Travail's, SDH's identifiant)."""
    for route in routes:
        if any(parameter.field == route.subject.name for parameter in route.lookup_parameters):
            return route
    return None


def fill_parameters(parameters: gateway_pb2.LookupParameters, route: Route, message: Message) -> None:
    """Copy into a route's request the Lookup parameters its contract declares (``lookup_parameter``).

    Raises:
        ApiError: a parameter the API cannot do without is missing (`_REQUIRED`).
    """
    for declared in route.lookup_parameters:
        _copy(parameters, declared.parameter, message, declared.field)


def _copy(parameters: gateway_pb2.LookupParameters, name: str, message: Message, field: str) -> None:
    """Copy one Lookup parameter into a request field of the same type, trimmed."""
    value = getattr(parameters, name)
    source: Message = parameters
    if isinstance(value, str):
        value = value.strip()
        if not value and name in _REQUIRED:
            raise _REQUIRED[name]()
        setattr(message, field, value)
    elif isinstance(value, int):
        if source.HasField(name):
            setattr(message, field, value)
    else:
        getattr(message, field).extend(value)
