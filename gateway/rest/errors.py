"""An `ApiError` as the v3 REST API answers it: HTTP status and ``{"errors": [...]}`` body.

The status is the catalogue's for the code (`runtime.error_catalogue`); a code the
catalogue does not hold (a provider's own, passed through) takes the status of its
gRPC status's class (`_BY_GRPC_STATUS`). The body is the real API's
(CONTRACT.md §4.1): ``code``, ``title``, ``detail``, ``source`` (the parameter at
fault, ``token`` or ``recipient``, else null) and ``meta`` (the ``provider`` of a
provider's error).
"""

from __future__ import annotations

from typing import Any

import grpc

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


def http_status(error: ApiError) -> int:
    """The HTTP status the v3 API answers ``error`` with."""
    try:
        return entry_of(error.code).http_status
    except KeyError:
        return _BY_GRPC_STATUS.get(error.status, 500)


def error_body(error: ApiError) -> dict[str, Any]:
    """The v3 body of ``error``: one item of ``errors``."""
    source: dict[str, str] | None = None
    if error.status in _TOKEN_STATUSES:
        source = {"parameter": TOKEN_PARAMETER}
    elif any(violation.field in _RECIPIENT_FIELDS for violation in error.violations):
        source = {"parameter": RECIPIENT_PARAMETER}
    meta = {"provider": error.provider.name} if error.provider is not None else {}
    return {
        "errors": [
            {"code": error.code, "title": error.title, "detail": error.detail, "source": source, "meta": meta}
        ]
    }
