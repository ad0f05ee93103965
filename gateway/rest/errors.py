"""An `ApiError` as the v3 REST API answers it: HTTP status and ``{"errors": [...]}`` body.

The status is the catalogue's for the code (`runtime.error_catalogue`); a code the
catalogue does not hold (a provider's own, passed through) takes the status of its
gRPC status's class (`_BY_GRPC_STATUS`). The body is the real API's
(CONTRACT.md §4.1): ``code``, ``title``, ``detail``, ``source`` (``token`` or
``recipient``, the header ``X-Forwarded-For`` for 00107, else null) and ``meta`` (the
``provider`` of a provider's error), one item per request rule the call broke (VALIDATION.md §2),
in the route's order.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from gateway.forwarding import ProviderStatusError
from runtime.error_catalogue import entry_of, rule_entry
from runtime.errors import DELEGATION_ID_FIELD, ApiError, FieldViolation
from runtime.errors import missing_recipient as _missing_recipient

TOKEN_PARAMETER = "token"  # noqa: S105 - the name the real API gives the parameter, not a secret
RECIPIENT_PARAMETER = "recipient"
ADDRESS_NOT_ALLOWED = "00107"

_BY_GRPC_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAVAILABLE: 504,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNKNOWN: 502,
}
"""The HTTP status of a code outside the catalogue, by its gRPC status (CONTRACT.md §4.2)."""
_TOKEN_STATUSES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
_OWN_SOURCES: dict[str, dict[str, str] | None] = {
    ADDRESS_NOT_ALLOWED: {"header": "X-Forwarded-For"},  # the real API's, whichever header the proxies write
    "00212": {"parameter": DELEGATION_ID_FIELD},
    "00213": None,
}
"""Codes whose ``source`` is not the token's nor the recipient's (VALIDATION.md: 00213 names none)."""
_RECIPIENT_FIELDS = frozenset(v.field for v in _missing_recipient().violations)


def violations_of(error: ApiError) -> list[FieldViolation]:
    """The field violations of a refusal, the gateway's own or a provider's passed through."""
    if not isinstance(error, ProviderStatusError):
        return list(error.violations)
    try:
        details = status_pb2.Status.FromString(error.details_bin).details
    except DecodeError:
        return []
    found = []
    for detail in details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations]
    return found


def broken_rules(error: ApiError) -> list[FieldViolation]:
    """The request rules a refusal reports, one violation each with its code, in the route's order."""
    return [violation for violation in violations_of(error) if violation.code]


def http_status(error: ApiError) -> int:
    """The HTTP status the v3 API answers ``error`` with: its first broken rule's, else its code's."""
    rules = broken_rules(error)
    try:
        return (rule_entry(rules[0].code) if rules else entry_of(error.code)).http_status
    except KeyError:
        return _BY_GRPC_STATUS.get(error.status, 500)


def error_body(error: ApiError) -> dict[str, Any]:
    """The v3 body of ``error``: one item of ``errors`` per broken request rule, else one item.

    ``source`` is given where the real API gives it: ``token`` for the token and scope
    refusals, ``recipient`` for the recipient's; null otherwise, parameter rules included.
    """
    meta = {"provider": error.provider.name} if error.provider is not None else {}
    rules = broken_rules(error)
    if rules:
        items = []
        for rule in rules:
            entry = rule_entry(rule.code)
            items.append(
                _item(rule.code, entry.title, entry.detail, None, meta if rule.code[:2] != "00" else {})
            )
        return {"errors": items}
    source: dict[str, str] | None = None
    if error.code in _OWN_SOURCES:
        source = _OWN_SOURCES[error.code]
    elif error.status in _TOKEN_STATUSES:
        source = {"parameter": TOKEN_PARAMETER}
    elif any(violation.field in _RECIPIENT_FIELDS for violation in violations_of(error)):
        source = {"parameter": RECIPIENT_PARAMETER}
    return {"errors": [_item(error.code, error.title, error.detail, source, meta)]}


def _item(
    code: str, title: str, detail: str, source: dict[str, str] | None, meta: dict[str, str]
) -> dict[str, Any]:
    return {"code": code, "title": title, "detail": detail, "source": source, "meta": meta}
