"""Steps 6 and 7 of a provider call: forward the request to the provider, mask its answer.

What they carry is declared here too, below the call path that runs them
(`gateway.call_path`): the method called (`Method`), a provider route prepared at
start-up (`Target`), the request and the answer (`Payload`), and the provider's own
error passed back unchanged (`ProviderStatusError`, `provider_error`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError, Message

from apiparticulier.common.v1 import options_pb2
from contract.routes import Route, RouteTable
from gateway.availability import AvailabilityTracker
from gateway.masking import mask
from gateway.metrics import PROVIDER_ERRORS
from runtime.caller import RECIPIENT_KEY, TOKEN_ID_KEY, Caller
from runtime.context import REQUEST_ID_KEY, REQUEST_ID_REFUSED_KEY, current_call
from runtime.errors import (
    DETAILS_KEY,
    ApiError,
    ErrorSource,
    details_of,
    error_info_of,
    malformed_request,
    provider_timeout,
    provider_unavailable,
    provider_unknown_answer,
)
from runtime.providers import BY_NAME
from runtime.tracing import active_tracer, traced_grpc_call


class Payload:
    """A request or an answer: the bytes a transport carries and/or the message they encode.

    Each is made at most once, when first asked for: the gRPC adapter hands in bytes and
    takes bytes back (untouched when nothing is masked), the REST front hands in a message
    and takes a message back (a REST query always reads as one: the route's rules refuse it).

    Args:
        kind: The message class.
        data: The serialized message, if a transport brought it so.
        message: The message, if a transport brought it so.
        unreadable: The error of bytes that are no message of ``kind``.
    """

    __slots__ = ("_data", "_kind", "_message", "_unreadable")

    def __init__(
        self,
        kind: type[Message],
        *,
        data: bytes | None = None,
        message: Message | None = None,
        unreadable: Callable[[], ApiError] = malformed_request,
    ) -> None:
        self._kind, self._data, self._message = kind, data, message
        self._unreadable = unreadable

    def message(self) -> Message:
        """The message, decoded at its first use.

        Raises:
            ApiError: ``unreadable``'s error, for bytes that do not decode.
        """
        if self._message is None:
            try:
                self._message = self._kind.FromString(self._data or b"")
            except DecodeError:
                raise self._unreadable() from None
        return self._message

    def serialized(self) -> bytes:
        """The bytes, encoded at their first use."""
        if self._data is None:
            self._data = self.message().SerializeToString()
        return self._data

    def rewritten(self) -> None:
        """The message was changed in place: its bytes are encoded again when next asked for."""
        self._data = None


@dataclass(frozen=True, slots=True)
class Method:
    """What the frame needs to know of the method called."""

    path: str
    """The full gRPC path, for the journal."""
    route: Route | None
    """The provider route; None for the gateway's own methods."""
    scopes: frozenset[str] | None
    """The scopes that open it, any one sufficing; None: every token."""
    needs_recipient: bool

    def opens_to(self, scopes: frozenset[str]) -> bool:
        """Whether a call holding ``scopes`` may call the method (step 2)."""
        return self.scopes is None or not self.scopes.isdisjoint(scopes)


@dataclass(slots=True)
class Target:
    """One route with what its calls need, prepared at start-up."""

    route: Route
    source: ErrorSource
    """Whom the error model names when the provider service fails."""
    callables: Iterator[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]
    """The route's method on each channel to the provider, in turn."""
    method: Method = field(init=False)
    """What the frame needs to know of it."""

    def __post_init__(self) -> None:
        self.method = Method(self.route.path, self.route, self.route.scopes, needs_recipient=True)

    @property
    def france_connect(self) -> bool:
        """Whether the request's subject is a FranceConnect subject, resolved by the gateway."""
        return self.route.subject.kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT

    def unreadable_answer(self) -> ApiError:
        """The provider answered bytes that are no answer of the method (PP003 of its source)."""
        return provider_unknown_answer(self.source)


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
        return ((DETAILS_KEY, self.details_bin), *self.extra_metadata)


def provider_error(error: grpc.aio.AioRpcError, source: ErrorSource) -> ApiError:
    """The error the caller gets for a failed provider call.

    A status with rich details is the provider's own answer and is passed through;
    without details it comes from the transport: the provider could not be
    reached (UNAVAILABLE), did not answer in time, or broke.
    """
    # The stubs type these trailers as the sync API's; grpc.aio gives (key, value) pairs.
    details = details_of(error.trailing_metadata())
    status = error.code()
    if details is None:
        if status is grpc.StatusCode.UNAVAILABLE:
            return provider_unavailable(source)
        if status is grpc.StatusCode.DEADLINE_EXCEEDED:
            return provider_timeout(source)
        return provider_unknown_answer(source)
    api_code, reason, title, detail, named = "", "", "", "", None
    info = error_info_of(details)
    if info is not None:
        api_code, reason = info.metadata.get("code", ""), info.reason
        title, detail = info.metadata.get("title", ""), info.metadata.get("detail", "")
        if "provider" in info.metadata:
            named = ErrorSource(api_code[:2], info.metadata["provider"])
    return ProviderStatusError(
        status, api_code, reason, title, detail, named, message=error.details() or "", details_bin=details
    )


def targets_of(routes: RouteTable, channels: Mapping[str, Sequence[grpc.aio.Channel]]) -> dict[str, Target]:
    """Every provider route's target, by gRPC path, its method called on each of ``channels`` in turn."""
    return {
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


@dataclass(frozen=True, slots=True)
class Forwarder:
    """Steps 6 and 7 of every provider call; the provider's availability learns from each outcome."""

    availability: AvailabilityTracker

    async def forward(self, target: Target, request: Payload, caller: Caller) -> bytes:
        """Step 6: send the request to the provider, told of ``caller`` and within its time left.

        The metadata ``x-request-id``, ``x-recipient`` and ``x-token-id`` go with it (and
        ``traceparent`` when tracing is on).

        Raises:
            ApiError: the provider's own error, passed through; PP001 unreachable, PP002 too slow,
                PP003 broken (of the provider's error source).
        """
        route, timeout = target.route, caller.time_remaining or 0.0  # the call path always sets it
        if timeout <= 0:
            raise failed(route, provider_timeout(target.source))
        forwarded: tuple[tuple[str, str], ...] = (
            (REQUEST_ID_KEY, caller.request_id),
            (RECIPIENT_KEY, caller.recipient),
            (TOKEN_ID_KEY, caller.token_id),
        )
        if current_call().request_id_refused:
            # The provider's rules decide what a refused request id costs (00401 on the CNAV routes).
            forwarded += ((REQUEST_ID_REFUSED_KEY, "1"),)
        data = request.serialized()
        send = next(target.callables)
        tracer = active_tracer()
        try:
            if tracer is None:
                answer: bytes = await send(data, timeout=timeout, metadata=forwarded)
                return answer
            # A CLIENT span, its traceparent added to the forwarded metadata.
            return await traced_grpc_call(
                tracer,
                route.path,
                route.provider,
                forwarded,
                lambda metadata: send(data, timeout=timeout, metadata=metadata),
            )
        except grpc.aio.AioRpcError as error:
            self.availability.observe(route.provider, error.code(), route.api_label)
            raise failed(route, provider_error(error, target.source)) from None

    def mask(self, target: Target, answer: bytes, scopes: frozenset[str]) -> Payload:
        """Step 7: hide the fields ``scopes`` do not unlock; the bytes untouched when they unlock all.

        Raises:
            ApiError: PP003, the answer is no answer of the method (masking must read it).
        """
        route = target.route
        if route.plan.scopes <= scopes:
            self.availability.observe(route.provider, grpc.StatusCode.OK, route.api_label)
            return Payload(route.response_class, data=answer, unreadable=target.unreadable_answer)
        try:
            response = route.response_class.FromString(answer)
        except DecodeError:
            self.availability.observe(route.provider, grpc.StatusCode.UNKNOWN, route.api_label)
            raise failed(route, target.unreadable_answer()) from None
        self.availability.observe(route.provider, grpc.StatusCode.OK, route.api_label)
        mask(response, route.plan, scopes)
        return Payload(route.response_class, message=response)


def failed(route: Route, error: ApiError) -> ApiError:
    """Count a failed provider call (by provider service, status and code), then hand the error back."""
    PROVIDER_ERRORS.labels(route.provider, error.status.name, error.code).inc()
    return error
