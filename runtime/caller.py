"""What a provider service knows of the call it serves, from the gateway's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from runtime.context import current_call

RECIPIENT_KEY = "x-recipient"
"""Metadata key of the SIRET of the public body receiving the data, set by the gateway."""
TOKEN_ID_KEY = "x-token-id"  # noqa: S105 - a metadata key, not a secret
"""Metadata key of the caller's token id (jti), set by the gateway."""

ServicerContext = grpc.aio.ServicerContext[Any, Any]
"""The context of a call a servicer serves, whatever its messages."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of one provider call, as far as upstream providers must be told."""

    recipient: str
    """SIRET of the receiving public body; empty when called without the gateway."""
    request_id: str
    """Request id, forwarded upstream as the correlation id."""
    time_remaining: float | None
    """Seconds left before the caller's deadline, if it set one."""
    token_id: str = ""
    """Id (jti) of the caller's token, which some providers want to know; empty without the gateway."""


def caller_of(context: ServicerContext) -> Caller:
    """Read the caller from the call's metadata and deadline."""
    forwarded = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    return Caller(
        recipient=forwarded.get(RECIPIENT_KEY, ""),
        request_id=current_call().request_id,
        time_remaining=context.time_remaining(),
        token_id=forwarded.get(TOKEN_ID_KEY, ""),
    )
