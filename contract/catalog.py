"""The API catalogue: each value of the Lookup ``Api`` enum and the routes of its API.

Each ``Api`` value names its API by the ``api_label`` option, and each provider
method declares its API in ``api_route.api``: the catalogue joins the two. A
value that names no API, or an API no value names, stops the gateway at start-up
(the Lookup would silently skip it). Usage statistics and the client speak of
APIs through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apiparticulier.common.v1 import options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from contract.routes import ContractError, Route, RouteTable


@dataclass(frozen=True, slots=True)
class ApiRoutes:
    """The routes of one API, by kind of subject."""

    api: int
    """The ``Api`` value."""
    label: str
    """The API's label, e.g. ``cnaf.quotient_familial``."""
    routes: tuple[Route, ...]
    """Every route of the API, the current ones first (`contract.routes.RouteTable.of_api`)."""

    def route_for(self, kind: int) -> Route | None:
        """The route whose subject is of this ``SubjectKind``, if the API has one; a current one first."""
        for route in self.routes:
            if route.subject.kind == kind:
                return route
        return None


class ApiCatalog:
    """The ``Api`` enum ↔ API labels ↔ routes.

    Args:
        routes: The route table.

    Raises:
        ContractError: an ``Api`` value names no API of the routes, or an API is named by none.
    """

    def __init__(self, routes: RouteTable) -> None:
        labels = {route.api_label for route in routes.routes}
        self._by_api: dict[int, ApiRoutes] = {}
        problems = []
        for value in gateway_pb2.Api.DESCRIPTOR.values:
            if value.number == gateway_pb2.API_UNSPECIFIED:
                continue
            label = value.GetOptions().Extensions[options_pb2.api_label]
            if label not in labels:
                problems.append(f"{value.name} names {label or 'no API'}, which no provider method declares")
                continue
            self._by_api[value.number] = ApiRoutes(value.number, label, routes.of_api(label))
        self._by_label = {entry.label: api for api, entry in self._by_api.items()}
        problems.extend(f"no Api value names {label}" for label in sorted(labels - self._by_label.keys()))
        if problems:
            raise ContractError("the Api enum does not match the APIs of the routes: " + "; ".join(problems))

    @property
    def apis(self) -> Mapping[int, ApiRoutes]:
        """Every API, in enum order."""
        return self._by_api

    def api_of_label(self, label: str) -> int:
        """The ``Api`` value of an API label; ``API_UNSPECIFIED`` for a label of no API."""
        return self._by_label.get(label, gateway_pb2.API_UNSPECIFIED)

    def label_of(self, api: int) -> str | None:
        """The label of an ``Api`` value; None when it has none."""
        entry = self._by_api.get(api)
        return entry.label if entry is not None else None
