"""The admin API's REST front, for a console: JSON over HTTP on ``ADMIN_REST_PORT``, never a public port.

The same actions and operator credentials as the gRPC service (`gateway.admin_api.service`):
``Authorization: Bearer <operator secret>`` on every request but an invitation's acceptance. The
maintenance windows and the audit trail's entries are in `gateway.admin_api.rest_operator`.

| method and path | action |
|---|---|
| ``GET /admin/v1/habilitations`` | every habilitation |
| ``POST /admin/v1/habilitations`` | create (body: the habilitation's fields) |
| ``GET /admin/v1/habilitations/{id}`` | one, with its tokens |
| ``PATCH /admin/v1/habilitations/{id}`` | change the fields given (a list replaces; a rate of 0 clears) |
| ``POST /admin/v1/habilitations/{id}/tokens`` | issue a token (body: ``days``, ``kind``, ``environment``) |
| ``GET /admin/v1/tokens?habilitation_id=&expiring_within_days=`` | tokens |
| ``POST /admin/v1/tokens/{id}/revoke`` | body ``reason`` |
| ``POST /admin/v1/tokens/{id}/rotate`` | body ``grace_seconds`` |
| ``POST /admin/v1/tokens/{id}/prolong`` | body ``days`` |
| ``POST /admin/v1/tokens/{id}/ban`` | body ``at`` (ISO 8601, optional), ``reason``, ``replace`` |
| ``GET /admin/v1/editors`` | every editor |
| ``POST /admin/v1/editors`` | record one (body: ``siret``, ``name``, ``allowed_ips``, ``contacts``) |
| ``GET /admin/v1/editors/{id}`` | one, with its tokens and delegations |
| ``POST /admin/v1/editors/{id}/tokens`` | a token (body: ``days``, ``environment``, ``allowed_ips``) |
| ``GET /admin/v1/delegations?editor_id=&habilitation_id=`` | delegations, revoked ones included |
| ``POST /admin/v1/delegations`` | body ``editor_id``, ``habilitation_id``, ``created_via`` (``manual``) |
| ``POST /admin/v1/delegations/{id}/revoke`` | revoke one now |
| ``GET /admin/v1/france_connect_clients`` | every FranceConnect client mapped |
| ``PUT /admin/v1/france_connect_clients/{client_id}`` | map it (body ``habilitation_id``) |
| ``GET /admin/v1/invitations?editor_id=&habilitation_id=`` | an editor's invitations of bodies |
| ``POST /admin/v1/invitations`` | invite a body (body: below); 201 ``{"invitation", "secret"}`` |
| ``POST /admin/v1/invitations/{id}/accept`` | the holder accepts, **no operator** (body: below) |
| ``GET /admin/v1/audit/verify`` | recompute the audit chain |

An invitation's body: ``editor_id``, ``habilitation_id``, ``contact_email`` and ``dpo``
(``given_name``, ``family_name``, ``email``, ``phone``, ``job_title``); its acceptance's:
``secret``, ``siret``, ``terms_accepted``, ``dpo_informed``, answered ``{"invitation",
"delegation"}``.

For a holder or an editor, with the console's credential (role ``console``) and
``X-Acting-For: <their e-mail>``, on theirs alone (`gateway.admin_api.holders`; another's: 404):

| method and path | action |
|---|---|
| ``GET /admin/v1/holder/habilitations`` | their habilitations |
| ``GET /admin/v1/holder/habilitations/{id}`` | one: tokens, delegations, FranceConnect clients |
| ``GET /admin/v1/holder/habilitations/{id}/activity?window=`` | per 10 minutes: ``10m``, ``30h``, ``8d`` |
| ``GET /admin/v1/holder/habilitations/{id}/requests`` | the last calls |
| ``POST /admin/v1/holder/tokens/{id}/prolong`` | body ``days`` |
| ``POST /admin/v1/holder/tokens/{id}/rotate`` | body ``grace_seconds`` |
| ``POST /admin/v1/holder/tokens/{id}/revoke`` | revoke it now |
| ``POST /admin/v1/holder/delegations/{id}/revoke`` | revoke a delegation of their habilitation |
| ``PUT /admin/v1/holder/france_connect_clients/{client_id}`` | map to theirs (``habilitation_id``) |
| ``GET /admin/v1/holder/editors`` | their editors |
| ``GET /admin/v1/holder/editors/{id}`` | one, with its tokens and delegations (with their habilitation) |
| ``GET /admin/v1/holder/delegations/{id}/activity?window=`` | an editor's calls under one delegation |
| ``GET /admin/v1/holder/delegations/{id}/requests`` | its last calls |

Statuses: 400 (a body or value refused: ``{"error", "field"}``), 401, 403, 404, 409 (the
record's state forbids it), 503 (the registry's database unreachable).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin_api import rest_operator
from gateway.admin_api.holders import ACTING_FOR_HEADER, HolderService, acting_for
from gateway.admin_api.service import REFUSED, AdminService, IssuedToken, Operator, Operators, refusal_status
from gateway.registry import store
from gateway.registry.model import (
    DPO_FIELDS,
    TOKEN_DEFAULT_DAYS,
    DataProtectionOfficer,
    DelegationOrigin,
    Environment,
    InvalidInputError,
    Invitation,
    Status,
    TokenKind,
    TokenRecord,
)

Handler = Callable[[Request, Operator, dict[str, Any]], Awaitable[Any]]


def _token_json(token: TokenRecord) -> dict[str, Any]:
    return {**token.as_json(), "state": token.state(dt.datetime.now(dt.UTC)).value}


def _issued_json(issued: IssuedToken | None) -> dict[str, Any] | None:
    return None if issued is None else {"token": _token_json(issued.record), "jwt": issued.jwt}


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(name, "must be a whole number")
    return value


def _strings(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInputError(name, "must be a list of strings")
    return value


def _string(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be a string")
    return value


def _enum(kind: type[Any], body: dict[str, Any], name: str, default: Any) -> Any:
    try:
        return kind(body.get(name, default.value))
    except ValueError:
        raise InvalidInputError(name, f"must be one of {', '.join(item.value for item in kind)}") from None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        raise InvalidInputError("body", "not JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidInputError("body", "must be a JSON object")
    return parsed


def _path_id(request: Request) -> str:
    return str(request.path_params["id"])


def _editor_routes(
    service: AdminService, endpoint: Callable[..., Callable[[Request], Awaitable[Response]]], prefix: str
) -> list[Route]:
    """The routes of editors, delegations and FranceConnect clients, served by ``endpoint``."""

    async def list_editors(_request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        return [editor.as_json() for editor in await service.list_editors(operator)]

    async def create_editor(_request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        created = await service.create_editor(
            operator,
            siret=_string(body, "siret"),
            name=_string(body, "name"),
            allowed_ips=_strings(body, "allowed_ips") or [],
            contacts=_strings(body, "contacts") or [],
        )
        return created.as_json()

    async def get_editor(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        editor, tokens, delegations = await service.get_editor(operator, _path_id(request))
        return {
            **editor.as_json(),
            "tokens": [_token_json(token) for token in tokens],
            "delegations": [delegation.as_json() for delegation in delegations],
        }

    async def issue_editor_token(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        issued = await service.issue_editor_token(
            operator,
            _path_id(request),
            days=_optional_int(body, "days") or TOKEN_DEFAULT_DAYS,
            environment=_enum(Environment, body, "environment", Environment.PRODUCTION),
            allowed_ips=_strings(body, "allowed_ips") or [],
        )
        return _issued_json(issued)

    async def list_delegations(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        found = await service.list_delegations(
            operator,
            editor_id=request.query_params.get("editor_id") or None,
            habilitation_id=request.query_params.get("habilitation_id") or None,
        )
        return [delegation.as_json() for delegation in found]

    async def create_delegation(_request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        created = await service.create_delegation(
            operator,
            editor_id=_string(body, "editor_id"),
            habilitation_id=_string(body, "habilitation_id"),
            origin=_enum(DelegationOrigin, body, "created_via", DelegationOrigin.MANUAL),
        )
        return created.as_json()

    async def revoke_delegation(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        return (await service.revoke_delegation(operator, _path_id(request))).as_json()

    async def list_clients(_request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        return [client.as_json() for client in await service.list_france_connect_clients(operator)]

    async def map_client(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        mapped = await service.map_france_connect_client(
            operator, str(request.path_params["client_id"]), _string(body, "habilitation_id")
        )
        return mapped.as_json()

    return [
        Route(f"{prefix}/editors", endpoint(list_editors), methods=["GET"]),
        Route(f"{prefix}/editors", endpoint(create_editor, 201), methods=["POST"]),
        Route(f"{prefix}/editors/{{id}}", endpoint(get_editor), methods=["GET"]),
        Route(f"{prefix}/editors/{{id}}/tokens", endpoint(issue_editor_token, 201), methods=["POST"]),
        Route(f"{prefix}/delegations", endpoint(list_delegations), methods=["GET"]),
        Route(f"{prefix}/delegations", endpoint(create_delegation, 201), methods=["POST"]),
        Route(f"{prefix}/delegations/{{id}}/revoke", endpoint(revoke_delegation), methods=["POST"]),
        Route(f"{prefix}/france_connect_clients", endpoint(list_clients), methods=["GET"]),
        Route(f"{prefix}/france_connect_clients/{{client_id}}", endpoint(map_client), methods=["PUT"]),
    ]


def _refused(error: Exception) -> Response:
    """A refusal (one of `REFUSED`): ``{"error", "field"}`` with its HTTP status."""
    body = {"error": str(error)}
    if isinstance(error, InvalidInputError):
        body["field"] = error.field
    return JSONResponse(body, status_code=refusal_status(error)[1])


def _invitation_json(invitation: Invitation) -> dict[str, Any]:
    return {**invitation.as_json(), "state": invitation.state(dt.datetime.now(dt.UTC)).value}


def _dpo(body: dict[str, Any]) -> DataProtectionOfficer:
    value = body.get("dpo")
    if not isinstance(value, dict):
        raise InvalidInputError("dpo", "must be an object")
    return DataProtectionOfficer(**{name: _string(value, name) for name in DPO_FIELDS})


def _invitation_routes(
    service: AdminService, endpoint: Callable[..., Callable[[Request], Awaitable[Response]]], prefix: str
) -> list[Route]:
    """The routes of invitations; its acceptance by the body's holder needs no operator (its secret does)."""

    async def list_invitations(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        found = await service.list_invitations(
            operator,
            editor_id=request.query_params.get("editor_id") or None,
            habilitation_id=request.query_params.get("habilitation_id") or None,
        )
        return [_invitation_json(invitation) for invitation in found]

    async def invite(_request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        invitation, secret = await service.invite_body(
            operator,
            editor_id=_string(body, "editor_id"),
            habilitation_id=_string(body, "habilitation_id"),
            contact_email=_string(body, "contact_email"),
            dpo=_dpo(body),
        )
        return {"invitation": _invitation_json(invitation), "secret": secret}

    async def accept(request: Request) -> Response:
        try:
            body = await _body(request)
            invitation, delegation = await service.accept_invitation(
                _path_id(request),
                _string(body, "secret"),
                siret=_string(body, "siret"),
                terms_accepted=body.get("terms_accepted") is True,
                dpo_informed=body.get("dpo_informed") is True,
            )
        except REFUSED as error:
            return _refused(error)
        return JSONResponse({"invitation": _invitation_json(invitation), "delegation": delegation.as_json()})

    return [
        Route(f"{prefix}/invitations", endpoint(list_invitations), methods=["GET"]),
        Route(f"{prefix}/invitations", endpoint(invite, 201), methods=["POST"]),
        Route(f"{prefix}/invitations/{{id}}/accept", accept, methods=["POST"]),
    ]


def _holder_routes(
    holders: HolderService, endpoint: Callable[..., Callable[[Request], Awaitable[Response]]], prefix: str
) -> list[Route]:
    """The routes of a holder or editor (``endpoint`` names them from ``X-Acting-For``)."""

    def window(request: Request) -> str:
        return request.query_params.get("window", "30h")

    async def list_habilitations(_request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return [habilitation.as_json() for habilitation in await holders.habilitations(holder)]

    async def get_habilitation(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        habilitation, tokens, delegations = await holders.habilitation(holder, _path_id(request))
        clients = await holders.france_connect_clients(holder, habilitation.id)
        return {
            **habilitation.as_json(),
            "tokens": [_token_json(token) for token in tokens],
            "delegations": [
                {**delegation.as_json(), "editor_name": editor.name} for delegation, editor in delegations
            ],
            "france_connect_clients": [client.as_json() for client in clients],
        }

    async def map_france_connect_client(request: Request, holder: Operator, body: dict[str, Any]) -> Any:
        client_id = request.path_params["client_id"]
        mapped = await holders.map_france_connect_client(holder, client_id, _string(body, "habilitation_id"))
        return mapped.as_json()

    async def habilitation_activity(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return (await holders.habilitation_activity(holder, _path_id(request), window(request))).as_json()

    async def habilitation_requests(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return [last.as_json() for last in await holders.habilitation_requests(holder, _path_id(request))]

    async def prolong(request: Request, holder: Operator, body: dict[str, Any]) -> Any:
        days = _optional_int(body, "days") or TOKEN_DEFAULT_DAYS
        return _token_json(await holders.prolong(holder, _path_id(request), days=days))

    async def rotate(request: Request, holder: Operator, body: dict[str, Any]) -> Any:
        grace = dt.timedelta(seconds=_optional_int(body, "grace_seconds") or 0)
        old, new = await holders.rotate(holder, _path_id(request), grace=grace)
        return {"old_token": _token_json(old), "new": _issued_json(new)}

    async def revoke(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return _token_json(await holders.revoke(holder, _path_id(request)))

    async def revoke_delegation(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return (await holders.revoke_delegation(holder, _path_id(request))).as_json()

    async def list_editors(_request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return [editor.as_json() for editor in await holders.editors(holder)]

    async def get_editor(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        editor, tokens, delegations = await holders.editor(holder, _path_id(request))
        return {
            **editor.as_json(),
            "tokens": [_token_json(token) for token in tokens],
            "delegations": [
                {
                    **delegation.as_json(),
                    "habilitation_label": habilitation.label,
                    "siret": habilitation.siret,
                }
                for delegation, habilitation in delegations
            ],
        }

    async def delegation_activity(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return (await holders.delegation_activity(holder, _path_id(request), window(request))).as_json()

    async def delegation_requests(request: Request, holder: Operator, _body: dict[str, Any]) -> Any:
        return [last.as_json() for last in await holders.delegation_requests(holder, _path_id(request))]

    at = f"{prefix}/holder"
    return [
        Route(f"{at}/habilitations", endpoint(list_habilitations), methods=["GET"]),
        Route(f"{at}/habilitations/{{id}}", endpoint(get_habilitation), methods=["GET"]),
        Route(f"{at}/habilitations/{{id}}/activity", endpoint(habilitation_activity), methods=["GET"]),
        Route(f"{at}/habilitations/{{id}}/requests", endpoint(habilitation_requests), methods=["GET"]),
        Route(f"{at}/tokens/{{id}}/prolong", endpoint(prolong), methods=["POST"]),
        Route(f"{at}/tokens/{{id}}/rotate", endpoint(rotate), methods=["POST"]),
        Route(f"{at}/tokens/{{id}}/revoke", endpoint(revoke), methods=["POST"]),
        Route(f"{at}/delegations/{{id}}/revoke", endpoint(revoke_delegation), methods=["POST"]),
        Route(
            f"{at}/france_connect_clients/{{client_id}}", endpoint(map_france_connect_client), methods=["PUT"]
        ),
        Route(f"{at}/editors", endpoint(list_editors), methods=["GET"]),
        Route(f"{at}/editors/{{id}}", endpoint(get_editor), methods=["GET"]),
        Route(f"{at}/delegations/{{id}}/activity", endpoint(delegation_activity), methods=["GET"]),
        Route(f"{at}/delegations/{{id}}/requests", endpoint(delegation_requests), methods=["GET"]),
    ]


def _habilitation_routes(
    service: AdminService, endpoint: Callable[..., Callable[[Request], Awaitable[Response]]], prefix: str
) -> list[Route]:
    """The routes of habilitations, served by ``endpoint``."""

    async def list_habilitations(_request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        return [habilitation.as_json() for habilitation in await service.list_habilitations(operator)]

    async def create_habilitation(_request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        created = await service.create_habilitation(
            operator,
            label=_string(body, "label"),
            siret=_string(body, "siret"),
            organisation_name=_string(body, "organisation_name"),
            scopes=_strings(body, "scopes") or [],
            allowed_ips=_strings(body, "allowed_ips") or [],
            rate_per_second=_optional_int(body, "rate_per_second"),
            rate_per_minute=_optional_int(body, "rate_per_minute"),
            contacts=_strings(body, "contacts") or [],
            datapass_id=_string(body, "datapass_id"),
            use_case=_string(body, "use_case"),
            legal_basis=_string(body, "legal_basis"),
        )
        return created.as_json()

    async def get_habilitation(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        habilitation, tokens = await service.get_habilitation(operator, _path_id(request))
        return {**habilitation.as_json(), "tokens": [_token_json(token) for token in tokens]}

    async def update_habilitation(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        per_second, per_minute = (
            _optional_int(body, "rate_per_second"),
            _optional_int(body, "rate_per_minute"),
        )
        changes = store.HabilitationChanges(
            label=_string(body, "label") if "label" in body else None,
            organisation_name=_string(body, "organisation_name") if "organisation_name" in body else None,
            scopes=_strings(body, "scopes"),
            allowed_ips=_strings(body, "allowed_ips"),
            rate_per_second=per_second or None,
            clear_rate_per_second=per_second == 0,
            rate_per_minute=per_minute or None,
            clear_rate_per_minute=per_minute == 0,
            contacts=_strings(body, "contacts"),
            status=_enum(Status, body, "status", Status.VALIDATED) if "status" in body else None,
        )
        return (await service.update_habilitation(operator, _path_id(request), changes)).as_json()

    return [
        Route(f"{prefix}/habilitations", endpoint(list_habilitations), methods=["GET"]),
        Route(f"{prefix}/habilitations", endpoint(create_habilitation, 201), methods=["POST"]),
        Route(f"{prefix}/habilitations/{{id}}", endpoint(get_habilitation), methods=["GET"]),
        Route(f"{prefix}/habilitations/{{id}}", endpoint(update_habilitation), methods=["PATCH"]),
    ]


def _token_routes(
    service: AdminService, endpoint: Callable[..., Callable[[Request], Awaitable[Response]]], prefix: str
) -> list[Route]:
    """The routes of tokens (issue, list, and their lifecycle), served by ``endpoint``."""

    async def issue_token(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        issued = await service.issue_token(
            operator,
            _path_id(request),
            days=_optional_int(body, "days") or TOKEN_DEFAULT_DAYS,
            kind=_enum(TokenKind, body, "kind", TokenKind.CLASSIC),
            environment=_enum(Environment, body, "environment", Environment.PRODUCTION),
        )
        return _issued_json(issued)

    async def list_tokens(request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        days = request.query_params.get("expiring_within_days")
        if days is not None and not days.isdigit():
            raise InvalidInputError("expiring_within_days", "must be a whole number of days")
        tokens = await service.list_tokens(
            operator,
            habilitation_id=request.query_params.get("habilitation_id") or None,
            expiring_within=None if days is None else dt.timedelta(days=int(days)),
        )
        return [_token_json(token) for token in tokens]

    async def revoke(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        return _token_json(await service.revoke_token(operator, _path_id(request), _string(body, "reason")))

    async def rotate(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        grace = dt.timedelta(seconds=_optional_int(body, "grace_seconds") or 0)
        old, new = await service.rotate_token(operator, _path_id(request), grace=grace)
        return {"old_token": _token_json(old), "new": _issued_json(new)}

    async def prolong(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        days = _optional_int(body, "days") or TOKEN_DEFAULT_DAYS
        return _token_json(await service.prolong_token(operator, _path_id(request), days=days))

    async def ban(request: Request, operator: Operator, body: dict[str, Any]) -> Any:
        at = None
        if "at" in body:
            try:
                at = dt.datetime.fromisoformat(_string(body, "at"))
            except ValueError:
                raise InvalidInputError("at", "must be an ISO 8601 date and time") from None
            if at.tzinfo is None:
                raise InvalidInputError("at", "must give its offset (Z or +hh:mm)")
        banned, replacement = await service.ban_token(
            operator,
            _path_id(request),
            at=at,
            reason=_string(body, "reason"),
            replace=body.get("replace") is True,
        )
        return {"token": _token_json(banned), "replacement": _issued_json(replacement)}

    return [
        Route(f"{prefix}/habilitations/{{id}}/tokens", endpoint(issue_token, 201), methods=["POST"]),
        Route(f"{prefix}/tokens", endpoint(list_tokens), methods=["GET"]),
        Route(f"{prefix}/tokens/{{id}}/revoke", endpoint(revoke), methods=["POST"]),
        Route(f"{prefix}/tokens/{{id}}/rotate", endpoint(rotate), methods=["POST"]),
        Route(f"{prefix}/tokens/{{id}}/prolong", endpoint(prolong), methods=["POST"]),
        Route(f"{prefix}/tokens/{{id}}/ban", endpoint(ban), methods=["POST"]),
    ]


def build_app(service: AdminService, operators: Operators, holders: HolderService | None = None) -> Starlette:
    """The REST front of ``service`` for ``operators``, and of ``holders`` for the console (None: none)."""

    def endpoint(
        handler: Handler, status: int = 200, *, for_holder: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                operator = operators.authenticate(request.headers.get("authorization"))
                if for_holder:
                    named = acting_for(request.headers.get(ACTING_FOR_HEADER))
                    operator = dataclasses.replace(operator, acting_for=named)
                body = await _body(request) if request.method in {"POST", "PATCH", "PUT"} else {}
                return JSONResponse(await handler(request, operator, body), status_code=status)
            except REFUSED as error:
                return _refused(error)

        return serve

    async def verify(_request: Request, operator: Operator, _body: dict[str, Any]) -> Any:
        verification = await service.verify_audit(operator)
        return {
            "entries": verification.entries,
            "head": verification.head.hex(),
            "broken_at": verification.broken_at,
        }

    prefix = "/admin/v1"
    return Starlette(
        routes=[
            *_habilitation_routes(service, endpoint, prefix),
            *_token_routes(service, endpoint, prefix),
            *_editor_routes(service, endpoint, prefix),
            *rest_operator.routes(service, endpoint, prefix),
            *_invitation_routes(service, endpoint, prefix),
            Route(f"{prefix}/audit/verify", endpoint(verify), methods=["GET"]),
            *(
                []
                if holders is None
                else _holder_routes(holders, lambda handler: endpoint(handler, for_holder=True), prefix)
            ),
        ]
    )
