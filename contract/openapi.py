"""The OpenAPI spec of API Particulier as the mesh serves and tests against it.

``spec/openapi-v3.yaml`` is the real API's spec as published (see
``spec/README.md``), unchanged. ``spec/newer.yaml`` states what the real API
serves since then (MEN v5, Cnous v5 and ``campaignYear``, ARS, the deprecated
versions) and the mesh's own routes, as changes to it: `current_spec` is the
published spec with them applied. The REST front answers as the current spec
says and serves it restricted to its routes, every answer of the mesh is tested
against it, and the property-based test of the front is driven by it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = Path(__file__).with_name("spec") / "openapi-v3.yaml"
"""The published spec, unchanged."""
NEWER_FILE = Path(__file__).with_name("spec") / "newer.yaml"
"""What the real API serves since the published spec, and the mesh's own routes, as changes to it."""


@functools.cache
def published_spec() -> dict[str, Any]:
    """The published spec, parsed (the same object on every call: copy before changing it)."""
    with SPEC_FILE.open(encoding="utf-8") as stream:
        spec: dict[str, Any] = yaml.load(stream, Loader=yaml.CSafeLoader)
    return spec


@functools.cache
def current_spec() -> dict[str, Any]:
    """The published spec with ``newer.yaml`` applied (the same object on every call: copy it to change it).

    A path entry of ``newer.yaml`` with ``from`` starts as a copy of that path's item; the rest
    of the entry is merged into the item (`_merged`).

    Raises:
        KeyError: ``from`` names a path the published spec does not have.
    """
    spec = copy.deepcopy(published_spec())
    with NEWER_FILE.open(encoding="utf-8") as stream:
        newer: dict[str, Any] = yaml.load(stream, Loader=yaml.CSafeLoader)
    for path, entry in newer["paths"].items():
        change = dict(entry)
        source = change.pop("from", None)
        item = copy.deepcopy(spec["paths"][source]) if source is not None else spec["paths"].get(path, {})
        spec["paths"][path] = _merged(item, change)
    return spec


def _merged(base: Any, change: Any, key: str = "") -> Any:
    """``change`` merged into ``base``: mappings key by key, ``parameters`` by name, the rest replaced."""
    if isinstance(base, dict) and isinstance(change, dict):
        merged = dict(base)
        for name, value in change.items():
            merged[name] = _merged(base[name], value, name) if name in base else copy.deepcopy(value)
        return merged
    if key == "parameters" and isinstance(base, list) and isinstance(change, dict):
        by_name = {parameter["name"]: parameter for parameter in base}
        kept = [_merged(p, change[p["name"]]) if p["name"] in change else p for p in base]
        return kept + [copy.deepcopy(p) for name, p in change.items() if name not in by_name]
    return copy.deepcopy(change)


def restricted_spec(paths: Iterable[str], server_url: str) -> dict[str, Any]:
    """The current spec restricted to ``paths``, with ``server_url`` as its only server.

    Args:
        paths: Paths of the spec to keep; paths the spec does not have are ignored.
        server_url: The base URL integrators call.
    """
    spec = current_spec()
    kept = set(paths)
    restricted = {key: value for key, value in spec.items() if key not in ("paths", "servers")}
    restricted = copy.deepcopy(restricted)
    restricted["servers"] = [{"url": server_url, "description": "API Particulier mesh, REST v3/v4 front"}]
    restricted["paths"] = {path: copy.deepcopy(item) for path, item in spec["paths"].items() if path in kept}
    return restricted


def query_parameter_names(path: str) -> frozenset[str]:
    """The names of the query parameters the current spec gives a path's GET."""
    operation = current_spec()["paths"][path]["get"]
    return frozenset(p["name"] for p in operation.get("parameters", ()) if p["in"] == "query")


def response_schema(path: str, status: int) -> dict[str, Any]:
    """The JSON Schema of a path's GET answer with ``status`` in the current spec, as a validator reads it.

    OpenAPI 3.0 writes "or null" as ``nullable: true``, which JSON Schema does not know: it
    becomes ``null`` added to the ``type`` (and to an ``enum``). The spec's components are kept,
    so its ``$ref`` resolve.
    """
    spec = current_spec()
    response = spec["paths"][path]["get"]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    converted: dict[str, Any] = json_schema({**schema, "components": spec["components"]})
    return converted


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable`` becomes a ``null`` type.

    A ``null`` in an ``enum`` makes the schema nullable too: OpenAPI 3.0.3 wants
    ``nullable: true`` beside it, but the spec lists null among the values of
    fields the API does send as null (``code_certification_cnav``) without it.
    """
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    translated = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    nullable = schema.get("nullable") is True or None in schema.get("enum", ())
    if nullable and "type" in schema:
        translated["type"] = [schema["type"], "null"]
        if "enum" in schema and None not in schema["enum"]:
            translated["enum"] = [*schema["enum"], None]
    return translated
