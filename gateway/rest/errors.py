"""An `ApiError` as the v3 REST API answers it: HTTP status and ``{"errors": [...]}`` body.

The status is the catalogue's for the code (`runtime.error_catalogue`); a code the
catalogue does not hold (a provider's own, passed through) takes the status of its
gRPC status's class (`_BY_GRPC_STATUS`). The body is the real API's
(CONTRACT.md §4.1): ``code``, ``title``, ``detail``, ``source`` (the parameter at
fault, ``token`` or ``recipient``, else null) and ``meta`` (the ``provider`` of a
provider's error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from gateway.call_path import ProviderStatusError
from runtime.error_catalogue import entry_of
from runtime.errors import ApiError
from runtime.errors import missing_recipient as _missing_recipient

TOKEN_PARAMETER = "token"  # noqa: S105 - the name the real API gives the parameter, not a secret
RECIPIENT_PARAMETER = "recipient"

_BY_GRPC_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 504,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNKNOWN: 502,
}
"""The HTTP status of a code outside the catalogue, by its gRPC status (CONTRACT.md §4.2)."""
_TOKEN_STATUSES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
_RECIPIENT_FIELDS = frozenset(v.field for v in _missing_recipient().violations)


def violations_of(error: ApiError) -> list[tuple[str, str]]:
    """The (field, description) violations of a refusal, the gateway's own or a provider's passed through."""
    if not isinstance(error, ProviderStatusError):
        return [(violation.field, violation.description) for violation in error.violations]
    try:
        details = status_pb2.Status.FromString(error.details_bin).details
    except DecodeError:
        return []
    found = []
    for detail in details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(violation.field, violation.description) for violation in bad.field_violations]
    return found


def http_status(error: ApiError) -> int:
    """The HTTP status the v3 API answers ``error`` with."""
    try:
        return entry_of(error.code).http_status
    except KeyError:
        return _BY_GRPC_STATUS.get(error.status, 500)


def error_body(error: ApiError, parameter_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The v3 body of ``error``: one item of ``errors``.

    Args:
        error: The refusal.
        parameter_names: The route's query parameter for each field path a violation may name
            (`RequestReader.parameter_names`): the first one named is the ``source``.
    """
    source: dict[str, str] | None = None
    fields = [field for field, _ in violations_of(error)]
    if error.status in _TOKEN_STATUSES:
        source = {"parameter": TOKEN_PARAMETER}
    elif any(field in _RECIPIENT_FIELDS for field in fields):
        source = {"parameter": RECIPIENT_PARAMETER}
    else:
        names = parameter_names or {}
        named = [names[field] for field in fields if field in names]
        if named:
            source = {"parameter": named[0]}
    meta = {"provider": error.provider.name} if error.provider is not None else {}
    return {
        "errors": [
            {"code": error.code, "title": error.title, "detail": error.detail, "source": source, "meta": meta}
        ]
    }
