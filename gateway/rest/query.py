"""The v3 query parameters of a route, derived from its request message, and the request they make.

Each field of the request is one query parameter named by its proto3 JSON name,
with ``[]`` after a repeated field's (``codesBcnDepartements[]``), except the
subject: an identity pivot is spread into its own fields' parameters
(``nomNaissance``, ``prenoms[]``, ``anneeDateNaissance``, …), and a FranceConnect
subject is the bearer token, not a parameter. ``recipient`` is the call's, not the
request's (`RECIPIENT_PARAMETER`). Parameters the route does not know are ignored,
as the real API ignores them; of a non-repeated parameter given twice, the last wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from apiparticulier.common.v1 import options_pb2
from contract.routes import Route
from runtime.errors import ApiError, FieldViolation, bad_request, invalid_civility

RECIPIENT_PARAMETER = "recipient"
"""The query parameter of the recipient's SIRET, on every route."""

_INT32 = (-(2**31), 2**31 - 1)
# ASCII digits only: Python's int() would also take "١٢" (Arabic-Indic), "1_000", "+1" and blanks.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,10}", re.ASCII)


@dataclass(frozen=True, slots=True)
class QueryParameter:
    """One query parameter of a route and the request field it fills."""

    name: str
    """As the v3 API names it (``prenoms[]``)."""
    path: tuple[str, ...]
    """The field's path in the request message (``("identite", "prenoms")``)."""
    field: FieldDescriptor
    in_identity: bool
    """Part of the identity pivot: a value that is no value of its type is refused as 00366."""


def query_parameters(route: Route) -> tuple[QueryParameter, ...]:
    """The query parameters of a route, ``recipient`` aside, in the request's field order."""
    descriptor: Descriptor = route.request_class.DESCRIPTOR  # type: ignore[assignment]
    parameters: list[QueryParameter] = []
    for field in descriptor.fields:
        if field.name != route.subject.name:
            parameters.append(_parameter(field, (field.name,), in_identity=False))
        elif route.subject.kind == options_pb2.SUBJECT_KIND_IDENTITY_PIVOT:
            pivot: Descriptor = field.message_type  # type: ignore[assignment]  # a message, by its kind
            parameters.extend(
                _parameter(inner, (field.name, inner.name), in_identity=True) for inner in pivot.fields
            )
        elif route.subject.kind != options_pb2.SUBJECT_KIND_FRANCE_CONNECT:
            parameters.append(_parameter(field, (field.name,), in_identity=False))
    return tuple(parameters)


def _parameter(field: FieldDescriptor, path: tuple[str, ...], *, in_identity: bool) -> QueryParameter:
    name = f"{field.json_name}[]" if field.is_repeated else field.json_name
    return QueryParameter(name, path, field, in_identity)


def _integer(text: str) -> int:
    digits = text.strip(" \t")  # blanks around the number are taken, as they always were
    if not _WHOLE_NUMBER.fullmatch(digits):
        raise ValueError("not a whole number in ASCII digits")
    value = int(digits)
    if not _INT32[0] <= value <= _INT32[1]:
        raise ValueError("out of range")
    return value


_CONVERT: Mapping[int, Callable[[str], Any]] = {
    FieldDescriptor.CPPTYPE_STRING: str,
    FieldDescriptor.CPPTYPE_INT32: _integer,
}


class RequestReader:
    """Builds a route's request message from a query string.

    Args:
        route: The route.

    Raises:
        TypeError: the request has a parameter of a type no query string carries (the contract
            and this reader disagree; the gateway must not start).
    """

    def __init__(self, route: Route) -> None:
        self._route = route
        self.parameters = query_parameters(route)
        for parameter in self.parameters:
            if parameter.field.cpp_type not in _CONVERT:
                raise TypeError(f"{route.path}: no query parameter form for {parameter.field.full_name}")
        self._france_connect = (
            route.subject.name if route.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT else None
        )

    @property
    def parameter_names(self) -> dict[str, str]:
        """The query parameter of each field path a refusal may name.

        A path is a field's proto3 JSON path (the services' violations: ``identite.prenoms``)
        or the parameter's own name (this reader's).
        """
        names = {parameter.name: parameter.name for parameter in self.parameters}
        for parameter in self.parameters:
            descriptor: Descriptor = self._route.request_class.DESCRIPTOR  # type: ignore[assignment]
            json_path = []
            for name in parameter.path:
                field = descriptor.fields_by_name[name]
                json_path.append(field.json_name)
                if field.message_type is not None:
                    descriptor = field.message_type
            names[".".join(json_path)] = parameter.name
        return names

    @property
    def by_france_connect(self) -> bool:
        """Whether the route's subject is the FranceConnect token sent as the bearer."""
        return self._france_connect is not None

    def read(self, values: Callable[[str], Sequence[str]], france_connect_token: str = "") -> Message:
        """The request of a call.

        Args:
            values: Every value of a query parameter, by name, in order.
            france_connect_token: The bearer, on a FranceConnect route.

        Raises:
            ApiError: 00366 for an identity parameter that is no value of its type (a year in
                letters), 00400 for any other.
        """
        request = self._route.request_class()
        bad: list[QueryParameter] = []
        for parameter in self.parameters:
            given = values(parameter.name)
            if not given:
                continue
            convert = _CONVERT[parameter.field.cpp_type]
            parent = request
            for name in parameter.path[:-1]:
                parent = getattr(parent, name)
            try:
                if parameter.field.is_repeated:
                    getattr(parent, parameter.field.name).extend(convert(value) for value in given)
                else:
                    setattr(parent, parameter.field.name, convert(given[-1]))
            except ValueError:
                bad.append(parameter)
        if bad:
            raise _refusal(bad)
        if self._france_connect is not None:
            getattr(request, self._france_connect).access_token = france_connect_token
        return request


def _refusal(bad: Sequence[QueryParameter]) -> ApiError:
    violations = [FieldViolation(p.name, f"must be a {_kind(p.field)}") for p in bad]
    if all(p.in_identity for p in bad):
        return invalid_civility(violations)
    return bad_request(violations)


def _kind(field: FieldDescriptor) -> str:
    return "whole number" if field.cpp_type == FieldDescriptor.CPPTYPE_INT32 else "text"
