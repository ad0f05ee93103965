"""The shared upstream HTTP layer against a fake provider on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate

import grpc
import pydantic
import pytest
import structlog

from runtime.caller import Caller
from runtime.errors import ApiError, ErrorSource
from runtime.upstream import UpstreamClient
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer

PROVIDER = ErrorSource("99", "TEST")
CALLER = Caller(recipient="13002526500013", request_id="req-upstream-1", time_remaining=5.0)


class Shape(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True)

    valeur: int
    nom: str


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A fake provider for one test."""
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
async def http(fake: FakeProvider) -> AsyncIterator[UpstreamClient]:
    """A client to the fake provider."""
    client = UpstreamClient(PROVIDER, fake.url, timeout_seconds=2.0)
    yield client
    await client.close()


async def failure(client: UpstreamClient, caller: Caller = CALLER) -> ApiError:
    """The ApiError a GET /data raises, whether from transport or from the status."""
    try:
        response = await client.send("GET", "/data", caller, params={"nom": "DUPONT"})
    except ApiError as error:
        return error
    return client.error_for_status(response)


async def test_nominal_answer_is_returned_and_decoded(fake: FakeProvider, http: UpstreamClient) -> None:
    """A 200 comes back with its body; the query and headers reach the provider as given."""
    fake.script("/data", json_answer({"valeur": 3, "nom": "X"}))
    response = await http.send(
        "GET", "/data", CALLER, params={"nom": "DUPONT"}, headers={"X-Correlation-ID": "abc"}
    )
    assert response.status_code == 200
    assert http.decode(response, Shape) == Shape(valeur=3, nom="X")
    (received,) = fake.to("/data")
    assert (received.method, received.param("nom")) == ("GET", "DUPONT")
    assert received.headers["x-correlation-id"] == "abc"


async def test_slow_answer_past_the_callers_deadline_is_a_timeout(
    fake: FakeProvider, http: UpstreamClient
) -> None:
    """The caller's deadline, shorter than the configured timeout, cuts the wait: PP002, fast."""
    fake.script("/data", Answer(200, {"valeur": 1, "nom": "X"}, delay=3.0))
    started = time.monotonic()
    error = await failure(http, Caller("13002526500013", "req", time_remaining=0.2))
    assert time.monotonic() - started < 1.0
    assert (error.status, error.code, error.provider) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "99002",
        PROVIDER,
    )
    assert error.retry_after_seconds is not None


async def test_configured_timeout_applies_without_a_caller_deadline(fake: FakeProvider) -> None:
    """Without a caller deadline, the configured timeout bounds the call."""
    fake.script("/data", Answer(200, {}, delay=3.0))
    client = UpstreamClient(PROVIDER, fake.url, timeout_seconds=0.2)
    try:
        error = await failure(client, Caller("", "req", time_remaining=None))
    finally:
        await client.close()
    assert error.code == "99002"


async def test_spent_deadline_sends_nothing(fake: FakeProvider, http: UpstreamClient) -> None:
    """A caller with no time left gets PP002 without the provider being asked."""
    error = await failure(http, Caller("", "req", time_remaining=0.0))
    assert error.code == "99002"
    assert fake.received == []


@pytest.mark.parametrize(
    ("status", "grpc_status", "code", "retry"),
    [
        (500, grpc.StatusCode.UNKNOWN, "99999", False),
        (502, grpc.StatusCode.UNAVAILABLE, "99001", True),
        (503, grpc.StatusCode.UNAVAILABLE, "99001", True),
        (504, grpc.StatusCode.DEADLINE_EXCEEDED, "99002", True),
        (418, grpc.StatusCode.UNKNOWN, "99999", False),
        (302, grpc.StatusCode.UNKNOWN, "99999", False),
    ],
)
async def test_error_statuses_map_to_the_error_model(
    fake: FakeProvider,
    http: UpstreamClient,
    status: int,
    grpc_status: grpc.StatusCode,
    code: str,
    retry: bool,
) -> None:
    """5xx and unexpected statuses become provider errors, with RetryInfo where a retry helps."""
    fake.script("/data", Answer(status, {"detail": "DUPONT broke"}, {"Location": "/elsewhere"}))
    error = await failure(http)
    assert (error.status, error.code, error.provider) == (grpc_status, code, PROVIDER)
    assert (error.retry_after_seconds is not None) is retry
    assert "DUPONT" not in str(error) and "DUPONT" not in error.detail


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), (None, 10.0), ("soon", 10.0)],
)
async def test_provider_rate_limit_carries_its_retry_after(
    fake: FakeProvider, http: UpstreamClient, retry_after: str | None, expected: float
) -> None:
    """429 is PP008, waiting what Retry-After says (10 s when it says nothing usable)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    fake.script("/data", Answer(429, {}, headers))
    error = await failure(http)
    assert (error.status, error.code) == (grpc.StatusCode.UNAVAILABLE, "99008")
    assert error.retry_after_seconds == expected


async def test_retry_after_as_an_http_date(fake: FakeProvider, http: UpstreamClient) -> None:
    """Retry-After may be a date: the wait is the time until then."""
    fake.script("/data", Answer(429, {}, {"Retry-After": formatdate(time.time() + 30, usegmt=True)}))
    error = await failure(http)
    assert error.retry_after_seconds is not None
    assert 25 <= error.retry_after_seconds <= 31


@pytest.mark.parametrize(
    "body",
    ["{not json", b"\xff\xfe", {"valeur": "3", "nom": "X"}, {"nom": "X"}, [1, 2], None],
)
async def test_body_that_is_not_the_expected_json_is_an_unknown_answer(
    fake: FakeProvider, http: UpstreamClient, body: object
) -> None:
    """Malformed JSON, wrong types (strictly: "3" is no int), missing fields, no body: PP999."""
    fake.script("/data", Answer(200, body))
    response = await http.send("GET", "/data", CALLER)
    with pytest.raises(ApiError) as raised:
        http.decode(response, Shape)
    assert (raised.value.status, raised.value.code) == (grpc.StatusCode.UNKNOWN, "99999")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_refused_connection_is_unavailable() -> None:
    """Nothing listening on the port: PP001 with RetryInfo."""
    client = UpstreamClient(PROVIDER, f"http://127.0.0.1:{closed_port()}")
    try:
        error = await failure(client)
    finally:
        await client.close()
    assert (error.status, error.code) == (grpc.StatusCode.UNAVAILABLE, "99001")
    assert error.retry_after_seconds is not None


async def test_unresolvable_host_is_a_dns_failure() -> None:
    """A name under the reserved .invalid TLD never resolves: PP004."""
    client = UpstreamClient(PROVIDER, "http://provider.invalid")
    try:
        error = await failure(client)
    finally:
        await client.close()
    assert (error.status, error.code) == (grpc.StatusCode.UNAVAILABLE, "99004")


async def test_connection_closed_without_answer_is_a_timeout(
    fake: FakeProvider, http: UpstreamClient
) -> None:
    """A provider that hangs up without answering counts as a timeout, as upstream (EOF): PP002."""
    fake.script("/data", Answer(hang_up=True))
    error = await failure(http)
    assert (error.status, error.code) == (grpc.StatusCode.DEADLINE_EXCEEDED, "99002")


async def test_failures_are_logged_without_request_data(fake: FakeProvider, http: UpstreamClient) -> None:
    """A failure's log event holds the provider, status and kind: no URL, query or body."""
    fake.script("/data", Answer(503, {"nom": "DUPONT"}))
    with structlog.testing.capture_logs() as events:
        await failure(http)
    (event,) = [e for e in events if e["event"] == "upstream_failure"]
    assert event["provider"] == "TEST"
    assert event["status"] == 503
    assert event["error_kind"] == "provider_unavailable"
    assert "DUPONT" not in repr(events)
