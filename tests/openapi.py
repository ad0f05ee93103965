"""The current OpenAPI spec of API Particulier (`contract.openapi`), the oracle of the mesh's answers.

The spec is OpenAPI 3.0, whose schemas are JSON Schema plus ``nullable``, a keyword
JSON Schema does not know: `contract.openapi.json_schema` translates it before
`jsonschema` validates.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pool
from jsonschema import Draft7Validator  # type: ignore[import-untyped]

from apiparticulier.common.v1 import options_pb2
from contract.openapi import current_spec, json_schema
from contract.routes import Route

spec = current_spec
"""The whole spec: the published one and what came since."""


def http_paths(route: Route) -> tuple[str, ...]:
    """The REST paths a provider method declares (its ``api_route`` option)."""
    method = descriptor_pool.Default().FindMethodByName(f"{route.service}.{route.method}")
    return tuple(method.GetOptions().Extensions[options_pb2.api_route].http_paths)


def data_schema(path: str, part: str = "data") -> dict[str, Any]:
    """The spec's schema of the ``data`` (or ``meta``) object of a 200 answer to ``GET path``, as written."""
    answer = spec()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    schema: dict[str, Any] = answer["schema"]["properties"][part]
    return schema


@cache
def _validator(path: str, part: str) -> Draft7Validator:
    schema = json_schema(data_schema(path, part))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def violations(path: str, data: Any, part: str = "data") -> list[str]:
    """How ``data`` breaks the spec's ``data`` (or ``meta``) schema of ``path``: one line per error."""
    return [
        f"{'.'.join(str(step) for step in error.absolute_path) or f'({part})'}: {error.message}"
        for error in _validator(path, part).iter_errors(data)
    ]


def example(schema: dict[str, Any]) -> Any:
    """A value built from the field examples of a (untranslated) spec schema.

    An object gets every property; an array its own example, else one item; a
    field without example, its enum's first value, else null when nullable.

    Raises:
        KeyError: a field that cannot be null has no example.
    """
    if schema.get("type") == "object":
        return {name: example(field) for name, field in schema.get("properties", {}).items()}
    if "example" in schema:
        return schema["example"]
    if schema.get("type") == "array":
        return [example(schema["items"])]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("nullable") is True:
        return None
    raise KeyError(f"no example for a field that cannot be null: {schema}")
