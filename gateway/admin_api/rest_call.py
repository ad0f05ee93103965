"""What a handler of the admin REST front reads and declares: its call, its route, the body's fields.

A handler is a module-level ``async (actions, call) -> JSON`` (``actions``: the service it acts on,
``call``: `Call`); a table of `RestRoute` declares each one's method, path and status once, and
`gateway.admin_api.rest_api.build_app` derives the Starlette routes from the tables.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.requests import Request

from gateway.admin_api.service import IssuedToken, Operator, UnauthenticatedError
from gateway.registry.model import InvalidInputError, TokenRecord

Actions = TypeVar("Actions")

PREFIX = "/admin/v1"
"""Every route's path starts with it."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request of the REST front, as its handler reads it."""

    request: Request
    body: dict[str, Any]
    """The JSON object of a POST, PATCH or PUT (``{}`` for another method)."""
    caller: Operator | None
    """The operator authenticated; None on a route that authenticates none (`RestRoute.anonymous`)."""

    @property
    def operator(self) -> Operator:
        """The operator authenticated.

        Raises:
            UnauthenticatedError: the route authenticates none (401 rather than an action by nobody).
        """
        if self.caller is None:
            raise UnauthenticatedError("an operator credential is required: authorization: Bearer <secret>")
        return self.caller

    @property
    def id(self) -> str:
        """The path's ``{id}``."""
        return str(self.request.path_params["id"])

    def query(self, name: str) -> str | None:
        """A query parameter; None when absent or empty."""
        return self.request.query_params.get(name) or None


@dataclass(frozen=True, slots=True)
class RestRoute(Generic[Actions]):
    """A route of the REST front: a method and path below `PREFIX`, its handler, its status."""

    method: str
    path: str
    handler: Callable[[Actions, Call], Awaitable[Any]]
    status: int = 200
    anonymous: bool = False
    """No operator: the request carries its own credential (an invitation's secret)."""


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object of ``request`` (``{}`` when empty).

    Raises:
        InvalidInputError: not JSON, or not an object (field ``body``).
    """
    raw = await request.body()
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        raise InvalidInputError("body", "not JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidInputError("body", "must be a JSON object")
    return parsed


def optional_int(body: dict[str, Any], name: str) -> int | None:
    """A whole number of the body; None when absent. Raises: InvalidInputError (``name``)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(name, "must be a whole number")
    return value


def strings(body: dict[str, Any], name: str) -> list[str] | None:
    """A list of strings of the body; None when absent. Raises: InvalidInputError (``name``)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInputError(name, "must be a list of strings")
    return value


def string(body: dict[str, Any], name: str, default: str = "") -> str:
    """A string of the body; ``default`` when absent. Raises: InvalidInputError (``name``)."""
    value = body.get(name, default)
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be a string")
    return value


def moment(name: str, text: str) -> dt.datetime:
    """The date and time ``text`` (ISO 8601, its offset given) of the field ``name``.

    Raises:
        InvalidInputError: not ISO 8601, or without its offset (``name``).
    """
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(name, "must be an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise InvalidInputError(name, "must give its offset (Z or +hh:mm)")
    return parsed


def token_json(token: TokenRecord) -> dict[str, Any]:
    """A token's record and its state as of now."""
    return {**token.as_json(), "state": token.state(dt.datetime.now(dt.UTC)).value}


def issued_json(issued: IssuedToken | None) -> dict[str, Any] | None:
    """A token just issued and its JWT, shown this once (null for none)."""
    return None if issued is None else {"token": token_json(issued.record), "jwt": issued.jwt}
