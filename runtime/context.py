"""Per-call context shared by the layers of one call: request id and response metadata.

The call boundary opens a `CallContext` for every unary call and sends what the
layers added to it as trailing metadata, whether the call succeeds or fails. That
way the rate limiter, the request id and the handler never overwrite each other's
metadata.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

REQUEST_ID_KEY = "x-request-id"
REQUEST_ID_REFUSED_KEY = "x-request-id-refused"
"""Metadata key by which the gateway tells a provider that the caller's request id was no UUID."""


@dataclass(slots=True)
class CallContext:
    """What the layers of one call know and want to tell the caller."""

    request_id: str
    method: str
    response_metadata: list[tuple[str, str]] = field(default_factory=list)
    metadata: Sequence[tuple[str, str | bytes]] = ()
    """The caller's metadata (gRPC) or headers (HTTP), as the call boundary read them."""
    request_id_refused: bool = False
    """The caller sent a request id that is no UUID: replaced by ``request_id``, and refused by
    the routes that demand a UUID (`runtime.interceptors.request_id_from`)."""
    stopping: bool = False
    """The call came while the server stops: its handler is to refuse it (00504) in its own frame,
    which journals the refusal (`runtime.interceptors.CallBoundary.refused_in_handlers`)."""


_CURRENT: contextvars.ContextVar[CallContext] = contextvars.ContextVar("call_context")


def open_call(
    request_id: str,
    method: str,
    metadata: Sequence[tuple[str, str | bytes]] = (),
    *,
    request_id_refused: bool = False,
) -> CallContext:
    """Start the context of a new call in the current task."""
    call = CallContext(request_id, method, [(REQUEST_ID_KEY, request_id)], metadata, request_id_refused)
    _CURRENT.set(call)
    return call


def new_request_id() -> str:
    """A random UUID, version 4, in its text form (``uuid.uuid4()``'s, at a quarter of its cost)."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]  # RFC 4122: the two top bits of the clock sequence are 10
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def call_of_context() -> CallContext | None:
    """The context of the call the current task serves; None outside a call."""
    return _CURRENT.get(None)


def current_call() -> CallContext:
    """The context of the call the current task serves.

    Raises:
        LookupError: outside a call.
    """
    return _CURRENT.get()
