"""The v3 JSON of a provider answer: the exact ``data`` object the REST API sends.

Derived from the descriptors alone, so every API renders the same way:

- a set field: its value (``false`` and ``0`` included); integers, int64 too, as
  JSON integers and doubles as JSON numbers, as the published spec types them;
- a field the gateway withheld (named in the response's ``withheld``): absent;
- any other unset field: ``null``, the provider holding no value;
- a repeated field: a list, ``[]`` when empty;
- a message: the same rules, recursively.

proto3 JSON (`google.protobuf.json_format`) cannot do this: it drops false, 0,
empty lists and unset fields, prints int64 as strings, and knows nothing of
withheld fields.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

DATA_FIELD = "data"
"""The field of a provider response that holds the v3 data object."""
WITHHELD_FIELD = "withheld"
"""The response's field mask of the paths, relative to ``data``, the gateway withheld."""
META_FIELD = "meta"
"""The field of a provider response, where its API fills one, that holds the v3 meta object (ANTS's
identity check); every caller sees it whole."""

_SCALARS: Mapping[int, Callable[[Any], Any]] = {
    FieldDescriptor.CPPTYPE_BOOL: bool,
    FieldDescriptor.CPPTYPE_STRING: str,
    FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_INT64: int,
    FieldDescriptor.CPPTYPE_UINT32: int,
    FieldDescriptor.CPPTYPE_UINT64: int,
    FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_FLOAT: float,
}


def data_object(response: Message) -> dict[str, Any]:
    """The v3 ``data`` object of a provider response.

    Args:
        response: A provider response message, with its ``data`` and ``withheld`` fields.

    Returns:
        The JSON object, as ``json.dumps`` takes it.

    Raises:
        TypeError: A data field has a type the v3 API has no JSON for (enum, bytes).
    """
    return render(getattr(response, DATA_FIELD), frozenset(withheld_of(response)))


def meta_object(response: Message) -> dict[str, Any]:
    """The v3 ``meta`` object of a provider response: ``{}`` for the APIs that fill none.

    Args:
        response: A provider response message.
    """
    if META_FIELD not in response.DESCRIPTOR.fields_by_name:
        return {}
    return render(getattr(response, META_FIELD))


def withheld_of(response: Message) -> list[str]:
    """The paths, relative to ``data``, the gateway withheld from a provider response."""
    return list(getattr(response, WITHHELD_FIELD).paths)


def render(message: Message, withheld: Collection[str] = (), prefix: str = "") -> dict[str, Any]:
    """The v3 JSON object of one message, leaving out the fields at the ``withheld`` paths.

    Args:
        message: The message to render.
        withheld: Dotted paths, relative to the message (with ``prefix``), to leave out.
        prefix: The message's own path followed by a dot; empty at the top.
    """
    rendered: dict[str, Any] = {}
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]  # upb's descriptor is the same API
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if path in withheld:
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            rendered[field.name] = [_value(field, item, withheld, path) for item in value]
        elif field.has_presence and not message.HasField(field.name):
            rendered[field.name] = None
        else:
            rendered[field.name] = _value(field, value, withheld, path)
    return rendered


def _value(field: FieldDescriptor, value: Any, withheld: Collection[str], path: str) -> Any:
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return render(value, withheld, f"{path}.")
    convert = _SCALARS.get(field.cpp_type)
    if convert is None:
        raise TypeError(f"{field.full_name}: the v3 JSON has no rendering for this field's type")
    return convert(value)
