"""OAuth2 client-credentials tokens against a fake provider on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from pydantic import SecretStr

from runtime.caller import Caller
from runtime.errors import ApiError, ErrorSource
from runtime.oauth2 import ClientCredentialsTokenSource, OAuth2Client
from runtime.upstream import UpstreamClient
from tests.fake_provider import Answer, FakeProvider, json_answer

PROVIDER = ErrorSource("99", "TEST")
CALLER = Caller(recipient="13002526500013", request_id="req-oauth-1", time_remaining=5.0)
CLIENT = OAuth2Client(client_id="mesh", client_secret=SecretStr("s3cret"), scope="read:qf")


def token_answer(token: str, expires_in: int = 3600) -> Answer:
    """A token endpoint's success."""
    return json_answer({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A fake provider with a token endpoint and an API."""
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
async def http(fake: FakeProvider) -> AsyncIterator[UpstreamClient]:
    """A client to the fake provider."""
    client = UpstreamClient(PROVIDER, fake.url, timeout_seconds=2.0)
    yield client
    await client.close()


@pytest.fixture
def clock() -> Clock:
    """The token source's clock."""
    return Clock()


@pytest.fixture
def tokens(fake: FakeProvider, http: UpstreamClient, clock: Clock) -> ClientCredentialsTokenSource:
    """A token source on the fake's /token endpoint."""
    return ClientCredentialsTokenSource(http, f"{fake.url}/token", CLIENT, clock=clock)


async def call_api(http: UpstreamClient, tokens: ClientCredentialsTokenSource) -> int:
    """GET /api with a bearer token; the status."""
    response = await http.send("GET", "/api", CALLER, token_source=tokens)
    return response.status_code


async def test_token_request_is_a_client_credentials_grant_with_basic_auth(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource
) -> None:
    """The client id and secret go as HTTP Basic, the grant and scope in the form; the API gets Bearer."""
    fake.script("/token", token_answer("T1"))
    fake.script("/api", json_answer({}))
    assert await call_api(http, tokens) == 200
    (token_request,) = fake.to("/token")
    assert token_request.method == "POST"
    assert token_request.headers["authorization"] == "Basic " + base64.b64encode(b"mesh:s3cret").decode()
    assert token_request.form() == {"grant_type": "client_credentials", "scope": "read:qf"}
    assert fake.to("/api")[0].headers["authorization"] == "Bearer T1"


async def test_credentials_in_body_when_the_provider_wants_them_there(
    fake: FakeProvider, http: UpstreamClient
) -> None:
    """With credentials_in_body, id and secret are form fields and no Basic header is sent."""
    tokens = ClientCredentialsTokenSource(http, f"{fake.url}/token", CLIENT, credentials_in_body=True)
    fake.script("/token", token_answer("T1"))
    fake.script("/api", json_answer({}))
    await call_api(http, tokens)
    (token_request,) = fake.to("/token")
    assert "authorization" not in token_request.headers
    assert token_request.form()["client_id"] == "mesh"
    assert token_request.form()["client_secret"] == "s3cret"


async def test_token_is_cached_across_calls(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource
) -> None:
    """Several calls, sequential and concurrent, cost one token request."""
    fake.script("/token", token_answer("T1"))
    fake.script("/api", json_answer({}))
    await call_api(http, tokens)
    await asyncio.gather(*(call_api(http, tokens) for _ in range(5)))
    assert len(fake.to("/token")) == 1
    assert {r.headers["authorization"] for r in fake.to("/api")} == {"Bearer T1"}


async def test_concurrent_first_calls_share_one_refresh(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource
) -> None:
    """Calls that all find no token wait for the one refresh in flight instead of each asking."""
    fake.script("/token", Answer(200, {"access_token": "T1", "expires_in": 3600}, delay=0.1))
    fake.script("/api", json_answer({}))
    await asyncio.gather(*(call_api(http, tokens) for _ in range(5)))
    assert len(fake.to("/token")) == 1


async def test_token_is_refreshed_shortly_before_it_expires(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource, clock: Clock
) -> None:
    """Within the last tenth of its life (at most a minute), a token is replaced before use."""
    fake.script("/token", token_answer("T1", expires_in=600), token_answer("T2", expires_in=600))
    fake.script("/api", json_answer({}))
    await call_api(http, tokens)
    clock.now += 530
    await call_api(http, tokens)
    clock.now += 10
    await call_api(http, tokens)
    assert [r.headers["authorization"] for r in fake.to("/api")] == ["Bearer T1", "Bearer T1", "Bearer T2"]


async def test_expired_token_is_refreshed_once_and_the_call_retried(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource
) -> None:
    """A 401 on a cached token: one new token, one retry that succeeds; the endpoint called twice."""
    fake.script("/token", token_answer("OLD"), token_answer("NEW"))
    fake.script("/api", json_answer({}), json_answer({}, status=401), json_answer({}))
    assert await call_api(http, tokens) == 200
    assert await call_api(http, tokens) == 200
    assert len(fake.to("/token")) == 2
    assert [r.headers["authorization"] for r in fake.to("/api")] == ["Bearer OLD", "Bearer OLD", "Bearer NEW"]


async def test_second_401_is_not_retried_again(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource
) -> None:
    """A provider that refuses fresh tokens too gets two tries, not a loop; the 401 is returned."""
    fake.script("/token", token_answer("T1"), token_answer("T2"))
    fake.script("/api", json_answer({}, status=401))
    assert await call_api(http, tokens) == 401
    assert len(fake.to("/api")) == 2
    assert len(fake.to("/token")) == 2


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_answer({"error": "invalid_client"}, status=401), "99999"),
        (Answer(200, "<html>maintenance</html>"), "99999"),
        (json_answer({"token_type": "Bearer"}), "99999"),
        (json_answer({"access_token": "T", "token_type": "mac"}), "99999"),
        (json_answer({}, status=503), "99001"),
        (Answer(429, {}, {"Retry-After": "3"}), "99008"),
    ],
)
async def test_token_endpoint_failures_map_like_any_upstream_failure(
    fake: FakeProvider,
    http: UpstreamClient,
    tokens: ClientCredentialsTokenSource,
    answer: Answer,
    code: str,
) -> None:
    """Refused client, non-token bodies, unavailability and rate limits of the token endpoint."""
    fake.script("/token", answer)
    with pytest.raises(ApiError) as raised:
        await call_api(http, tokens)
    assert raised.value.code == code
    assert fake.to("/api") == []
    assert "s3cret" not in str(raised.value)


async def test_slow_token_endpoint_is_bounded_by_the_callers_deadline(
    fake: FakeProvider, http: UpstreamClient, tokens: ClientCredentialsTokenSource
) -> None:
    """The token request counts against the call's deadline: PP002."""
    fake.script("/token", Answer(200, {"access_token": "T"}, delay=3.0))
    with pytest.raises(ApiError) as raised:
        await http.send("GET", "/api", Caller("", "r", time_remaining=0.2), token_source=tokens)
    assert raised.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
