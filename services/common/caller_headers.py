"""The headers that tell a provider which call this is, and who asks or receives the data."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.caller import Caller

CORRELATION_HEADER = "X-Correlation-ID"
"""Carries the request id to every provider, so one call can be followed on both sides."""


@dataclass(frozen=True, slots=True)
class CallerHeaders:
    """The caller headers one provider's API wants.

    Every provider gets ``Accept: application/json`` and the request id in
    `CORRELATION_HEADER`. Some also want the SIRET of the public body that
    receives the data, others the consumer: a name followed by the id (jti) of
    the caller's token.
    """

    recipient: str | None = None
    """The header of the recipient's SIRET, sent when the call came with one (through the gateway)."""
    consumer: str | None = None
    """The header of ``<consumer_name> - <token id>``, the name alone when the call came with no token id."""
    consumer_name: str = ""
    """Who calls the provider, as the provider registered it."""

    def for_caller(self, caller: Caller) -> dict[str, str]:
        """The headers of one call, in a new dict the adapter may add to."""
        headers = {"Accept": "application/json", CORRELATION_HEADER: caller.request_id}
        if self.recipient is not None and caller.recipient:
            headers[self.recipient] = caller.recipient
        if self.consumer is not None:
            name = self.consumer_name
            headers[self.consumer] = f"{name} - {caller.token_id}" if caller.token_id else name
        return headers
