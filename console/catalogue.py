"""The API catalogue as the console shows it, derived from the contract alone.

Each API, its routes (REST paths and gRPC methods), the scopes that open it and, field by field,
the scope that unlocks each returned value come from the contract's descriptors
(`contract.routes`, `contract.catalog`); the title and description of each API come from the
OpenAPI spec the REST front serves (`contract.openapi`). Nothing here lists an API by hand.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from apiparticulier.common.v1 import options_pb2
from contract.catalog import ApiCatalog
from contract.openapi import current_spec
from contract.routes import MessagePlan, Route, build_routes

_SUBJECTS: dict[int, str] = {
    options_pb2.SUBJECT_KIND_IDENTITY_PIVOT: "par l'état civil de la personne, saisi par l'agent",
    options_pb2.SUBJECT_KIND_FRANCE_CONNECT: "par FranceConnect : la personne se connecte elle-même",
    options_pb2.SUBJECT_KIND_INE: "par l'identifiant national étudiant (INE)",
    options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT: "par l'identifiant France Travail",
    options_pb2.SUBJECT_KIND_SPORTIF_IDENTIFIANT: "par l'identifiant de sportif de haut niveau",
}
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True, slots=True)
class FieldView:
    """One returned field: its dotted path in the answer and the scope that unlocks it."""

    path: str
    scope: str | None
    """None: returned to every caller who may call the route."""


@dataclass(frozen=True, slots=True)
class RouteView:
    """One route of an API."""

    grpc_path: str
    http_paths: tuple[str, ...]
    subject: str
    """How the person asked about is named, in words."""
    deprecated: bool
    scopes: tuple[str, ...]
    fields: tuple[FieldView, ...]


@dataclass(frozen=True, slots=True)
class ApiView:
    """One API of the catalogue."""

    label: str
    """``<provider>.<api>``, e.g. ``cnaf.quotient_familial``."""
    provider: str
    title: str
    description: str
    routes: tuple[RouteView, ...]

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope of its current routes."""
        return tuple(
            sorted({scope for route in self.routes if not route.deprecated for scope in route.scopes})
        )

    @property
    def subjects(self) -> tuple[str, ...]:
        """How its current routes name the person, in words."""
        return tuple(dict.fromkeys(route.subject for route in self.routes if not route.deprecated))


def _fields(plan: MessagePlan, prefix: str = "", inherited: str | None = None) -> Iterator[FieldView]:
    for rule in plan.fields:
        path = f"{prefix}{rule.name}"
        scope = rule.scope or inherited
        if rule.nested is not None:
            yield from _fields(rule.nested, f"{path}{'[]' if rule.repeated else ''}.", scope)
        else:
            yield FieldView(path, scope)


def plain(markdown: str) -> str:
    """The first paragraph of a spec description, without its Markdown marks."""
    first = markdown.strip().split("\n")[0]
    return _MARKDOWN_LINK.sub(r"\1", first).replace("**", "").strip()


def _route_view(route: Route) -> RouteView:
    return RouteView(
        grpc_path=route.path,
        http_paths=route.http_paths,
        subject=_SUBJECTS.get(route.subject.kind, "autre"),
        deprecated=route.deprecated,
        scopes=tuple(sorted(route.scopes)),
        fields=tuple(_fields(route.plan)),
    )


@functools.cache
def apis() -> tuple[ApiView, ...]:
    """Every API of the contract, in the ``Api`` enum's order (built once)."""
    paths = current_spec()["paths"]
    views = []
    for entry in ApiCatalog(build_routes()).apis.values():
        operation: dict[str, str | list[str]] = {}
        for route in entry.routes:
            for http_path in route.http_paths:
                operation = operation or paths.get(http_path, {}).get("get", {})
        tags = operation.get("tags") or [entry.label]
        description = operation.get("description", "")
        views.append(
            ApiView(
                label=entry.label,
                provider=entry.routes[0].provider,
                title=str(tags[0]),
                description=plain(description if isinstance(description, str) else ""),
                routes=tuple(_route_view(route) for route in entry.routes),
            )
        )
    return tuple(views)


def api(label: str) -> ApiView | None:
    """The API of ``label``; None for no API of the contract."""
    return next((view for view in apis() if view.label == label), None)
