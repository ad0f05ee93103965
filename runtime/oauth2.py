"""OAuth2 client-credentials tokens for the providers' APIs.

A `ClientCredentialsTokenSource` asks the provider's token endpoint for an
access token, keeps it until shortly before its ``expires_in`` runs out, and
lets one task at a time refresh it, so a burst of calls after expiry costs one
token request, not one per call. When the provider refuses a token before its
announced expiry (HTTP 401), `UpstreamClient.send` asks for a fresh one once
and retries the call once.

The token endpoint is called through the provider's own `UpstreamClient`: its
failures (unreachable, timeout, 429, 5xx, a body that is not a token) map like
any upstream failure, and a refused client (400, 401, 403) is an unknown
answer (PP999), since the caller can do nothing about it.

Expected token answer (RFC 6749 §5.1)::

    {"access_token": "…", "token_type": "Bearer", "expires_in": 3600, "scope": "…"}

``expires_in`` may be missing, in which case the token is kept 5 minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from runtime.caller import Caller
from runtime.upstream import UpstreamClient

_DEFAULT_LIFETIME_SECONDS = 300
_MAX_EARLY_REFRESH_SECONDS = 60.0


class OAuth2Client(BaseModel):
    """One OAuth2 client-credentials registration at a provider's token endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, description="The client id.")
    client_secret: SecretStr = Field(description="The client secret.")
    scope: str | None = Field(default=None, description="Scopes asked for, space-separated; none if unset.")


class _TokenAnswer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="ignore")

    access_token: str = pydantic.Field(min_length=1)
    token_type: str = "Bearer"  # noqa: S105 - the token kind, not a secret
    expires_in: int = pydantic.Field(default=_DEFAULT_LIFETIME_SECONDS, ge=1)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float


class ClientCredentialsTokenSource:
    """Access tokens of one OAuth2 client, cached and refreshed one at a time."""

    def __init__(
        self,
        http: UpstreamClient,
        token_url: str,
        client: OAuth2Client,
        *,
        credentials_in_body: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Get tokens for ``client`` from ``token_url``.

        Args:
            http: The provider's client; the token endpoint's failures are the provider's.
            token_url: Absolute URL of the token endpoint.
            client: Client id, secret and scope.
            credentials_in_body: Send the id and secret in the form body (as France Travail
                expects) rather than as HTTP Basic (the default, RFC 6749 §2.3.1).
            clock: Monotonic seconds, for tests.
        """
        self._http = http
        self._token_url = token_url
        self._client = client
        self._credentials_in_body = credentials_in_body
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def token(self, caller: Caller, *, refused: str | None = None) -> str:
        """A valid access token.

        Args:
            caller: Whose deadline bounds a token request, if one is needed.
            refused: A token the provider just refused; a token other than it is
                returned, fetched anew unless another task already did.

        Raises:
            ApiError: the token endpoint failed, as any upstream failure.
        """
        cached = self._usable(refused)
        if cached is not None:
            return cached
        async with self._lock:
            # Another task may have refreshed while this one waited for the lock.
            cached = self._usable(refused)
            if cached is not None:
                return cached
            self._token = None
            self._token = await self._fetch(caller)
            return self._token.value

    def _usable(self, refused: str | None) -> str | None:
        token = self._token
        if token is None or token.value == refused or self._clock() >= token.refresh_at:
            return None
        return token.value

    async def _fetch(self, caller: Caller) -> _Token:
        form = {"grant_type": "client_credentials"}
        if self._client.scope:
            form["scope"] = self._client.scope
        auth: httpx.Auth | None = None
        secret = self._client.client_secret.get_secret_value()
        if self._credentials_in_body:
            form.update(client_id=self._client.client_id, client_secret=secret)
        else:
            auth = httpx.BasicAuth(self._client.client_id, secret)
        started = self._clock()
        response = await self._http.send(
            "POST", self._token_url, caller, data=form, auth=auth, headers={"Accept": "application/json"}
        )
        if response.status_code != httpx.codes.OK:
            raise self._http.error_for_status(response)
        answer = self._http.decode(response, _TokenAnswer)
        if answer.token_type.lower() != "bearer":
            raise self._http.unknown_answer(response, "token_type")
        # Refresh a little before the announced end so that no call leaves with a token about to die.
        margin = min(_MAX_EARLY_REFRESH_SECONDS, answer.expires_in / 10)
        return _Token(answer.access_token, started + answer.expires_in - margin)
