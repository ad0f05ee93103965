"""The admin REST front for a habilitation holder or an editor (`gateway.admin_api.rest_api` serves it).

Each route acts for the person the console names (``X-Acting-For``), on theirs alone
(`gateway.admin_api.holders`); the table of paths is in `gateway.admin_api.rest_api`'s docstring.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.admin_api.holders import HolderService
from gateway.admin_api.rest_call import Call, RestRoute, issued_json, optional_int, string, token_json
from gateway.registry.model import TOKEN_DEFAULT_DAYS

_WINDOW_DEFAULT = "30h"
"""The statistics' window when the query names none (`gateway.admin_api.holders.WINDOWS`)."""


def _window(call: Call) -> str:
    return call.request.query_params.get("window", _WINDOW_DEFAULT)


async def list_habilitations(holders: HolderService, call: Call) -> Any:
    """Their habilitations."""
    return [habilitation.as_json() for habilitation in await holders.habilitations(call.operator)]


async def get_habilitation(holders: HolderService, call: Call) -> Any:
    """One of theirs: its tokens, its delegations (with their editor's name), its FranceConnect clients."""
    habilitation, tokens, delegations = await holders.habilitation(call.operator, call.id)
    clients = await holders.france_connect_clients(call.operator, habilitation.id)
    return {
        **habilitation.as_json(),
        "tokens": [token_json(token) for token in tokens],
        "delegations": [
            {**delegation.as_json(), "editor_name": editor.name} for delegation, editor in delegations
        ],
        "france_connect_clients": [client.as_json() for client in clients],
    }


async def habilitation_activity(holders: HolderService, call: Call) -> Any:
    """A habilitation's calls over the query's ``window``."""
    return (await holders.habilitation_activity(call.operator, call.id, _window(call))).as_json()


async def habilitation_requests(holders: HolderService, call: Call) -> Any:
    """A habilitation's last calls."""
    return [last.as_json() for last in await holders.habilitation_requests(call.operator, call.id)]


async def prolong(holders: HolderService, call: Call) -> Any:
    """Prolong a token of theirs by the body's ``days``."""
    days = optional_int(call.body, "days") or TOKEN_DEFAULT_DAYS
    return token_json(await holders.prolong(call.operator, call.id, days=days))


async def rotate(holders: HolderService, call: Call) -> Any:
    """Replace a token of theirs, the old one working ``grace_seconds`` longer."""
    grace = dt.timedelta(seconds=optional_int(call.body, "grace_seconds") or 0)
    old, new = await holders.rotate(call.operator, call.id, grace=grace)
    return {"old_token": token_json(old), "new": issued_json(new)}


async def revoke(holders: HolderService, call: Call) -> Any:
    """Revoke a token of theirs now."""
    return token_json(await holders.revoke(call.operator, call.id))


async def revoke_delegation(holders: HolderService, call: Call) -> Any:
    """Revoke a delegation of a habilitation of theirs."""
    return (await holders.revoke_delegation(call.operator, call.id)).as_json()


async def map_france_connect_client(holders: HolderService, call: Call) -> Any:
    """Map a FranceConnect client to the body's ``habilitation_id``, one of theirs."""
    client_id = str(call.request.path_params["client_id"])
    habilitation_id = string(call.body, "habilitation_id")
    return (await holders.map_france_connect_client(call.operator, client_id, habilitation_id)).as_json()


async def list_editors(holders: HolderService, call: Call) -> Any:
    """Their editors."""
    return [editor.as_json() for editor in await holders.editors(call.operator)]


async def get_editor(holders: HolderService, call: Call) -> Any:
    """One of their editors: its tokens, its delegations with their habilitation's label and SIRET."""
    editor, tokens, delegations = await holders.editor(call.operator, call.id)
    return {
        **editor.as_json(),
        "tokens": [token_json(token) for token in tokens],
        "delegations": [
            {**delegation.as_json(), "habilitation_label": habilitation.label, "siret": habilitation.siret}
            for delegation, habilitation in delegations
        ],
    }


async def delegation_activity(holders: HolderService, call: Call) -> Any:
    """An editor's calls under one delegation over the query's ``window``."""
    return (await holders.delegation_activity(call.operator, call.id, _window(call))).as_json()


async def delegation_requests(holders: HolderService, call: Call) -> Any:
    """An editor's last calls under one delegation."""
    return [last.as_json() for last in await holders.delegation_requests(call.operator, call.id)]


ROUTES: tuple[RestRoute[HolderService], ...] = (
    RestRoute("GET", "/holder/habilitations", list_habilitations),
    RestRoute("GET", "/holder/habilitations/{id}", get_habilitation),
    RestRoute("GET", "/holder/habilitations/{id}/activity", habilitation_activity),
    RestRoute("GET", "/holder/habilitations/{id}/requests", habilitation_requests),
    RestRoute("POST", "/holder/tokens/{id}/prolong", prolong),
    RestRoute("POST", "/holder/tokens/{id}/rotate", rotate),
    RestRoute("POST", "/holder/tokens/{id}/revoke", revoke),
    RestRoute("POST", "/holder/delegations/{id}/revoke", revoke_delegation),
    RestRoute("PUT", "/holder/france_connect_clients/{client_id}", map_france_connect_client),
    RestRoute("GET", "/holder/editors", list_editors),
    RestRoute("GET", "/holder/editors/{id}", get_editor),
    RestRoute("GET", "/holder/delegations/{id}/activity", delegation_activity),
    RestRoute("GET", "/holder/delegations/{id}/requests", delegation_requests),
)
"""The holder's routes, in the order they are matched."""
