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
   the metadata ``x-request-id``, ``x-recipient``, ``x-token-id``; a provider's
   error status and details come back unchanged, an unreachable provider is
   UNAVAILABLE naming it;
6. **mask** the fields the token's scopes do not unlock;
7. **journal and usage**: one journal event and one usage count per call,
   whatever its outcome (usage only once the token is known).

Everything that can be worked out before the first call (routes, scopes, masking
plans, channels and their method callables) is, at start-up.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from gateway.auth import Token, TokenVerifier
from gateway.recipient import recipient_from
from gateway.routes import Route, RouteTable, mask
from gateway.settings import GatewaySettings
from runtime.context import REQUEST_ID_KEY, CallContext, current_call
from runtime.errors import (
    ApiError,
    FieldViolation,
    Provider,
    insufficient_scopes,
    internal_error,
    invalid_argument,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)
from runtime.server import ServiceDefinition
from services.common.caller import RECIPIENT_KEY, TOKEN_ID_KEY

_DETAILS_KEY = "grpc-status-details-bin"

PROVIDER_IDENTITIES: dict[str, Provider] = {
    "cnaf": Provider("37", "CNAV"),
    "c2s": Provider("37", "CNAV"),
    "france_travail": Provider("24", "France Travail"),
    "mesr": Provider("25", "MESR"),
    "cnous": Provider("26", "Cnous"),
    "men": Provider("30", "MEN"),
}
"""How the error model names each provider service when the gateway cannot reach it.

cnaf and c2s both reach their caisses through the Sécurité sociale gateway run by
the CNAV, which the error model names for transport failures.
"""


class RateDecisionLike(Protocol):
    """What the proxy reads of a rate-limit decision (`gateway.ratelimit.RateDecision`)."""

    @property
    def allowed(self) -> bool:
        """The call may go on."""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Rate-limit metadata for the answer."""

    def refusal(self) -> ApiError:
        """The error refusing the call (00105 revoked or 00429)."""


class Limiter(Protocol):
    """The rate limiter and revocation check (`gateway.ratelimit.RateLimiter`)."""

    async def check(self, token_id: str, rate_per_second: int) -> Any:
        """Decide about one call of the token; returns a `RateDecisionLike`."""


class JournalLike(Protocol):
    """The access journal (`gateway.journal.Journal`)."""

    def subject_digest(self, request: Message) -> str:
        """Keyed hash of the request's normalised subject."""

    def record(
        self,
        *,
        request_id: str,
        token_id: str,
        recipient: str,
        method: str,
        provider: str,
        status: str,
        code: str,
        latency_ms: float,
        subject_digest: str,
    ) -> None:
        """Write one journal event."""


class UsageLike(Protocol):
    """The usage counters (`gateway.usage.UsageRecorder`)."""

    def count(self, token_id: str, api: str, outcome: str) -> None:
        """Count one call; the outcome is ``OK`` or the gRPC status name."""


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


def provider_error(error: grpc.aio.AioRpcError, provider: Provider) -> ApiError:
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
        limiter: Limiter,
        journal: JournalLike,
        usage: UsageLike,
        channels: dict[str, Sequence[grpc.aio.Channel]],
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
        """
        self._routes = routes
        self._verifier = verifier
        self._limiter = limiter
        self._journal = journal
        self._usage = usage
        self._channels = channels
        self._max_deadline = settings.default_deadline_seconds

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

    def _behavior(self, route: Route) -> _Behavior:
        target = _Target(
            route,
            PROVIDER_IDENTITIES.get(route.provider, Provider("00", route.provider)),
            itertools.cycle(
                [
                    channel.unary_unary(route.path, request_serializer=None, response_deserializer=None)
                    for channel in self._channels[route.provider]
                ]
            ),
        )

        async def behavior(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return await self._serve(target, request, context)

        return behavior

    async def _serve(
        self, target: _Target, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
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
            # 7. journal and usage
            token = seen.token
            self._journal.record(
                request_id=call.request_id,
                token_id=token.jti if token is not None else "",
                recipient=seen.recipient,
                method=route.path,
                provider=route.provider,
                status=status,
                code=code,
                latency_ms=(time.perf_counter() - started) * 1000,
                subject_digest=seen.subject_digest,
            )
            if token is not None:
                self._usage.count(token.jti, route.api, status)

    async def _steps(
        self,
        target: _Target,
        request: bytes,
        context: grpc.aio.ServicerContext[Any, Any],
        call: CallContext,
        seen: _Seen,
    ) -> bytes:
        route, provider = target.route, target.provider
        metadata = context.invocation_metadata()
        # 1. authenticate
        token = seen.token = self._verifier.authenticate(metadata)
        # 2. authorize
        if route.scopes.isdisjoint(token.scopes):
            raise insufficient_scopes()
        # 3. recipient
        recipient = seen.recipient = recipient_from(metadata)
        # 4. rate limit and revocation
        decision = await self._limiter.check(token.jti, token.rate_limit_per_second or 0)
        call.response_metadata.extend(decision.metadata)
        if not decision.allowed:
            # The metadata already rides on the call context; do not send it twice.
            raise dataclasses.replace(decision.refusal(), extra_metadata=())
        # 5. forward
        try:
            subject = route.request_class.FromString(request)
        except DecodeError:
            raise malformed_request() from None
        seen.subject_digest = self._journal.subject_digest(subject)
        remaining = context.time_remaining()
        timeout = self._max_deadline if remaining is None else min(remaining, self._max_deadline)
        try:
            answer = await next(target.callables)(
                request,
                timeout=timeout,
                metadata=(
                    (REQUEST_ID_KEY, call.request_id),
                    (RECIPIENT_KEY, recipient),
                    (TOKEN_ID_KEY, token.jti),
                ),
            )
        except grpc.aio.AioRpcError as error:
            raise provider_error(error, provider) from None
        # 6. mask, only when the token lacks a scope of the answer (else the bytes go back as they came)
        if route.plan.scopes <= token.scopes:
            return answer
        try:
            response = route.response_class.FromString(answer)
        except DecodeError:
            raise provider_unknown_answer(provider) from None
        mask(response, route.plan, token.scopes)
        return response.SerializeToString()


@dataclass(frozen=True, slots=True)
class _Target:
    """One route with what its calls need, prepared at start-up."""

    route: Route
    provider: Provider
    callables: Iterator[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]


@dataclass(slots=True)
class _Seen:
    """What the steps of one call learnt, for its journal entry and usage count."""

    token: Token | None = None
    recipient: str = ""
    subject_digest: str = ""


def _registrar(handler: grpc.GenericRpcHandler[Any, Any]) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handler,))

    return add
