"""The published OpenAPI spec of API Particulier v3/v4, as the mesh serves and tests against it.

``openapi-v3.yaml`` beside this module is the real API's spec as published
(``api_particulier_v3.yaml`` of etalab/siade_staging_data, identical on
particulier.api.gouv.fr), unchanged: the REST front answers as it says, the
contract tests compare the routes' query parameters with it, and the property-based
test of the front is driven by it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = Path(__file__).with_name("openapi-v3.yaml")
"""The published spec, unchanged."""


@functools.cache
def published_spec() -> dict[str, Any]:
    """The published spec, parsed (the same object on every call: copy before changing it)."""
    with SPEC_FILE.open(encoding="utf-8") as stream:
        spec: dict[str, Any] = yaml.load(stream, Loader=yaml.CSafeLoader)
    return spec


def restricted_spec(paths: Iterable[str], server_url: str) -> dict[str, Any]:
    """The published spec restricted to ``paths``, with ``server_url`` as its only server.

    Args:
        paths: Paths of the spec to keep; paths the spec does not have are ignored.
        server_url: The base URL integrators call.
    """
    spec = published_spec()
    kept = set(paths)
    restricted = {key: value for key, value in spec.items() if key not in ("paths", "servers")}
    restricted = copy.deepcopy(restricted)
    restricted["servers"] = [{"url": server_url, "description": "API Particulier mesh, REST v3/v4 front"}]
    restricted["paths"] = {path: copy.deepcopy(item) for path, item in spec["paths"].items() if path in kept}
    return restricted


def query_parameter_names(path: str) -> frozenset[str]:
    """The names of the query parameters the spec gives a path's GET."""
    operation = published_spec()["paths"][path]["get"]
    return frozenset(p["name"] for p in operation.get("parameters", ()) if p["in"] == "query")


def response_schema(path: str, status: int) -> dict[str, Any]:
    """The JSON Schema of a path's GET answer with ``status``, as a JSON Schema validator reads it.

    OpenAPI 3.0 writes "or null" as ``nullable: true``, which JSON Schema does not know: it
    becomes ``null`` added to the ``type`` (and to an ``enum``). The spec's components are kept,
    so its ``$ref`` resolve.
    """
    spec = published_spec()
    response = spec["paths"][path]["get"]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    converted: dict[str, Any] = _json_schema({**schema, "components": spec["components"]})
    return converted


def _json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted
