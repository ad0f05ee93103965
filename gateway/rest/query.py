"""The v3 query parameters of a route, derived from its request message, and the request they make.

Each field of the request is one query parameter named by its proto3 JSON name,
with ``[]`` after a repeated field's (``codesBcnDepartements[]``), except the
subject: an identity pivot is spread into its own fields' parameters
(``nomNaissance``, ``prenoms[]``, ``anneeDateNaissance``, …), and a FranceConnect
subject is the bearer token, not a parameter. ``recipient`` is the call's, not the
request's (`RECIPIENT_PARAMETER`). Parameters the route does not know are ignored,
as the real API ignores them; of a non-repeated parameter given twice, the last wins.

Reading never refuses: the route's rules do (`services.common.validation`), on what was
sent as the real API reads it. A whole number that is not one (letters, digits other than
ASCII ones, a ``+`` or ``_``, blanks other than spaces and tabs around it, out of range) is
read as 0, which the rules of every whole-number parameter refuse, as the real API's do (it
reads letters as 0; the ``+`` its ``to_i`` takes is refused here, the front being strict); a
list sent without its ``[]`` (``prenoms=X``) is read as one empty item, which the rules of
every list refuse, as the real API refuses a list that is not one.
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

    @property
    def in_identity(self) -> bool:
        """A field of the identity pivot (its path goes through the subject)."""
        return len(self.path) > 1


def query_parameters(route: Route) -> tuple[QueryParameter, ...]:
    """The query parameters of a route, ``recipient`` aside, in the request's field order."""
    descriptor: Descriptor = route.request_class.DESCRIPTOR  # type: ignore[assignment]
    parameters: list[QueryParameter] = []
    for field in descriptor.fields:
        if field.name != route.subject.name:
            parameters.append(_parameter(field, (field.name,)))
        elif route.subject.kind == options_pb2.SUBJECT_KIND_IDENTITY_PIVOT:
            pivot: Descriptor = field.message_type  # type: ignore[assignment]  # a message, by its kind
            parameters.extend(_parameter(inner, (field.name, inner.name)) for inner in pivot.fields)
        elif route.subject.kind != options_pb2.SUBJECT_KIND_FRANCE_CONNECT:
            parameters.append(_parameter(field, (field.name,)))
    return tuple(parameters)


def _parameter(field: FieldDescriptor, path: tuple[str, ...]) -> QueryParameter:
    name = f"{field.json_name}[]" if field.is_repeated else field.json_name
    return QueryParameter(name, path, field)


def _integer(text: str) -> int:
    digits = text.strip(" \t")  # blanks around the number are taken, as they always were
    if not _WHOLE_NUMBER.fullmatch(digits):
        return 0
    value = int(digits)
    return value if _INT32[0] <= value <= _INT32[1] else 0


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
    def by_france_connect(self) -> bool:
        """Whether the route's subject is the FranceConnect token sent as the bearer."""
        return self._france_connect is not None

    def read(self, values: Callable[[str], Sequence[str]], france_connect_token: str = "") -> Message:
        """The request of a call (read as the module says, never refused).

        Args:
            values: Every value of a query parameter, by name, in order.
            france_connect_token: The bearer, on a FranceConnect route.
        """
        request = self._route.request_class()
        for parameter in self.parameters:
            given = list(values(parameter.name))
            if not given and parameter.field.is_repeated and values(parameter.name[: -len("[]")]):
                given = [""]
            if not given:
                continue
            convert = _CONVERT[parameter.field.cpp_type]
            parent = request
            for name in parameter.path[:-1]:
                parent = getattr(parent, name)
            if parameter.field.is_repeated:
                getattr(parent, parameter.field.name).extend(convert(value) for value in given)
            else:
                setattr(parent, parameter.field.name, convert(given[-1]))
        if self._france_connect is not None:
            getattr(request, self._france_connect).access_token = france_connect_token
        return request
