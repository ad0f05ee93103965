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
``X-Acting-For: <their e-mail>``, on theirs alone (`gateway.admin_api.holders`; another's: 404),
served by `gateway.admin_api.rest_holder`:

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
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin_api import rest_holder, rest_operator
from gateway.admin_api.actions import AdminService
from gateway.admin_api.holders import ACTING_FOR_HEADER, HolderService, acting_for
from gateway.admin_api.rest_call import (
    PREFIX,
    Actions,
    Call,
    RestRoute,
    issued_json,
    moment,
    optional_int,
    read_body,
    string,
    strings,
    token_json,
)
from gateway.admin_api.service import (
    REFUSED,
    Operator,
    Operators,
    OwnerFilter,
    TokenTerms,
    refusal_status,
)
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
)

_WITH_BODY = frozenset({"POST", "PATCH", "PUT"})


def _enum(kind: type[Any], body: dict[str, Any], name: str, default: Any) -> Any:
    try:
        return kind(body.get(name, default.value))
    except ValueError:
        raise InvalidInputError(name, f"must be one of {', '.join(item.value for item in kind)}") from None


def _terms(body: dict[str, Any]) -> TokenTerms:
    """A new token's ``days`` and ``environment`` of the body."""
    return {
        "days": optional_int(body, "days") or TOKEN_DEFAULT_DAYS,
        "environment": _enum(Environment, body, "environment", Environment.PRODUCTION),
    }


def _of(call: Call) -> OwnerFilter:
    """The editor or habilitation whose records the query asks for (absent: any)."""
    return {"editor_id": call.query("editor_id"), "habilitation_id": call.query("habilitation_id")}


def _invitation_json(invitation: Invitation) -> dict[str, Any]:
    return {**invitation.as_json(), "state": invitation.state(dt.datetime.now(dt.UTC)).value}


def _dpo(body: dict[str, Any]) -> DataProtectionOfficer:
    value = body.get("dpo")
    if not isinstance(value, dict):
        raise InvalidInputError("dpo", "must be an object")
    return DataProtectionOfficer(**{name: string(value, name) for name in DPO_FIELDS})


# -- habilitations ----------------------------------------------------------------------------------


async def list_habilitations(service: AdminService, call: Call) -> Any:
    """Every habilitation."""
    return [habilitation.as_json() for habilitation in await service.list_habilitations(call.operator)]


async def create_habilitation(service: AdminService, call: Call) -> Any:
    """Create a habilitation from the body's fields."""
    body = call.body
    created = await service.create_habilitation(
        call.operator,
        label=string(body, "label"),
        siret=string(body, "siret"),
        organisation_name=string(body, "organisation_name"),
        scopes=strings(body, "scopes") or [],
        allowed_ips=strings(body, "allowed_ips") or [],
        rate_per_second=optional_int(body, "rate_per_second"),
        rate_per_minute=optional_int(body, "rate_per_minute"),
        contacts=strings(body, "contacts") or [],
        datapass_id=string(body, "datapass_id"),
        use_case=string(body, "use_case"),
        legal_basis=string(body, "legal_basis"),
    )
    return created.as_json()


async def get_habilitation(service: AdminService, call: Call) -> Any:
    """One habilitation, with its tokens."""
    habilitation, tokens = await service.get_habilitation(call.operator, call.id)
    return {**habilitation.as_json(), "tokens": [token_json(token) for token in tokens]}


async def update_habilitation(service: AdminService, call: Call) -> Any:
    """Change the fields the body gives (a list replaces; a rate of 0 clears)."""
    body = call.body
    per_second, per_minute = optional_int(body, "rate_per_second"), optional_int(body, "rate_per_minute")
    changes = store.HabilitationChanges(
        label=string(body, "label") if "label" in body else None,
        organisation_name=string(body, "organisation_name") if "organisation_name" in body else None,
        scopes=strings(body, "scopes"),
        allowed_ips=strings(body, "allowed_ips"),
        rate_per_second=per_second or None,
        clear_rate_per_second=per_second == 0,
        rate_per_minute=per_minute or None,
        clear_rate_per_minute=per_minute == 0,
        contacts=strings(body, "contacts"),
        status=_enum(Status, body, "status", Status.VALIDATED) if "status" in body else None,
    )
    return (await service.update_habilitation(call.operator, call.id, changes)).as_json()


# -- tokens -----------------------------------------------------------------------------------------


async def issue_token(service: AdminService, call: Call) -> Any:
    """Issue a token of the path's habilitation; its JWT this once."""
    terms = _terms(call.body)
    kind = _enum(TokenKind, call.body, "kind", TokenKind.CLASSIC)
    return issued_json(await service.issue_token(call.operator, call.id, kind=kind, **terms))


async def list_tokens(service: AdminService, call: Call) -> Any:
    """Tokens of a habilitation, or expiring within a number of days."""
    days = call.request.query_params.get("expiring_within_days")
    if days is not None and not days.isdigit():
        raise InvalidInputError("expiring_within_days", "must be a whole number of days")
    tokens = await service.list_tokens(
        call.operator,
        habilitation_id=call.query("habilitation_id"),
        expiring_within=None if days is None else dt.timedelta(days=int(days)),
    )
    return [token_json(token) for token in tokens]


async def revoke_token(service: AdminService, call: Call) -> Any:
    """Revoke a token now, for the body's ``reason``."""
    return token_json(await service.revoke_token(call.operator, call.id, string(call.body, "reason")))


async def rotate_token(service: AdminService, call: Call) -> Any:
    """Replace a token, the old one working ``grace_seconds`` longer."""
    grace = dt.timedelta(seconds=optional_int(call.body, "grace_seconds") or 0)
    old, new = await service.rotate_token(call.operator, call.id, grace=grace)
    return {"old_token": token_json(old), "new": issued_json(new)}


async def prolong_token(service: AdminService, call: Call) -> Any:
    """Move a token's expiry to the body's ``days`` from now."""
    days = optional_int(call.body, "days") or TOKEN_DEFAULT_DAYS
    return token_json(await service.prolong_token(call.operator, call.id, days=days))


async def ban_token(service: AdminService, call: Call) -> Any:
    """Ban a token from the body's ``at`` (now when absent), replaced when ``replace`` is true."""
    body = call.body
    at = moment("at", string(body, "at")) if "at" in body else None
    banned, replacement = await service.ban_token(
        call.operator, call.id, at=at, reason=string(body, "reason"), replace=body.get("replace") is True
    )
    return {"token": token_json(banned), "replacement": issued_json(replacement)}


# -- editors, delegations, FranceConnect clients ----------------------------------------------------


async def list_editors(service: AdminService, call: Call) -> Any:
    """Every editor."""
    return [editor.as_json() for editor in await service.list_editors(call.operator)]


async def create_editor(service: AdminService, call: Call) -> Any:
    """Record an editor from the body's fields."""
    created = await service.create_editor(
        call.operator,
        siret=string(call.body, "siret"),
        name=string(call.body, "name"),
        allowed_ips=strings(call.body, "allowed_ips") or [],
        contacts=strings(call.body, "contacts") or [],
    )
    return created.as_json()


async def get_editor(service: AdminService, call: Call) -> Any:
    """One editor, with its tokens and delegations."""
    editor, tokens, delegations = await service.get_editor(call.operator, call.id)
    return {
        **editor.as_json(),
        "tokens": [token_json(token) for token in tokens],
        "delegations": [delegation.as_json() for delegation in delegations],
    }


async def issue_editor_token(service: AdminService, call: Call) -> Any:
    """Issue a token of the path's editor; its JWT this once."""
    terms = _terms(call.body)
    allowed_ips = strings(call.body, "allowed_ips") or []
    return issued_json(
        await service.issue_editor_token(call.operator, call.id, allowed_ips=allowed_ips, **terms)
    )


async def list_delegations(service: AdminService, call: Call) -> Any:
    """Delegations of an editor or a habilitation, revoked ones included."""
    return [delegation.as_json() for delegation in await service.list_delegations(call.operator, **_of(call))]


async def create_delegation(service: AdminService, call: Call) -> Any:
    """Delegate a habilitation to an editor."""
    created = await service.create_delegation(
        call.operator,
        editor_id=string(call.body, "editor_id"),
        habilitation_id=string(call.body, "habilitation_id"),
        origin=_enum(DelegationOrigin, call.body, "created_via", DelegationOrigin.MANUAL),
    )
    return created.as_json()


async def revoke_delegation(service: AdminService, call: Call) -> Any:
    """Revoke a delegation now."""
    return (await service.revoke_delegation(call.operator, call.id)).as_json()


async def list_france_connect_clients(service: AdminService, call: Call) -> Any:
    """Every FranceConnect client mapped."""
    return [client.as_json() for client in await service.list_france_connect_clients(call.operator)]


async def map_france_connect_client(service: AdminService, call: Call) -> Any:
    """Map the path's FranceConnect client to the body's ``habilitation_id``."""
    mapped = await service.map_france_connect_client(
        call.operator, str(call.request.path_params["client_id"]), string(call.body, "habilitation_id")
    )
    return mapped.as_json()


# -- invitations, the audit chain -------------------------------------------------------------------


async def list_invitations(service: AdminService, call: Call) -> Any:
    """An editor's or a habilitation's invitations of bodies."""
    found = await service.list_invitations(call.operator, **_of(call))
    return [_invitation_json(invitation) for invitation in found]


async def invite_body(service: AdminService, call: Call) -> Any:
    """Invite a body; its secret this once."""
    invitation, secret = await service.invite_body(
        call.operator,
        editor_id=string(call.body, "editor_id"),
        habilitation_id=string(call.body, "habilitation_id"),
        contact_email=string(call.body, "contact_email"),
        dpo=_dpo(call.body),
    )
    return {"invitation": _invitation_json(invitation), "secret": secret}


async def accept_invitation(service: AdminService, call: Call) -> Any:
    """The body's holder accepts, with the invitation's secret (no operator)."""
    invitation, delegation = await service.accept_invitation(
        call.id,
        string(call.body, "secret"),
        siret=string(call.body, "siret"),
        terms_accepted=call.body.get("terms_accepted") is True,
        dpo_informed=call.body.get("dpo_informed") is True,
    )
    return {"invitation": _invitation_json(invitation), "delegation": delegation.as_json()}


async def verify_audit(service: AdminService, call: Call) -> Any:
    """Recompute the audit chain."""
    verification = await service.verify_audit(call.operator)
    return {
        "entries": verification.entries,
        "head": verification.head.hex(),
        "broken_at": verification.broken_at,
    }


ROUTES: tuple[RestRoute[AdminService], ...] = (
    RestRoute("GET", "/habilitations", list_habilitations),
    RestRoute("POST", "/habilitations", create_habilitation, 201),
    RestRoute("GET", "/habilitations/{id}", get_habilitation),
    RestRoute("PATCH", "/habilitations/{id}", update_habilitation),
    RestRoute("POST", "/habilitations/{id}/tokens", issue_token, 201),
    RestRoute("GET", "/tokens", list_tokens),
    RestRoute("POST", "/tokens/{id}/revoke", revoke_token),
    RestRoute("POST", "/tokens/{id}/rotate", rotate_token),
    RestRoute("POST", "/tokens/{id}/prolong", prolong_token),
    RestRoute("POST", "/tokens/{id}/ban", ban_token),
    RestRoute("GET", "/editors", list_editors),
    RestRoute("POST", "/editors", create_editor, 201),
    RestRoute("GET", "/editors/{id}", get_editor),
    RestRoute("POST", "/editors/{id}/tokens", issue_editor_token, 201),
    RestRoute("GET", "/delegations", list_delegations),
    RestRoute("POST", "/delegations", create_delegation, 201),
    RestRoute("POST", "/delegations/{id}/revoke", revoke_delegation),
    RestRoute("GET", "/france_connect_clients", list_france_connect_clients),
    RestRoute("PUT", "/france_connect_clients/{client_id}", map_france_connect_client),
    *rest_operator.ROUTES,
    RestRoute("GET", "/invitations", list_invitations),
    RestRoute("POST", "/invitations", invite_body, 201),
    RestRoute("POST", "/invitations/{id}/accept", accept_invitation, anonymous=True),
    RestRoute("GET", "/audit/verify", verify_audit),
)
"""The operators' routes (and an invitation's acceptance), in the order they are matched."""


def _refused(error: Exception) -> Response:
    """A refusal (one of `REFUSED`): ``{"error", "field"}`` with its HTTP status."""
    body = {"error": str(error)}
    if isinstance(error, InvalidInputError):
        body["field"] = error.field
    return JSONResponse(body, status_code=refusal_status(error)[1])


def _routes(
    table: Iterable[RestRoute[Actions]], actions: Actions, authenticate: Callable[[Request], Operator]
) -> list[Route]:
    """The Starlette routes of ``table``, each answering the JSON its handler returns.

    The caller is authenticated (bar an anonymous route), then the body read and the handler run;
    a refusal answers ``{"error", "field"}`` with its status.
    """

    def endpoint(route: RestRoute[Actions]) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                caller = None if route.anonymous else authenticate(request)
                body = await read_body(request) if request.method in _WITH_BODY else {}
                answer = await route.handler(actions, Call(request, body, caller))
            except REFUSED as error:
                return _refused(error)
            return JSONResponse(answer, status_code=route.status)

        return serve

    return [Route(PREFIX + route.path, endpoint(route), methods=[route.method]) for route in table]


def build_app(service: AdminService, operators: Operators, holders: HolderService | None = None) -> Starlette:
    """The REST front of ``service`` for ``operators``, and of ``holders`` for the console (None: none)."""

    def operator(request: Request) -> Operator:
        return operators.authenticate(request.headers.get("authorization"))

    def holder(request: Request) -> Operator:
        console = operator(request)
        return dataclasses.replace(console, acting_for=acting_for(request.headers.get(ACTING_FOR_HEADER)))

    routes = _routes(ROUTES, service, operator)
    if holders is not None:
        routes += _routes(rest_holder.ROUTES, holders, holder)
    return Starlette(routes=routes)
