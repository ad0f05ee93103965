"""The HTTP layer every upstream backend uses to call its provider.

One `UpstreamClient` per provider and per process holds a pooled
``httpx.AsyncClient``. It bounds every call by the configured timeout (10 s by
default, as the real API waits for its providers) and by what is left of the
caller's gRPC deadline, and it turns every transport failure and generic HTTP
status into the error model, naming the provider:

- connection refused or reset, host unreachable: PP001, UNAVAILABLE;
- connect or read timeout, or the deadline spent: PP002, DEADLINE_EXCEEDED;
- connection closed before any answer (EOF): PP002, as the real backend does;
- host name that does not resolve: PP004, UNAVAILABLE;
- HTTP 429: PP008, UNAVAILABLE, with RetryInfo from Retry-After when given;
- HTTP 502 or 503: PP001; HTTP 504: PP002;
- any other status the adapter did not expect, 500 included: PP999, UNKNOWN;
- a body that is not JSON, or JSON of the wrong shape: PP999, UNKNOWN.

The real backend also maps an unreachable network to its own code (00501) and
TLS failures to PP009; the mesh has no such codes, so both count as PP001.

Adapters do the provider-specific part: they read the statuses that mean
something for their provider (404, 400…) and hand anything else to
`UpstreamClient.error_for_status`, and they decode bodies with
`UpstreamClient.decode` against a pydantic model of the shape they expect.

Personal data never reaches a log or an exception message: a failure is logged
with the provider, the HTTP status and the kind of error only (the request id is
merged in by the logging context), and exceptions from httpx or pydantic, whose
texts may quote URLs with query parameters or upstream bodies, are never chained.

Every exchange is timed in ``upstream_request_seconds`` and every failure is
counted in ``upstream_errors_total``, by provider and kind (`runtime.metrics`).
When tracing is on, each exchange is a CLIENT span whose context reaches the
provider in the ``traceparent`` header (`runtime.tracing`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import errno
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import httpx
import pydantic
import structlog

from runtime.caller import Caller
from runtime.errors import (
    ApiError,
    ErrorSource,
    provider_dns_failure,
    provider_rate_limited,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)
from runtime.metrics import UPSTREAM_ERRORS, UPSTREAM_LATENCY
from runtime.tracing import active_tracer, http_client_span, record_error_kind, record_http_status

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
_DEFAULT_RETRY_SECONDS = 10.0
_UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH})

Shape = TypeVar("Shape", bound=pydantic.BaseModel)


class TokenSource(Protocol):
    """Something that gives the bearer token of the provider's API."""

    async def token(self, caller: Caller, *, refused: str | None = None) -> str:
        """A valid access token, other than ``refused`` (one the provider just refused)."""
        ...


class UpstreamClient:
    """A pooled HTTP client to one provider, speaking the mesh's error model.

    Create one per process (`ProviderSettings.upstream_client` makes it) and close it on shutdown.
    """

    def __init__(
        self,
        provider: ErrorSource,
        base_url: str,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 100,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Open the connection pool.

        Args:
            provider: Named in every error this client raises.
            base_url: Relative request URLs are resolved against it.
            timeout_seconds: Longest wait for one call, before the caller's deadline cuts it shorter.
            verify: TLS verification: an SSL context with the provider's CA, or True for the system store.
            max_connections: Size of the connection pool.
            headers: Headers sent with every request.
        """
        self.provider = provider
        self._timeout = timeout_seconds
        # Redirects are not followed: an unexpected 3xx is an unknown answer, as upstream.
        self._http = httpx.AsyncClient(
            base_url=base_url,
            verify=verify,
            headers=dict(headers or {}),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            trust_env=False,
        )

    def budget(self, caller: Caller) -> float:
        """Seconds one call may take: the configured timeout, cut to the caller's remaining deadline."""
        if caller.time_remaining is None:
            return self._timeout
        return min(self._timeout, caller.time_remaining)

    async def send(
        self,
        method: str,
        url: str,
        caller: Caller,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: str | bytes | None = None,
        auth: httpx.Auth | None = None,
        token_source: TokenSource | None = None,
    ) -> httpx.Response:
        """Send one request and return the provider's answer, whatever its status.

        With a ``token_source``, the request carries its bearer token; when the
        provider answers 401 the token is refreshed once and the request sent
        again, since a token may be revoked or expire before its announced end.
        The whole exchange, token included, fits in `budget`.

        Args:
            method: HTTP method.
            url: Path relative to the base URL, or an absolute URL.
            caller: Whose deadline bounds the call.
            params: Query parameters.
            headers: Headers of this request.
            json: A JSON body.
            data: A form body.
            content: A raw body, for the provider that wants neither JSON nor a form.
            auth: httpx authentication (HTTP Basic for token endpoints).
            token_source: Where the bearer token comes from, if the API needs one.

        Returns:
            The response, body read.

        Raises:
            ApiError: the provider could not be reached or did not answer in time (PP001, PP002, PP004).
        """
        budget = self.budget(caller)
        if budget <= 0:
            self._log_failure("deadline_spent")
            raise provider_timeout(self.provider)
        # httpx times each phase on its own; the asyncio timeout around the exchange bounds the sum.
        request = self._http.build_request(
            method,
            url,
            params=params,
            headers=headers,
            json=json,
            data=data,
            content=content,
            timeout=httpx.Timeout(budget),
        )
        try:
            async with asyncio.timeout(budget):
                if token_source is None:
                    return await self._send_once(request, auth)
                token = await token_source.token(caller)
                request.headers["Authorization"] = f"Bearer {token}"
                response = await self._send_once(request, auth)
                if response.status_code != httpx.codes.UNAUTHORIZED:
                    return response
                # The token was refused before its announced expiry: refresh once, then retry once.
                token = await token_source.token(caller, refused=token)
                request.headers["Authorization"] = f"Bearer {token}"
                return await self._send_once(request, auth)
        except TimeoutError:
            self._log_failure("deadline")
            raise provider_timeout(self.provider) from None

    async def _send_once(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        tracer = active_tracer()
        if tracer is None:
            return await self._exchange(request, auth)
        # A CLIENT span per exchange, its traceparent in the request's headers.
        with http_client_span(
            tracer,
            request.method,
            host=request.url.host,
            port=request.url.port,
            provider=self.provider.name,
            headers=request.headers,
        ) as span:
            response = await self._exchange(request, auth)
            record_http_status(span, response.status_code)
            return response

    async def _exchange(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._http.send(request, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException:
            self._log_failure("timeout")
            raise provider_timeout(self.provider) from None
        except httpx.RemoteProtocolError:
            # The connection closed before any answer: the real backend counts EOF as a timeout.
            self._log_failure("eof")
            raise provider_timeout(self.provider) from None
        except (httpx.TransportError, ssl.SSLError) as exc:
            # With TLS 1.3 a server refusing the client's certificate says so after the client's
            # side of the handshake: the alert comes with the first read, past httpx's mapping.
            kind, error = self._transport_error(exc)
            self._log_failure(kind)
            raise error from None
        else:
            outcome = f"{response.status_code // 100}xx"
            return response
        finally:
            UPSTREAM_LATENCY.labels(self.provider.name, outcome).observe(time.perf_counter() - started)

    def _transport_error(self, exc: BaseException) -> tuple[str, ApiError]:
        for cause in _causes(exc):
            if isinstance(cause, socket.gaierror):
                return "dns", provider_dns_failure(self.provider)
            if isinstance(cause, ssl.SSLError):
                return "tls", provider_unavailable(self.provider)
            if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
                kind = errno.errorcode.get(cause.errno, "connect").lower()
                return kind, provider_unavailable(self.provider)
        return "transport", provider_unavailable(self.provider)

    def error_for_status(self, response: httpx.Response) -> ApiError:
        """The error for a status the adapter has no meaning of its own for.

        429 is the provider's rate limit (with its Retry-After when given), 502
        and 503 its unavailability, 504 its timeout; any other status, 500
        included, is an answer the mesh does not understand (PP999).
        """
        status = response.status_code
        error: ApiError
        if status == httpx.codes.TOO_MANY_REQUESTS:
            error = provider_rate_limited(self.provider, _retry_after(response.headers.get("Retry-After")))
        elif status in (httpx.codes.BAD_GATEWAY, httpx.codes.SERVICE_UNAVAILABLE):
            error = provider_unavailable(self.provider)
        elif status == httpx.codes.GATEWAY_TIMEOUT:
            error = provider_timeout(self.provider)
        else:
            error = provider_unknown_answer(self.provider)
        self._log_failure(error.reason.lower(), status)
        return error

    def decode(self, response: httpx.Response, shape: type[Shape]) -> Shape:
        """The body as the pydantic model of the expected shape.

        Raises:
            ApiError: the body is not JSON or not of that shape (PP999).
        """
        try:
            return shape.model_validate_json(response.content)
        except pydantic.ValidationError:
            self._log_failure("unexpected_body", response.status_code)
            raise provider_unknown_answer(self.provider) from None

    def unknown_answer(self, response: httpx.Response, kind: str) -> ApiError:
        """A PP999 for an answer the adapter found wrong, logged with ``kind`` (no body, no parameter)."""
        self._log_failure(kind, response.status_code)
        return provider_unknown_answer(self.provider)

    def _log_failure(self, kind: str, status: int | None = None) -> None:
        # The one place every upstream failure passes: log, count and mark the trace alike.
        log.warning("upstream_failure", provider=self.provider.name, status=status, error_kind=kind)
        UPSTREAM_ERRORS.labels(self.provider.name, kind).inc()
        record_error_kind(kind)

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, what caused it, and the members of exception groups on the way."""
    found: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(found) < 32:
        current = pending.pop(0)
        found.append(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None and nxt not in found:
                pending.append(nxt)
    return found


def _retry_after(value: str | None) -> float:
    """Seconds to wait, from a Retry-After header in seconds or as an HTTP date."""
    if not value:
        return _DEFAULT_RETRY_SECONDS
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _DEFAULT_RETRY_SECONDS
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
