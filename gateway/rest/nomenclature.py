"""``GET /api/errors``: the error nomenclature, in the real API's shape, derived from the mesh's catalogue.

The real API serves its generated error list (``errors_particulier.yml``, NEWER-ENDPOINTS §9):

- ``api``: ``"particulier"``;
- ``providers``: each error source's prefix and name (`runtime.providers`);
- ``generic_subcodes``: the provider codes' suffixes with their title and detail
  (`runtime.error_catalogue.PROVIDER_CODES`);
- ``platform_codes``: by HTTP status, the codes that are no provider's (``00xxx``), each
  ``{code, title, detail}`` (`runtime.error_catalogue.CODES`);
- ``endpoints``: by the route's ``x-operationId`` in the spec, its provider and, by HTTP status,
  the codes its provider's error source can answer (and, on a FranceConnect route, those of
  FranceConnect, ``51xxx``).

Everything comes from the catalogue and the spec: nothing here lists a code. One difference:
the parameter rules of a route are checked by its provider service, which the gateway does
not read, so their codes (`runtime.error_catalogue.RULE_CODES`) are listed once under
``platform_codes``, 422, not under each endpoint.

``?operation_id=<x-operationId>`` keeps that endpoint alone; an unknown one is a 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from contract.openapi import current_spec
from contract.routes import Route
from runtime import providers
from runtime.error_catalogue import CODES, PROVIDER_CODES, RULE_CODES, ErrorCode
from runtime.errors import ErrorSource
from runtime.providers import BY_NAME, FRANCE_CONNECT

CACHE_CONTROL = "public, max-age=3600"
"""How long a client may keep the nomenclature, as the real API says."""
_PLATFORM_PREFIX = "00"


def _item(code: str, entry: ErrorCode) -> dict[str, str]:
    return {"code": code, "title": entry.title, "detail": entry.detail}


def _by_status(items: Iterable[tuple[str, ErrorCode]]) -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for code, entry in sorted(items, key=lambda item: (item[1].http_status, item[0])):
        grouped.setdefault(str(entry.http_status), []).append(_item(code, entry))
    return grouped


def _sources() -> list[ErrorSource]:
    """Every error source `runtime.providers` names."""
    return sorted(
        (value for value in vars(providers).values() if isinstance(value, ErrorSource)),
        key=lambda source: source.code,
    )


def _source_codes(source: ErrorSource) -> Iterator[tuple[str, ErrorCode]]:
    """The codes a source answers: its generic ones, and the full codes of its prefix (overriding them)."""
    own = {code: entry for code, entry in CODES.items() if code[:2] == source.code}
    for suffix, entry in PROVIDER_CODES.items():
        code = source.code + suffix
        yield code, own.pop(code, entry)
    yield from own.items()


def _operation_id(item: Any) -> str | None:
    """The ``x-operationId`` under a path item (the spec writes it inside its responses)."""
    if isinstance(item, Mapping):
        for key, value in item.items():
            found = value if key == "x-operationId" else _operation_id(value)
            if isinstance(found, str):
                return found
    elif isinstance(item, list):
        for value in item:
            found = _operation_id(value)
            if found is not None:
                return found
    return None


def nomenclature(routes: Iterable[Route]) -> dict[str, Any]:
    """The whole nomenclature of the routes served (see the module's docstring)."""
    paths = current_spec()["paths"]
    endpoints: dict[str, Any] = {}
    for route in routes:
        source = BY_NAME[route.provider].error_source
        codes = list(_source_codes(source))
        if any(path.endswith("/france_connect") for path in route.http_paths):
            codes += _source_codes(FRANCE_CONNECT)
        for path in route.http_paths:
            operation = _operation_id(paths.get(path))
            if operation is not None:
                endpoints[operation] = {"provider": source.name, "errors": _by_status(codes)}
    platform = [(code, entry) for code, entry in CODES.items() if code[:2] == _PLATFORM_PREFIX]
    return {
        "api": "particulier",
        "providers": {source.code: source.name for source in _sources()},
        "generic_subcodes": {
            suffix: {"title": entry.title, "detail": entry.detail} for suffix, entry in PROVIDER_CODES.items()
        },
        "platform_codes": _by_status([*platform, *RULE_CODES.items()]),
        "endpoints": dict(sorted(endpoints.items())),
    }


def of_operation(whole: Mapping[str, Any], operation_id: str) -> dict[str, Any] | None:
    """The nomenclature with ``operation_id`` alone under ``endpoints``; None when no route has it."""
    endpoint = whole["endpoints"].get(operation_id)
    if endpoint is None:
        return None
    return {**whole, "endpoints": {operation_id: endpoint}}
