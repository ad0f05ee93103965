"""The caller headers each provider's API wants."""

from __future__ import annotations

from runtime.caller import Caller
from services.common.caller_headers import CallerHeaders

THROUGH_GATEWAY = Caller(recipient="13002526500013", request_id="req-1", time_remaining=5.0, token_id="jti-1")
DIRECT = Caller(recipient="", request_id="req-2", time_remaining=None)


def test_every_provider_gets_the_request_id() -> None:
    """Without anything declared: JSON and the correlation id only."""
    assert CallerHeaders().for_caller(DIRECT) == {"Accept": "application/json", "X-Correlation-ID": "req-2"}


def test_recipient_is_sent_when_the_call_names_one() -> None:
    """The recipient's SIRET goes in the declared header, which is left out when the call has none."""
    headers = CallerHeaders(recipient="X-Siret-Partenaire")
    assert headers.for_caller(THROUGH_GATEWAY)["X-Siret-Partenaire"] == "13002526500013"
    assert "X-Siret-Partenaire" not in headers.for_caller(DIRECT)


def test_consumer_is_the_name_and_the_token_id() -> None:
    """The consumer is '<name> - <token id>', the name alone when the call came without a token."""
    headers = CallerHeaders(consumer="X-Caller", consumer_name="DINUM")
    assert headers.for_caller(THROUGH_GATEWAY)["X-Caller"] == "DINUM - jti-1"
    assert headers.for_caller(DIRECT)["X-Caller"] == "DINUM"
