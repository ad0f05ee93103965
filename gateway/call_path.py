"""The gateway's call path: the steps of every call, written once, in their order.

Transport-neutral: an adapter (the gRPC handlers of `gateway.proxy` and
`gateway.api`, the REST front of `gateway.rest`) hands in the caller's metadata
and deadline as an `Inbound`, and gets back the answer, or an `ApiError`; the
response metadata goes into the call's `CallContext`. Every call, a provider
method's or the gateway's own, goes through the same frame:

1. **authenticate**: the ``authorization`` bearer token (00101 invalid, 00103 expired);
   on a FranceConnect method called without one, the FranceConnect access token of
   the request alone, as the real API takes it: introspected (51501, 51502), the
   call then counts against the habilitation linked to the FranceConnect client
   the token was issued to (`gateway.france_connect_clients`: 00101 when none, 00103
   when its token expired), and step 5 reuses that introspection;
2. **authorize**: the token holds one of the method's scopes (00100; a provider
   method whose contract names no scope is refused to everybody; the gateway's
   own methods are open to every token);
3. **recipient**: ``x-recipient`` is present (00203) and a valid SIRET (00210);
4. **rate limit and revocation**, one Redis round trip (00105 revoked, 00429 over
   the limit); from here on, the rate-limit metadata of the tightest decision the
   call made goes back with its answer (a call refused at step 2 or 3 spent
   nothing; its answer says where the token stands all the same);
5. **resolve a FranceConnect subject** (`gateway.france_connect`): the call then
   needs, and is masked with, the scopes both the token and the FranceConnect
   token hold;
6. **forward** to the provider, with the caller's deadline bounded by
   ``DEFAULT_DEADLINE_SECONDS`` and the metadata ``x-request-id``, ``x-recipient``,
   ``x-token-id`` (and ``traceparent`` when tracing is on); a provider's error
   comes back unchanged, an unreachable provider is its error source's PP001;
7. **mask** the fields the scopes do not unlock (the bytes go back untouched when
   they unlock every field);
8. **journal and usage**: one journal record per call whatever its outcome, handed
   to the journal before the answer leaves (no I/O: `gateway.journal`), and one
   usage count per provider call once the token is known; the journal's log event
   and the count are written after the answer has left, with those of the other
   calls that ended within ``ACCOUNT_BATCH_SECONDS``. When the journal cannot
   keep the row, the caller gets 00503 instead of the answer, and a call is refused
   before any work while that lasts (`Journal.admit`).

A Lookup is one call of this frame whose body makes provider calls with
`CallPath.call_within`: steps 4, 6, 7 and 8 for each, under the Lookup's token,
recipient and deadline. A method the citizen's FranceConnect token alone opens
(`CallPath.call_citizen`: the access history) has no token nor recipient: step 5
first, then step 4 per citizen, the body, and step 8.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import hashlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from apiparticulier.common.v1 import options_pb2
from contract.routes import Route, RouteTable
from gateway.auth import AUTHORIZATION_KEY, Token, TokenVerifier
from gateway.availability import AvailabilityTracker
from gateway.france_connect import FranceConnect, FranceConnectIdentity, missing_france_connect_token
from gateway.france_connect_clients import FranceConnectClients
from gateway.journal import Call, Journal, Record
from gateway.masking import mask
from gateway.metrics import PROVIDER_ERRORS
from gateway.ratelimit import RateDecision, RateLimiter
from gateway.recipient import recipient_from
from runtime.caller import RECIPIENT_KEY, TOKEN_ID_KEY, Caller
from runtime.context import REQUEST_ID_KEY, current_call
from runtime.errors import (
    ApiError,
    ErrorSource,
    insufficient_scopes,
    internal_error,
    malformed_request,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)
from runtime.providers import BY_NAME
from runtime.tracing import active_tracer, traced_grpc_call

_DETAILS_KEY = "grpc-status-details-bin"
_LOG = structlog.get_logger(__name__)

ACCOUNT_BATCH_SECONDS = 0.01
"""Step 8 of the calls that end within this time runs in one batch. The journal's and the
usage's code then stays in the processor's caches from one call to the next: measured
under load, the gateway's CPU per call fell by a tenth against a step 8 of its own per call."""

Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class Inbound:
    """What a transport read from the caller."""

    metadata: Sequence[tuple[str, str | bytes]]
    """The call's metadata (gRPC) or its equivalent (HTTP headers and query parameters)."""
    time_remaining: float | None
    """Seconds before the caller's deadline; None when it set none."""


@dataclass(slots=True)
class Admitted:
    """A call past steps 1 to 4, as its body sees it."""

    token: Token
    recipient: str
    """The recipient SIRET ("" for a method that needs none)."""
    request_id: str
    deadline: float
    """Event-loop time by which the answer must leave."""
    decisions: list[RateDecision]
    """The rate-limit decisions of the call (a Lookup adds one per provider call)."""
    subject: Message | None = None
    """The message naming the person asked about, for the journal; set by the body."""

    def time_left(self) -> float:
        """Seconds left before the answer must leave (0 when spent)."""
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def caller(self) -> Caller:
        """The caller, as upstream clients (FranceConnect) are told of it."""
        return Caller(self.recipient, self.request_id, self.time_left(), self.token.jti)


@dataclass(frozen=True, slots=True)
class _Method:
    """What the frame needs to know of the method called."""

    path: str
    """The full gRPC path, for the journal."""
    route: Route | None
    """The provider route; None for the gateway's own methods."""
    scopes: frozenset[str] | None
    """The scopes that open it, any one sufficing; None: every token."""
    needs_recipient: bool

    def authorize(self, token: Token) -> None:
        """Step 2.

        Raises:
            ApiError: 00100, the token holds none of the method's scopes.
        """
        if self.scopes is not None and self.scopes.isdisjoint(token.scopes):
            raise insufficient_scopes()


class _Outcome:
    """A call's outcome as the journal and usage record it: ``OK``, or its status name and code."""

    __slots__ = ("code", "status")

    def __init__(self) -> None:
        self.status, self.code = "OK", ""

    def __enter__(self) -> _Outcome:
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, ApiError):
            self.status, self.code = error.status.name, error.code
        elif isinstance(error, asyncio.CancelledError):
            self.status = grpc.StatusCode.CANCELLED.name
        elif error is not None:
            self.status, self.code = grpc.StatusCode.INTERNAL.name, internal_error().code


@dataclass(frozen=True, slots=True)
class Target:
    """One route with what its calls need, prepared at start-up."""

    route: Route
    source: ErrorSource
    """Whom the error model names when the provider service fails."""
    callables: Iterator[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]
    """The route's method on each channel to the provider, in turn."""
    method: _Method = field(init=False)
    """What the frame needs to know of it."""

    def __post_init__(self) -> None:
        route = self.route
        object.__setattr__(self, "method", _Method(route.path, route, route.scopes, needs_recipient=True))

    @property
    def france_connect(self) -> bool:
        """Whether the request's subject is a FranceConnect subject, resolved by the gateway."""
        return self.route.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT


@dataclass(eq=False)
class ProviderStatusError(ApiError):
    """A provider's own error, sent back to the caller with its status and details unchanged.

    Its code, title, detail and the provider it names are read from the provider's ``ErrorInfo``.
    """

    message: str = ""
    details_bin: bytes = b""

    def __str__(self) -> str:
        return self.message

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The provider's rich status as it sent it, plus any extra metadata."""
        return ((_DETAILS_KEY, self.details_bin), *self.extra_metadata)


def provider_error(error: grpc.aio.AioRpcError, source: ErrorSource) -> ApiError:
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
            return provider_unavailable(source)
        if status is grpc.StatusCode.DEADLINE_EXCEEDED:
            return provider_timeout(source)
        return provider_unknown_answer(source)
    api_code, reason, title, detail, named = "", "", "", "", None
    try:
        for any_detail in status_pb2.Status.FromString(details).details:
            if any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                any_detail.Unpack(info)
                api_code, reason = info.metadata.get("code", ""), info.reason
                title, detail = info.metadata.get("title", ""), info.metadata.get("detail", "")
                if "provider" in info.metadata:
                    named = ErrorSource(api_code[:2], info.metadata["provider"])
    except DecodeError:
        pass
    return ProviderStatusError(
        status, api_code, reason, title, detail, named, message=error.details() or "", details_bin=details
    )


def tightest(decisions: Sequence[RateDecision]) -> tuple[tuple[str, str], ...]:
    """The metadata of the decision that left the fewest calls: what the caller may still send."""
    # A revoked token's decision has none (and the call was refused anyway).
    counted = [decision for decision in decisions if not decision.revoked]
    if not counted:
        return ()
    return min(counted, key=lambda decision: decision.remaining).metadata


@dataclass(eq=False, kw_only=True)
class CallPath:
    """The steps of every call of the gateway (see the module's docstring), and what they use."""

    routes: InitVar[RouteTable]
    """The route table: a `Target` is prepared for each route."""
    channels: InitVar[Mapping[str, Sequence[grpc.aio.Channel]]]
    """The channels to each provider service, used in turn."""
    default_deadline_seconds: float
    """The longest a call may take, and its deadline when the caller sets none."""
    verifier: TokenVerifier
    limiter: RateLimiter
    journal: Journal
    usage: Callable[[str, str, str], None]
    """Counts a call of a token to an API with its outcome: ``usage(token_id, api_label, outcome)``."""
    france_connect: FranceConnect
    france_connect_clients: FranceConnectClients
    """The habilitations of FranceConnect clients, for calls authorized by a FranceConnect token alone."""
    availability: AvailabilityTracker
    """Learns from the outcome of every provider call."""
    targets: dict[str, Target] = field(init=False)
    """Every provider route's target, by gRPC path."""
    _unaccounted: list[Callable[[], None]] = field(init=False, default_factory=list)

    def __post_init__(self, routes: RouteTable, channels: Mapping[str, Sequence[grpc.aio.Channel]]) -> None:
        self.targets = {
            route.path: Target(
                route,
                BY_NAME[route.provider].error_source,
                itertools.cycle(
                    [
                        channel.unary_unary(route.path, request_serializer=None, response_deserializer=None)
                        for channel in channels[route.provider]
                    ]
                ),
            )
            for route in routes.routes
        }

    # -- the entry points -----------------------------------------------------------------------------

    async def call_provider(self, target: Target, request: bytes | ApiError, inbound: Inbound) -> bytes:
        """Serve one provider method, every step.

        Args:
            target: The method.
            request: The request as the caller serialized it; or the refusal of a request the
                transport could not read (a REST query), raised where the request is read, after
                the token, scope, recipient and rate limit, in the order of a gRPC call.
            inbound: The caller's metadata and deadline.

        Returns:
            The serialized, masked answer.

        Raises:
            ApiError: any step's refusal, the provider's own error, or the transport's.
        """
        route = target.route
        decoded: list[Message] = []
        resolved: list[FranceConnectIdentity] = []
        raw = request if isinstance(request, bytes) else b""

        def subject_of() -> Message:
            if isinstance(request, ApiError):
                raise request
            if not decoded:
                try:
                    decoded.append(route.request_class.FromString(raw))
                except DecodeError:
                    raise malformed_request() from None
            return decoded[0]

        async def by_france_connect_token() -> Token:
            identity, token = await self._authenticate_france_connect(
                subject_of(), route.subject.name, inbound
            )
            resolved.append(identity)
            # The call holds what both tokens hold: step 2 refuses it before the limiter counts it.
            return dataclasses.replace(token, scopes=token.scopes & identity.scopes)

        async def forward(admitted: Admitted) -> bytes:
            subject = admitted.subject = subject_of()
            scopes, sent = admitted.token.scopes, raw
            if target.france_connect:
                if resolved:
                    scopes = FranceConnect.write(subject, route.subject.name, resolved[0], scopes)
                else:
                    scopes = await self.resolve_france_connect(subject, route.subject.name, admitted)
                if route.scopes.isdisjoint(scopes):
                    raise insufficient_scopes()
                sent = subject.SerializeToString()
            return await self._forward(target, sent, admitted, scopes)

        alone = target.france_connect and all(key != AUTHORIZATION_KEY for key, _ in inbound.metadata)
        return await self._frame(
            target.method,
            inbound,
            forward,
            by_france_connect_token if alone else None,
        )

    async def call_own(
        self,
        method: str,
        inbound: Inbound,
        body: Callable[[Admitted], Awaitable[Answer]],
        *,
        needs_recipient: bool,
    ) -> Answer:
        """Serve one method of the gateway's own API open to every token, every step.

        Args:
            method: The full gRPC path, for the journal.
            inbound: The caller's metadata and deadline.
            body: What the method does once the caller is admitted.
            needs_recipient: The method forwards data to a recipient, who must be named.

        Raises:
            ApiError: any step's refusal, or the body's.
        """
        return await self._frame(_Method(method, None, None, needs_recipient), inbound, body)

    async def call_within(
        self, admitted: Admitted, target: Target, request: Message, scopes: frozenset[str]
    ) -> bytes:
        """One provider call inside an admitted call (a Lookup's): steps 4, 6, 7 and 8.

        Args:
            admitted: The enclosing call.
            target: The method called.
            request: Its request, subject filled.
            scopes: The scopes the answer is masked with.

        Returns:
            The serialized, masked answer.

        Raises:
            ApiError: 00105 or 00429 from the limiter, the provider's error or the transport's.
        """
        started = time.perf_counter()
        outcome = _Outcome()
        try:
            with outcome:
                self.journal.admit()
                admitted.decisions.append(await self._admit(admitted.token))
                return await self._forward(target, request.SerializeToString(), admitted, scopes)
        finally:
            self._account_later(
                target.method,
                admitted.token,
                admitted.recipient,
                request,
                outcome=outcome,
                started=started,
            )

    async def call_citizen(
        self,
        method: str,
        inbound: Inbound,
        request: Message,
        rate_per_second: int,
        body: Callable[[Message], Awaitable[Answer]],
    ) -> Answer:
        """Serve a method the citizen's FranceConnect access token alone opens (no API token, no recipient).

        Args:
            method: The full gRPC path, for the journal.
            inbound: The caller's metadata and deadline.
            request: The request; its FranceConnect subject (``france_connect``) is resolved in place.
            rate_per_second: The citizen's rate limit (its bucket as the limiter sizes it for that rate).
            body: What the method does with the resolved request.

        Raises:
            ApiError: the FranceConnect token is refused (51501, 51502, 51504) or cannot be checked, the
                citizen is over the limit (00429), the journal cannot keep the row (00503), or the body's.
        """
        started = time.perf_counter()
        call = current_call()
        outcome = _Outcome()
        resolved: Message | None = None
        try:
            with outcome:
                self.journal.admit()  # 8, refused before any work
                timeout = self.default_deadline_seconds
                if inbound.time_remaining is not None:
                    timeout = min(inbound.time_remaining, timeout)
                caller = Caller("", call.request_id, timeout)
                await self.france_connect.fill(request, "france_connect", frozenset(), caller)  # 5
                resolved = request
                # Keyed by a hash of the subject's digest: the key says nothing to whoever reads Redis.
                citizen = hashlib.sha256(self.journal.subject_digest(request).encode()).hexdigest()[:32]
                decision = await self.limiter.check(f"citizen-{citizen}", rate_per_second)  # 4
                call.response_metadata.extend(decision.metadata)
                if not decision.allowed:
                    raise decision.refusal()
                return await body(request)
        finally:
            self._account_later(
                _Method(method, None, None, needs_recipient=False),
                None,
                "",
                resolved,
                outcome=outcome,
                started=started,
            )  # 8

    async def resolve_france_connect(
        self, request: Message, field: str, admitted: Admitted
    ) -> frozenset[str]:
        """Step 5: resolve the FranceConnect subject of a request in place.

        Returns:
            The scopes of both the token and the FranceConnect token.

        Raises:
            ApiError: the FranceConnect token is refused (51501, 51502, 51504) or cannot be checked.
        """
        return await self.france_connect.fill(request, field, admitted.token.scopes, admitted.caller())

    async def _authenticate_france_connect(
        self, request: Message, field: str, inbound: Inbound
    ) -> tuple[FranceConnectIdentity, Token]:
        """Step 1 for a FranceConnect method called with the FranceConnect access token alone.

        Raises:
            ApiError: 51504 without an access token, the introspection's refusals (51501,
                51502, 51001…), 00101 or 00103 for the habilitation of the token's client.
        """
        access_token = getattr(request, field).access_token
        if not access_token:
            raise missing_france_connect_token()
        timeout = self.default_deadline_seconds
        if inbound.time_remaining is not None:
            timeout = min(inbound.time_remaining, timeout)
        caller = Caller("", current_call().request_id, timeout)
        identity = await self.france_connect.resolve(access_token, caller)
        return identity, await self.france_connect_clients.token_of(identity.client_id)

    # -- the frame ------------------------------------------------------------------------------------

    async def _frame(
        self,
        method: _Method,
        inbound: Inbound,
        body: Callable[[Admitted], Awaitable[Answer]],
        authenticate: Callable[[], Awaitable[Token]] | None = None,
    ) -> Answer:
        started = time.perf_counter()
        call = current_call()
        token: Token | None = None
        admitted: Admitted | None = None
        recipient = ""
        outcome = _Outcome()
        try:
            with outcome:
                self.journal.admit()  # 8, refused before any work
                if authenticate is None:  # 1
                    token = self.verifier.authenticate(inbound.metadata)
                else:
                    token = await authenticate()
                try:
                    method.authorize(token)  # 2
                    recipient = recipient_from(inbound.metadata) if method.needs_recipient else ""  # 3
                except ApiError:
                    await self._tell_rate(token)
                    raise
                decision = await self._admit(token)  # 4
                timeout = self.default_deadline_seconds
                if inbound.time_remaining is not None:
                    timeout = min(inbound.time_remaining, timeout)
                deadline = asyncio.get_running_loop().time() + timeout
                admitted = Admitted(token, recipient, call.request_id, deadline, [decision])
                return await body(admitted)  # 5 to 7
        finally:
            if admitted is not None:
                call.response_metadata.extend(tightest(admitted.decisions))
            subject = admitted.subject if admitted is not None else None
            self._account_later(method, token, recipient, subject, outcome=outcome, started=started)  # 8

    async def _tell_rate(self, token: Token) -> None:
        """Where the token stands, for the metadata of a call refused before step 4 (which spent nothing)."""
        state = await self.limiter.peek(token.jti, token.rate_limit_per_second or 0)
        if state is not None:
            current_call().response_metadata.extend(state.metadata)

    async def _admit(self, token: Token) -> RateDecision:
        decision: RateDecision = await self.limiter.check(token.jti, token.rate_limit_per_second or 0)
        if not decision.allowed:
            raise decision.refusal()
        return decision

    async def _forward(
        self, target: Target, request: bytes, admitted: Admitted, scopes: frozenset[str]
    ) -> bytes:
        route = target.route
        timeout = admitted.time_left()
        if timeout <= 0:
            raise self._failed(route, provider_timeout(target.source))
        forwarded = (
            (REQUEST_ID_KEY, admitted.request_id),
            (RECIPIENT_KEY, admitted.recipient),
            (TOKEN_ID_KEY, admitted.token.jti),
        )
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
            self.availability.observe(route.provider, error.code(), route.api_label)
            raise self._failed(route, provider_error(error, target.source)) from None
        if route.plan.scopes <= scopes:
            self.availability.observe(route.provider, grpc.StatusCode.OK, route.api_label)
            return answer
        try:
            response = route.response_class.FromString(answer)
        except DecodeError:
            self.availability.observe(route.provider, grpc.StatusCode.UNKNOWN, route.api_label)
            raise self._failed(route, provider_unknown_answer(target.source)) from None
        self.availability.observe(route.provider, grpc.StatusCode.OK, route.api_label)
        mask(response, route.plan, scopes)
        return response.SerializeToString()

    @staticmethod
    def _failed(route: Route, error: ApiError) -> ApiError:
        """Count a failed provider call (by provider service, status and code), then hand the error back."""
        PROVIDER_ERRORS.labels(route.provider, error.status.name, error.code).inc()
        return error

    def _account_later(
        self,
        method: _Method,
        token: Token | None,
        recipient: str,
        subject: Message | None,
        *,
        outcome: _Outcome,
        started: float,
    ) -> None:
        """Step 8: the journal's record before the answer leaves; the rest after, in a batch.

        The journal's log event and the usage count go with those of the calls that end
        within ``ACCOUNT_BATCH_SECONDS``.

        Raises:
            ApiError: 00503 instead of the answer, the journal could not keep its row.
        """
        route = method.route
        record = self.journal.record(
            Call(
                request_id=current_call().request_id,
                token_id=token.jti if token is not None else "",
                habilitation=token.habilitation if token is not None else "",
                recipient=recipient,
                method=method.path,
                api=route.api_label if route is not None else "",
                provider=route.provider if route is not None else "",
                status=outcome.status,
                code=outcome.code,
                latency_ms=(time.perf_counter() - started) * 1000,
                subject=subject,
            )
        )
        if not self._unaccounted:
            # In a context of its own: the batch belongs to no call in particular.
            asyncio.get_running_loop().call_later(
                ACCOUNT_BATCH_SECONDS, self.account_ended, context=contextvars.Context()
            )
        self._unaccounted.append(functools.partial(self._account, record, token))
        if record.refusal is not None:
            raise record.refusal

    def account_ended(self) -> None:
        """Step 8 of the calls that ended and are not accounted for yet: journal events, usage counts."""
        batch, self._unaccounted = self._unaccounted, []
        for account in batch:
            try:
                account()
            except Exception as exc:  # one call's accounting must not lose the others'
                _LOG.error("accounting_failed", error_type=type(exc).__name__)

    async def close(self) -> None:
        """Account for the calls that ended, once the server has drained: nothing ends after."""
        self.account_ended()

    def _account(self, record: Record, token: Token | None) -> None:
        self.journal.log(record)
        if token is not None and record.call.api:
            self.usage(token.jti, record.call.api, record.status)
