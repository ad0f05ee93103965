"""The admin REST front's route tables (`gateway.admin_api.rest_call.RestRoute`) and their documentation."""

from __future__ import annotations

import re
from typing import Any

from gateway.admin_api import rest_api, rest_holder, rest_operator
from gateway.admin_api.rest_call import PREFIX, RestRoute

SERVED: tuple[RestRoute[Any], ...] = (*rest_api.ROUTES, *rest_holder.ROUTES)
"""Every route of the admin REST front (the operators' routes are among `rest_api.ROUTES`)."""

_DOCUMENTED = re.compile(r"^\| ``(GET|POST|PATCH|PUT|DELETE) ([^`?]+)(?:\?[^`]*)?`` \|", re.MULTILINE)


def test_every_route_served_is_documented_and_every_route_documented_is_served() -> None:
    """The tables the front is built from and the modules' tables of paths name the same routes."""
    documented = {
        (method, path)
        for module in (rest_api, rest_operator)
        for method, path in _DOCUMENTED.findall(module.__doc__ or "")
    }
    served = {(route.method, PREFIX + route.path) for route in SERVED}
    assert documented == served


def test_a_route_is_declared_once() -> None:
    """Two entries for one method and path would leave the second one unreachable."""
    routes = [(route.method, route.path) for route in SERVED]
    assert len(routes) == len(set(routes))


def test_only_an_invitations_acceptance_needs_no_operator() -> None:
    """Every other route authenticates its caller: an operator, or the console acting for a holder."""
    anonymous = [(route.method, route.path) for route in rest_api.ROUTES if route.anonymous]
    assert anonymous == [("POST", "/invitations/{id}/accept")]
    assert not any(route.anonymous for route in rest_holder.ROUTES)
