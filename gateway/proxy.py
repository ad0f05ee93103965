"""The gateway's call path: every provider method, served under the provider's own name.

A client uses the same generated stub against the gateway as against the
provider. The gateway registers one generic handler per provider service, with
identity serializers: requests go on as the bytes the caller sent, and answers
come back as the bytes the provider sent whenever the token holds every scope
that unlocks a field of the method (the fast path). Only otherwise is the answer
parsed, masked and serialized again.

Every call goes through these steps, in this order (the single place where the
order is written down; `ProviderProxy._steps` follows it, `_serve` records step 7):

1. **authenticate**: the ``authorization`` bearer token (00101 invalid, 00103 expired);
2. **authorize**: the token holds one of the method's scopes (00100; a method
   whose contract names no scope is refused to everybody);
3. **recipient**: ``x-recipient`` is present (00203) and a valid SIRET (00210);
4. **rate limit and revocation**, one Redis round trip (00105 revoked, 00429
   over the limit); the rate-limit metadata goes back with every answer from here on;
5. **forward** to the provider, with the caller's deadline bounded by
   ``DEFAULT_DEADLINE_SECONDS`` (that deadline when the caller sets none) and
   the metadata ``x-request-id``, ``x-recipient``, ``x-token-id`` (and
   ``traceparent`` when tracing is on); a provider's error status and details
   come back unchanged, an unreachable provider is UNAVAILABLE naming it; each
   failure is counted in ``gateway_provider_errors_total``. A FranceConnect
   subject is resolved first (`gateway.france_connect`): the call then needs, and
   is masked with, the scopes both the token and the FranceConnect token hold;
6. **mask** the fields the token's scopes do not unlock;
7. **journal and usage**: one journal event and one usage count per call,
   whatever its outcome (usage only once the token is known).

The gateway's own API (`gateway.api`) reuses steps 4 to 7 (`ProviderProxy.admit`,
`forward`, `account`) for the provider calls of a lookup.

Everything that can be worked out before the first call (routes, scopes, masking
plans, channels and their method callables) is, at start-up.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from contract.routes import Route, RouteTable
from gateway.auth import Token, TokenVerifier
from gateway.availability import AvailabilityTracker
from gateway.france_connect import FRANCE_CONNECT, FranceConnect, france_connect_field
from gateway.journal import Journal
from gateway.masking import mask
from gateway.ratelimit import RateDecision, RateLimiter
from gateway.recipient import recipient_from
from gateway.settings import GatewaySettings
from gateway.usage import UsageRecorder
from runtime import metrics
from runtime.caller import RECIPIENT_KEY, TOKEN_ID_KEY, Caller
from runtime.context import REQUEST_ID_KEY, CallContext, current_call
from runtime.errors import (
    ApiError,
    ErrorSource,
    FieldViolation,
    insufficient_scopes,
    internal_error,
    invalid_argument,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)
from runtime.providers import BY_NAME
from runtime.server import ServiceDefinition
from runtime.tracing import active_tracer, traced_grpc_call

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(eq=False)
class ProviderStatusError(ApiError):
    """A provider's own error, sent back to the caller with its status and details unchanged."""

    message: str = ""
    details_bin: bytes = b""

    def __str__(self) -> str:
        return self.message

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The provider's rich status as it sent it, plus any extra metadata."""
        return ((_DETAILS_KEY, self.details_bin), *self.extra_metadata)


def malformed_request() -> ApiError:
    """The request bytes are not a message of the method (00400, INVALID_ARGUMENT)."""
    return invalid_argument(
        "00400",
        "La requête n'est pas un message valide de la méthode appelée",
        [FieldViolation("request", "must be a serialized request message of the method")],
    )


def provider_error(error: grpc.aio.AioRpcError, provider: ErrorSource) -> ApiError:
    """The error the caller gets for a failed provider call.

    A status with rich details is the provider's own answer and is passed through;
    without details it comes from the transport: the provider could not be
    reached (UNAVAILABLE), did not answer in time, or broke.
    """
    details = None
    # The stubs type these trailers as the sync API's; grpc.aio gives (key, value) pairs.
    trailers: Any = error.trailing_metadata() or ()
    for key, value in trailers:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            details = value
    status = error.code()
    if details is None:
        if status is grpc.StatusCode.UNAVAILABLE:
            return provider_unavailable(provider)
        if status is grpc.StatusCode.DEADLINE_EXCEEDED:
            return provider_timeout(provider)
        return provider_unknown_answer(provider)
    api_code, reason = "", ""
    try:
        for detail in status_pb2.Status.FromString(details).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                api_code, reason = info.metadata.get("code", ""), info.reason
    except DecodeError:
        pass
    return ProviderStatusError(
        status, api_code, reason, "", "", message=error.details() or "", details_bin=details
    )


_Behavior = Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]


class ProviderProxy:
    """Serves every provider method of the route table through the call path."""

    def __init__(
        self,
        routes: RouteTable,
        *,
        settings: GatewaySettings,
        verifier: TokenVerifier,
        limiter: RateLimiter,
        journal: Journal,
        usage: UsageRecorder,
        channels: dict[str, Sequence[grpc.aio.Channel]],
        france_connect: FranceConnect | None = None,
        availability: AvailabilityTracker | None = None,
    ) -> None:
        """Prepare the handlers of every route.

        Args:
            routes: The route table.
            settings: The gateway's settings (default deadline).
            verifier: Token verification.
            limiter: Rate limit and revocation.
            journal: The access journal.
            usage: The usage counters.
            channels: The channels to each provider, used in turn.
            france_connect: Resolves FranceConnect subjects; without it they are UNAVAILABLE.
            availability: Learns from the outcome of every provider call.
        """
        self._routes = routes
        self._verifier = verifier
        self._limiter = limiter
        self._journal = journal
        self._usage = usage
        self._channels = channels
        self._max_deadline = settings.default_deadline_seconds
        self._france_connect = france_connect
        self._availability = availability
        self._targets = {route.path: self._target(route) for route in routes.routes}

    def service_definitions(self) -> list[ServiceDefinition]:
        """One definition per provider service, served under the service's own name."""
        definitions = []
        for service, routes in self._routes.by_service().items():
            handler = grpc.method_handlers_generic_handler(
                service,
                {
                    # No (de)serializers: the call path sees and returns raw bytes.
                    route.method: grpc.unary_unary_rpc_method_handler(self._behavior(route))
                    for route in routes
                },
            )
            definitions.append(ServiceDefinition(service, _registrar(handler)))
        return definitions

    def target(self, path: str) -> Target:
        """The prepared target of a route, by its gRPC path."""
        return self._targets[path]

    def _target(self, route: Route) -> Target:
        return Target(
            route,
            BY_NAME[route.provider].error_source,
            itertools.cycle(
                [
                    channel.unary_unary(route.path, request_serializer=None, response_deserializer=None)
                    for channel in self._channels[route.provider]
                ]
            ),
            france_connect_field(route.request_class.DESCRIPTOR),
        )

    def _behavior(self, route: Route) -> _Behavior:
        target = self._targets[route.path]

        async def behavior(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return await self._serve(target, request, context)

        return behavior

    async def _serve(
        self, target: Target, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        route = target.route
        started = time.perf_counter()
        call = current_call()
        seen = _Seen()
        status, code = "OK", ""
        try:
            return await self._steps(target, request, context, call, seen)
        except ApiError as error:
            status, code = error.status.name, error.code
            raise
        except Exception:
            internal = internal_error()
            status, code = internal.status.name, internal.code
            raise
        finally:
            # After the answer: the journal's hash and write need not delay it.
            asyncio.get_running_loop().call_soon(
                functools.partial(
                    self.account,
                    route,
                    request_id=call.request_id,
                    token=seen.token,
                    recipient=seen.recipient,
                    status=status,
                    code=code,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    subject=seen.subject,
                )
            )

    def account(
        self,
        route: Route,
        *,
        request_id: str,
        token: Token | None,
        recipient: str,
        status: str,
        code: str,
        latency_ms: float,
        subject: Message | None,
    ) -> None:
        """Step 7: the journal event and the usage count of one provider call (usage once the token is known).

        Args:
            route: The method called.
            request_id: The call's request id.
            token: The caller's token, if it was verified.
            recipient: The recipient SIRET, if it was read.
            status: The outcome: ``OK`` or the gRPC status name.
            code: The API Particulier code of a refusal ("" on success).
            latency_ms: How long the call took.
            subject: The request, whose subject the journal hashes (None if unread).
        """
        self._journal.record(
            request_id=request_id,
            token_id=token.jti if token is not None else "",
            recipient=recipient,
            method=route.path,
            provider=route.provider,
            status=status,
            code=code,
            latency_ms=latency_ms,
            subject_digest="" if subject is None else self._journal.subject_digest(subject),
        )
        if token is not None:
            self._usage.count(token.jti, route.api, status)

    def timeout_for(self, context: grpc.aio.ServicerContext[Any, Any]) -> float:
        """The time a provider call may take: the caller's deadline, bounded by the default deadline."""
        remaining = context.time_remaining()
        return self._max_deadline if remaining is None else min(remaining, self._max_deadline)

    async def admit(self, token: Token) -> RateDecision:
        """Step 4: revocation and rate limit, one Redis round trip.

        Returns:
            The decision; its metadata goes back with the answer.

        Raises:
            ApiError: 00105 revoked, or 00429 over the limit (the refusal carries
                the rate-limit metadata itself).
        """
        decision: RateDecision = await self._limiter.check(token.jti, token.rate_limit_per_second or 0)
        if not decision.allowed:
            raise decision.refusal()
        return decision

    async def resolve_france_connect(
        self, request: Message, field: str, token: Token, caller: Caller
    ) -> frozenset[str]:
        """Resolve the FranceConnect subject of a request in place (see `gateway.france_connect`).

        Returns:
            The scopes of both the token and the FranceConnect token.

        Raises:
            ApiError: the FranceConnect token is refused (51101, 51103) or cannot be checked.
        """
        if self._france_connect is None:
            raise provider_unavailable(FRANCE_CONNECT)
        return await self._france_connect.fill(request, field, token.scopes, caller)

    async def _steps(
        self,
        target: Target,
        request: bytes,
        context: grpc.aio.ServicerContext[Any, Any],
        call: CallContext,
        seen: _Seen,
    ) -> bytes:
        route = target.route
        metadata = context.invocation_metadata()
        # 1. authenticate
        token = seen.token = self._verifier.authenticate(metadata)
        # 2. authorize
        if route.scopes.isdisjoint(token.scopes):
            raise insufficient_scopes()
        # 3. recipient
        recipient = seen.recipient = recipient_from(metadata)
        # 4. rate limit and revocation
        decision = await self.admit(token)
        call.response_metadata.extend(decision.metadata)
        # 5. forward, a FranceConnect subject resolved first
        try:
            subject = route.request_class.FromString(request)
        except DecodeError:
            raise malformed_request() from None
        scopes = token.scopes
        if target.france_connect_field is not None:
            caller = Caller(recipient, call.request_id, self.timeout_for(context), token.jti)
            scopes = await self.resolve_france_connect(subject, target.france_connect_field, token, caller)
            if route.scopes.isdisjoint(scopes):
                raise insufficient_scopes()
            request = subject.SerializeToString()
        seen.subject = subject
        return await self.forward(
            target,
            request,
            timeout=self.timeout_for(context),
            request_id=call.request_id,
            recipient=recipient,
            token_id=token.jti,
            scopes=scopes,
        )

    async def forward(
        self,
        target: Target,
        request: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - the gRPC deadline of the provider call, not an asyncio timeout
        request_id: str,
        recipient: str,
        token_id: str,
        scopes: frozenset[str],
    ) -> bytes:
        """Steps 5 and 6 of one provider call: send the request, then mask the answer.

        Args:
            target: The route called.
            request: The serialized request.
            timeout: Seconds the provider may take.
            request_id: Forwarded as ``x-request-id``.
            recipient: Forwarded as ``x-recipient``.
            token_id: Forwarded as ``x-token-id``.
            scopes: The scopes the answer is masked with.

        Returns:
            The serialized, masked answer.

        Raises:
            ApiError: the provider's own error, or the transport's (PP001, PP002, PP999).
        """
        route, provider = target.route, target.provider
        forwarded = ((REQUEST_ID_KEY, request_id), (RECIPIENT_KEY, recipient), (TOKEN_ID_KEY, token_id))
        send = next(target.callables)
        tracer = active_tracer()
        try:
            if tracer is None:
                answer = await send(request, timeout=timeout, metadata=forwarded)
            else:
                # A CLIENT span, its traceparent added to the forwarded metadata.
                answer = await traced_grpc_call(
                    tracer,
                    route.path,
                    route.provider,
                    forwarded,
                    lambda metadata: send(request, timeout=timeout, metadata=metadata),
                )
        except grpc.aio.AioRpcError as error:
            self._observe(route.provider, error.code())
            raise _counted(route, provider_error(error, provider)) from None
        # 6. mask, only when the token lacks a scope of the answer (else the bytes go back as they came)
        if route.plan.scopes <= scopes:
            self._observe(route.provider, grpc.StatusCode.OK)
            return answer
        try:
            response = route.response_class.FromString(answer)
        except DecodeError:
            self._observe(route.provider, grpc.StatusCode.UNKNOWN)
            raise _counted(route, provider_unknown_answer(provider)) from None
        self._observe(route.provider, grpc.StatusCode.OK)
        mask(response, route.plan, scopes)
        return response.SerializeToString()

    def _observe(self, provider: str, status: grpc.StatusCode) -> None:
        if self._availability is not None:
            self._availability.observe(provider, status)


@dataclass(frozen=True, slots=True)
class Target:
    """One route with what its calls need, prepared at start-up."""

    route: Route
    provider: ErrorSource
    callables: Iterator[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]
    france_connect_field: str | None
    """The request's FranceConnect subject field, for the ``...ByFranceConnect`` methods."""


@dataclass(slots=True)
class _Seen:
    """What the steps of one call learnt, for its journal entry and usage count."""

    token: Token | None = None
    recipient: str = ""
    subject: Message | None = None


def _counted(route: Route, error: ApiError) -> ApiError:
    """Count a failed provider call (by provider service, status and code), then hand the error back."""
    metrics.PROVIDER_ERRORS.labels(route.provider, error.status.name, error.code).inc()
    return error


def _registrar(handler: grpc.GenericRpcHandler[Any, Any]) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handler,))

    return add
