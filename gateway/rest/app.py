"""The REST v3/v4 front: the real API's routes, bodies and headers, on the gateway's one call path.

An integrator of the real API changes its base URL and token, nothing else:

- every route of the route table at its spec paths (``api_route.http_paths``), GET,
  its query parameters derived from the request message (`gateway.rest.query`),
  ``recipient`` a query parameter and the token ``Authorization: Bearer``; on the
  FranceConnect routes the bearer is the citizen's FranceConnect access token, which
  alone authorizes the call (`gateway.call_path`, step 1);
- the answer ``{"data": …, "links": {}, "meta": {}}``, ``data`` rendered by
  `contract.v3_json`; a refusal ``{"errors": [...]}`` with the spec's HTTP status
  (`gateway.rest.errors`);
- ``X-Request-ID`` on every answer (the caller's, when well formed), and the
  rate-limit headers the call path reports (``RateLimit-Limit``, ``RateLimit-Remaining``,
  ``RateLimit-Reset``, ``Retry-After`` on 429) on every answer of a call that reached
  the rate limiter;
- ``GET /api/introspect``, ``GET /api/ping``, ``GET /api/pings``, ``GET /api/<ping>/ping``,
  ``GET /api/errors`` (`gateway.rest.nomenclature`), ``GET /api/proofs_avoided`` and
  ``GET /openapi.yaml``;
- ``GET /editeur/api/v1/delegations``, the editor API: the delegations of the editor whose
  token is the bearer (`gateway.delegations.page_of`), ``page`` and ``per_page`` parameters;
  any other bearer 401 ``{"error": "Unauthorized"}``, the real editor API's body;
- ``GET /mesh/v1/citizen/accesses``, a route of the mesh's own: the citizen's access history
  (`gateway.journal.access_history`), the FranceConnect access token as bearer;
- ``GET /mesh/v1/statistics/proofs_avoided``, a route of the mesh's own: the proofs avoided per
  API and day over the kept days (`gateway.usage.UsageRecorder.proofs_by_api`), public;
- ``GET /mesh/v1/status/maintenances``, a route of the mesh's own: the maintenance windows open
  or scheduled, with their start and end (`gateway.pings.PingBoard.windows`), public;
- any other path a JSON 404 (``00404``), another method on a known path a JSON 405 (``00405``).

Every request is served inside the front's call boundary (`gateway.rest.boundary`): request id,
log context, HTTP metrics by route template, span, the response metadata as headers, and a caller who
closes the connection cancels its call. The endpoints return a body or raise; a refusal is rendered
by the front's exception handler.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from http import HTTPStatus
from typing import Any

import yaml
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from apiparticulier.common.v1 import options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from contract.gateway_service import method_path
from contract.openapi import restricted_spec
from contract.v3_json import data_object, meta_object
from gateway.auth import API_KEY_HEADER, AUTHORIZATION_KEY
from gateway.availability import Availability
from gateway.availability_history import HISTORY_DAYS
from gateway.call_path import Exchange, Inbound
from gateway.client_address import PROXY_HEADERS
from gateway.delegations import DELEGATION_ID_KEY, page_of
from gateway.forwarding import Payload, Target
from gateway.pings import PINGS, PingState
from gateway.registry.snapshot import ListedDelegation
from gateway.response_cache import CACHE_CONTROL_KEY
from gateway.rest.boundary import (
    JSON,
    SCOPE_KEY,
    CallBoundaryMiddleware,
    HttpCallScope,
    RouteTemplates,
    json_bytes,
)
from gateway.rest.errors import error_body, http_status
from gateway.rest.nomenclature import CACHE_CONTROL as NOMENCLATURE_CACHE_CONTROL
from gateway.rest.nomenclature import nomenclature, of_operation
from gateway.rest.query import RECIPIENT_PARAMETER, RequestReader
from gateway.serving import Serving
from gateway.usage import PROOFS_DAYS, RETENTION_DAYS
from runtime.caller import RECIPIENT_KEY
from runtime.errors import DELEGATION_ID_FIELD, ApiError, api_error, store_unavailable

YAML = "application/yaml"
_BEARER = "Bearer "
INTROSPECT_METHOD = method_path("IntrospectToken")
DELEGATIONS_METHOD = method_path("ListDelegations")
DELEGATIONS_PATH = "/editeur/api/v1/delegations"
EDITOR_API_UNAUTHORIZED = {"error": "Unauthorized"}
"""The editor API's 401 body, whatever the token's fault (PLATFORM.md §3)."""
_PAGE_DIGITS = 9
"""A page or page size of more digits is read as none, as a number the real API's ``to_i`` would not use."""
ACCESSES_PATH = "/mesh/v1/citizen/accesses"
"""The citizen's access history: a route of the mesh's own, not of the published spec."""
ACCESSES_METHOD = method_path("ListAccesses")
AVAILABILITY_PATH = "/mesh/v1/statistics/availability"
"""Each ping's availability over 90 days and its incidents: a route of the mesh's own, public."""
PROOFS_BY_API_PATH = "/mesh/v1/statistics/proofs_avoided"
"""The proofs avoided per API and day over the kept days: a route of the mesh's own, public."""
MAINTENANCES_PATH = "/mesh/v1/status/maintenances"
"""The maintenance windows open or scheduled, with their start and end: a route of the mesh's own, public."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(json_bytes(body), status, media_type=JSON)


def bearer_of(authorization: str) -> str:
    """The credentials of a ``Bearer`` authorization (the scheme case-insensitive); "" for another scheme.

    Taken as sent, blanks included, as the token of a gRPC call is: a token with a blank is refused.
    """
    if authorization[: len(_BEARER)].lower() != _BEARER.lower():
        return ""
    return authorization[len(_BEARER) :]


TOKEN_PARAMETER = "token"  # noqa: S105 - the name of the query parameter, not a secret


def api_token_authorization(request: Request) -> list[str]:
    """The API token's ``Authorization`` values, from the carriers the real API still accepts.

    ``Authorization: Bearer`` first, else the ``X-Api-Key`` header, else the ``token`` query
    parameter (NEWER-ENDPOINTS §15), each given as a bearer. The token is never logged from any
    of them: the front's access log is off, and the call is logged by its route, not its URL.
    """
    authorization = request.headers.getlist(AUTHORIZATION_KEY)
    if authorization:
        return authorization
    carried = request.headers.getlist(API_KEY_HEADER) or request.query_params.getlist(TOKEN_PARAMETER)
    return [f"{_BEARER}{value}" for value in carried]


def inbound_of(request: Request, metadata: list[tuple[str, str | bytes]]) -> Inbound:
    """A REST call's `Inbound`: its metadata, the forwarding headers a trusted proxy writes, and its peer.

    The peer is the connection's (uvicorn's own reading of the forwarding headers is off:
    `gateway.client_address` alone decides whom to believe).
    """
    metadata += [(name, value) for name in PROXY_HEADERS for value in request.headers.getlist(name)]
    client = request.scope.get("client")
    return Inbound(metadata, None, client[0] if client else None)


def access_body(access: gateway_pb2.Access) -> dict[str, str]:
    """One access as JSON: time (ISO 8601, UTC), recipient, habilitation, API label, outcome and code.

    With the body's name and the habilitation's use case from the registry (empty when it has none).
    """
    api = gateway_pb2.Api.DESCRIPTOR.values_by_number[access.api]
    return {
        "time": access.time.ToDatetime(dt.UTC).isoformat(),
        "recipient": access.recipient,
        "habilitation": access.habilitation,
        "api": api.GetOptions().Extensions[options_pb2.api_label],
        "outcome": access.outcome,
        "code": access.code,
        "organisation_name": access.organisation_name,
        "use_case": access.use_case,
    }


_PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def _iso(seconds: float) -> str:
    """A time as the real API writes its pings': ISO 8601 in Europe/Paris, with milliseconds."""
    return dt.datetime.fromtimestamp(seconds, _PARIS).isoformat(timespec="milliseconds")


def ping_body(state: PingState) -> dict[str, Any]:
    """A ping as the real API's: ``status``, ``last_update``, ``last_ok_status``, ``until`` in maintenance."""
    body = {
        "status": state.status.value,
        "last_update": _iso(state.last_update),
        "last_ok_status": _iso(state.last_ok),
    }
    if state.until is not None:
        body["until"] = _iso(state.until)
    return body


def route_not_found() -> ApiError:
    """No route of the front has this path (00404, the mesh's own code)."""
    return api_error("00404")


def method_not_allowed() -> ApiError:
    """The path is a route of the front, for another method (00405, the mesh's own code)."""
    return api_error("00405")


class RestFront:
    """The REST front's ASGI application.

    Args:
        serving: What it answers with: the call path, the pings, the usage counters (the proofs
            avoided), the citizens' access histories, the pings' availability history.
        access_history_rate: The citizen's limit on the history, per second.
        public_url: The front's base URL, the only server ``/openapi.yaml`` names and the base of the
            URLs ``/api/pings`` lists; empty: ``/``, the host the document was fetched from (never the
            caller's ``Host``, which anyone may write).

    Raises:
        TypeError: a request field has no query parameter form (`RequestReader`).
    """

    def __init__(self, serving: Serving, *, access_history_rate: int, public_url: str = "") -> None:
        self._serving = serving
        self._access_history_rate = access_history_rate
        self._server_url = public_url.rstrip("/") or "/"
        # Under the public URL, never the caller's Host, which anyone may write.
        self._ping_list = [
            {"name": ping.label, "url": f"{public_url.rstrip('/')}/api/{ping.id}/ping"} for ping in PINGS
        ]
        self._nomenclature = nomenclature(target.route for target in serving.call_path.targets.values())
        self.paths: dict[str, Target] = {
            path: target for target in serving.call_path.targets.values() for path in target.route.http_paths
        }
        """Every provider route, by its spec path."""
        routes: list[BaseRoute] = [
            Route(
                path, functools.partial(self._provider, target, RequestReader(target.route)), methods=["GET"]
            )
            for path, target in self.paths.items()
        ]
        utility = {
            "/api/introspect": self._introspect,
            "/api/ping": self._ping,
            "/api/pings": self._pings,
            "/api/{ping}/ping": self._provider_ping,
            "/api/proofs_avoided": self._proofs_avoided,
            "/api/errors": self._errors,
            ACCESSES_PATH: self._accesses,
            DELEGATIONS_PATH: self._delegations,
            PROOFS_BY_API_PATH: self._proofs_by_api,
            AVAILABILITY_PATH: self._availability,
            MAINTENANCES_PATH: self._maintenances,
        }
        self.utility_paths = tuple(utility)
        """The utility routes, the mesh's own included: in ``/openapi.yaml`` beside the provider routes."""
        routes += [Route(path, handler, methods=["GET"]) for path, handler in utility.items()]
        routes.append(Route("/openapi.yaml", self._openapi, methods=["GET"]))
        self.app = Starlette(
            routes=routes,
            middleware=[Middleware(CallBoundaryMiddleware, templates=RouteTemplates(routes))],
            exception_handlers={
                ApiError: self._refused,  # type: ignore[dict-item]
                HTTPException: self._http_exception,  # type: ignore[dict-item]
            },
        )
        # A path with a slash too many is no route of the spec: a JSON 404, not a redirect.
        self.app.router.redirect_slashes = False

    # -- refusals --------------------------------------------------------------------------------

    async def _refused(self, request: Request, error: ApiError) -> Response:
        """A refusal as the v3 error body (`error_body`); the editor API's 401 as the real one's.

        The editor API answers any bearer that is no active editor token (none, invalid, another
        kind, revoked) 401 ``{"error": "Unauthorized"}``, its OpenAPI schema (PLATFORM.md §3).
        """
        call_scope: HttpCallScope = request.scope[SCOPE_KEY]
        refusal = call_scope.refused(error)
        status = http_status(refusal)
        unauthorized = status == HTTPStatus.UNAUTHORIZED and request.url.path == DELEGATIONS_PATH
        response = _json(EDITOR_API_UNAUTHORIZED if unauthorized else error_body(refusal), status)
        response.headers.update(dict(refusal.extra_metadata))
        return response

    async def _http_exception(self, request: Request, exc: HTTPException) -> Response:
        """Starlette's own refusals (no route, wrong method) as v3 errors."""
        response = await self._refused(
            request, method_not_allowed() if exc.status_code == 405 else route_not_found()
        )
        if exc.headers and "allow" in {name.lower() for name in exc.headers}:
            allowed = next(v for k, v in exc.headers.items() if k.lower() == "allow")
            # Starlette lists HEAD beside GET, but the front refuses HEAD (`gateway.rest.protocol`).
            response.headers["Allow"] = ", ".join(
                method for method in (m.strip() for m in allowed.split(",")) if method != "HEAD"
            )
        return response

    # -- provider routes -------------------------------------------------------------------------

    async def _provider(self, target: Target, reader: RequestReader, request: Request) -> Response:
        """A provider route: the request read from the query, the answer in ``data`` and ``meta``."""
        authorization = (
            request.headers.getlist(AUTHORIZATION_KEY)
            if reader.by_france_connect
            else api_token_authorization(request)
        )
        metadata: list[tuple[str, str | bytes]] = [
            (RECIPIENT_KEY, value) for value in request.query_params.getlist(RECIPIENT_PARAMETER)
        ]
        # An editor token's delegation: the parameter the real API reads, else the header its changelog named.
        delegation = request.query_params.getlist(DELEGATION_ID_FIELD) or request.headers.getlist(
            DELEGATION_ID_KEY
        )
        metadata += [(DELEGATION_ID_KEY, value) for value in delegation]
        metadata += [(CACHE_CONTROL_KEY, value) for value in request.headers.getlist(CACHE_CONTROL_KEY)]
        bearer = ""
        if reader.by_france_connect:
            # The FranceConnect token stands for the API token, as in the real API.
            if len(authorization) == 1:
                bearer = bearer_of(authorization[0])
        else:
            metadata += [(AUTHORIZATION_KEY, value) for value in authorization]
        read = Payload(target.route.request_class, message=reader.read(request.query_params.getlist, bearer))
        answer = await self._serving.call_path.call_provider(target, read, inbound_of(request, metadata))
        response = answer.message()
        return _json({"data": data_object(response), "links": {}, "meta": meta_object(response)})

    # -- utility routes --------------------------------------------------------------------------

    async def _introspect(self, request: Request) -> Response:
        """The caller's token, as the real API's ``/api/introspect``: ``_id``, ``name``, ``scopes``."""
        authorization = api_token_authorization(request)
        inbound = inbound_of(request, [(AUTHORIZATION_KEY, value) for value in authorization])
        # Journalled as the gRPC introspection: one method, whatever the transport.
        return await self._serving.call_path.call_own(
            INTROSPECT_METHOD, inbound, _introspection, needs_recipient=False
        )

    async def _delegations(self, request: Request) -> Response:
        """The editor API: the bearer editor token's delegations, ``{"data": [...], "meta": {...}}``."""
        authorization = api_token_authorization(request)
        # With its peer: an editor's or its token's IP ranges are checked as on every route.
        inbound = inbound_of(request, [(AUTHORIZATION_KEY, value) for value in authorization])
        page, per_page = _whole(request, "page"), _whole(request, "per_page")

        async def listing(call: Exchange) -> Response:
            found = page_of(call.holder, page, per_page)
            return _json(
                {
                    "data": [delegation_body(delegation) for delegation in found.delegations],
                    "meta": {
                        "page": found.page,
                        "per_page": found.per_page,
                        "total": found.total,
                        "total_pages": found.total_pages,
                    },
                }
            )

        return await self._serving.call_path.call_own(
            DELEGATIONS_METHOD, inbound, listing, needs_recipient=False
        )

    async def _accesses(self, request: Request) -> Response:
        """The citizen's own access history (the mesh's own route): the FranceConnect token as bearer."""
        authorization = request.headers.getlist(AUTHORIZATION_KEY)
        history = gateway_pb2.ListAccessesRequest()
        if len(authorization) == 1:
            history.france_connect.access_token = bearer_of(authorization[0])
        response = await self._serving.call_path.call_citizen(
            ACCESSES_METHOD,
            Inbound((), None),
            history,
            self._access_history_rate,
            self._serving.access_history.list_accesses,
        )
        return _json({"accesses": [access_body(access) for access in response.accesses]})

    async def _ping(self, request: Request) -> Response:
        return _json({"status": Availability.OK.value})

    async def _pings(self, request: Request) -> Response:
        """Every ping as the real API lists them: its label, its URL under ``REST_PUBLIC_URL`` or relative."""
        return _json(self._ping_list)

    async def _provider_ping(self, request: Request) -> Response:
        """One ping: 200, or 502 for ``bad_gateway``; an unknown name is 404 with ``{}``, as the real API."""
        state = await self._serving.pings.state(request.path_params["ping"])
        if state is None:
            return _json({}, 404)
        return _json(ping_body(state), 502 if state.status is Availability.BAD_GATEWAY else 200)

    async def _errors(self, request: Request) -> Response:
        """The error nomenclature (`gateway.rest.nomenclature`), whole or of one ``operation_id``.

        Raises:
            ApiError: 00404, no route has that operation id.
        """
        operation_id = request.query_params.get("operation_id")
        body: dict[str, Any] | None = self._nomenclature
        if operation_id is not None:
            body = of_operation(self._nomenclature, operation_id)
        if body is None:
            raise route_not_found()
        response = _json(body)
        response.headers["Cache-Control"] = NOMENCLATURE_CACHE_CONTROL
        return response

    async def _proofs_avoided(self, request: Request) -> Response:
        proofs = await self._serving.usage.proofs_avoided(PROOFS_DAYS)
        return _json({"proofs_avoided": proofs, "days": PROOFS_DAYS})

    async def _proofs_by_api(self, request: Request) -> Response:
        """Successful calls per API and day (`UsageRecorder.proofs_by_api`), oldest first."""
        rows = await self._serving.usage.proofs_by_api(RETENTION_DAYS)
        days = [{"day": day, "api": api, "proofs": calls} for day, api, calls in rows]
        return _json({"days": RETENTION_DAYS, "proofs_avoided": days})

    async def _maintenances(self, request: Request) -> Response:
        """The windows open or scheduled (`PingBoard.windows`), by start: ping, name, start, end (UTC), open.

        Raises:
            ApiError: 00503, Redis, where the windows live, did not answer.
        """
        try:
            windows = await self._serving.pings.windows()
        except (RedisError, OSError, TimeoutError):
            raise store_unavailable() from None
        now = dt.datetime.now(dt.UTC)
        body = []
        for ping, window in windows:
            start = dt.datetime.fromtimestamp(window.start, dt.UTC)
            end = dt.datetime.fromtimestamp(window.end, dt.UTC)
            body.append(
                {
                    "ping": ping.id,
                    "name": ping.label,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "open": start <= now,
                }
            )
        return _json({"maintenances": body})

    async def _availability(self, request: Request) -> Response:
        """Each ping's sampled minutes per state and day (days with a sample), and the incidents.

        Raises:
            ApiError: 00503, no history is kept or Redis failed.
        """
        if self._serving.availability_history is None:
            raise store_unavailable()
        history, incidents = await self._serving.availability_history.days()
        pings = [
            {
                "id": ping.id,
                "name": ping.label,
                "days": [
                    {"day": day.day.isoformat(), "ok": day.ok, "bad": day.bad, "maintenance": day.maintenance}
                    for day in history[ping.id]
                    if day.ok or day.bad or day.maintenance
                ],
            }
            for ping in PINGS
        ]
        body = {
            "days": HISTORY_DAYS,
            "pings": pings,
            "incidents": [
                {
                    "ping": incident.ping_id,
                    "start": incident.start.isoformat(),
                    "end": incident.end.isoformat(),
                    "minutes": incident.minutes,
                }
                for incident in incidents
            ],
        }
        return _json(body)

    async def _openapi(self, request: Request) -> Response:
        return Response(self._spec_text, 200, media_type=YAML)

    @functools.cached_property
    def _spec_text(self) -> str:
        spec = restricted_spec([*self.paths, *self.utility_paths], self._server_url)
        text: str = yaml.dump(spec, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
        return text


def _whole(request: Request, name: str) -> int:
    """A whole number parameter; 0 (the default) when absent or not one, as the real API reads it."""
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() and len(value) <= _PAGE_DIGITS else 0


def delegation_body(delegation: ListedDelegation) -> dict[str, Any]:
    """One delegation as the real editor API renders it (PLATFORM.md §3)."""
    return {
        "id": delegation.delegation_id,
        "authorization_request_id": int(delegation.datapass_id) if delegation.datapass_id.isdigit() else None,
        "siret": delegation.siret,
        "intitule": delegation.label,
        "scopes": list(delegation.scopes),
        "statut": delegation.state.value,
        "created_at": dt.datetime.fromtimestamp(delegation.created_at, dt.UTC)
        .isoformat()
        .replace("+00:00", "Z"),
    }


async def _introspection(call: Exchange) -> Response:
    token = call.holder
    return _json({"_id": token.jti, "name": token.habilitation, "scopes": sorted(token.scopes)})
