"""The gateway's own API, ``apiparticulier.gateway.v1.GatewayService``.

Who may call each method is read from the contract (the ``method_access``
option), as for the provider methods:

- ``every_token`` (Lookup, IntrospectToken, GetUsageStatistics): the call is
  authenticated and admitted by the same steps as a provider call (the token,
  then revocation and rate limit in one Redis round trip, whose metadata goes
  back with the answer); Lookup also needs the recipient, which its provider
  calls forward. Lookup checks scopes per API itself (`gateway.lookup`).
- ``anonymous`` (GetProofsAvoided, ListProviderAvailability): public figures,
  neither authenticated nor rate limited, like the real API's pings.

Every authenticated call leaves one journal event (provider "", the subject's
digest for a lookup); the provider calls of a lookup leave their own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from redis.exceptions import RedisError

from apiparticulier.common.v1 import options_pb2
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from gateway.auth import Token, TokenVerifier
from gateway.availability import Availability, AvailabilityTracker
from gateway.journal import Journal
from gateway.lookup import ApiCatalog, LookupService
from gateway.proxy import ProviderProxy
from gateway.ratelimit import RateDecision
from gateway.recipient import recipient_from
from gateway.settings import GatewaySettings
from gateway.usage import UsageRecorder
from runtime.context import CallContext, current_call
from runtime.errors import ApiError, FieldViolation, internal_error, invalid_argument
from runtime.server import ServiceDefinition

SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
SERVICE_NAME: str = SERVICE.full_name

USAGE_DAYS = 62
"""How many days of usage statistics are kept, and asked when the request says 0."""
PROOFS_DAYS = 30
"""The window of the public figure of proofs avoided."""

_STATUSES = {
    Availability.OK: gateway_pb2.PROVIDER_STATUS_OK,
    Availability.BAD_GATEWAY: gateway_pb2.PROVIDER_STATUS_BAD_GATEWAY,
    Availability.UNKNOWN: gateway_pb2.PROVIDER_STATUS_UNKNOWN,
}

Response = TypeVar("Response")


def statistics_unavailable() -> ApiError:
    """The statistics cannot be read from Redis right now (00503, UNAVAILABLE)."""
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        "00503",
        "STATISTICS_UNAVAILABLE",
        "Service non disponible",
        "Les statistiques sont temporairement indisponibles. Veuillez réessayer dans quelques instants.",
        retry_after_seconds=1.0,
    )


def invalid_days() -> ApiError:
    """A usage window outside 1 to 62 days (00400)."""
    return invalid_argument(
        "00400",
        "Le nombre de jours demandé n'est pas valide",
        [FieldViolation("days", f"must be from 1 to {USAGE_DAYS}, or 0 for {USAGE_DAYS}")],
    )


@dataclass(frozen=True, slots=True)
class _Admitted:
    """An admitted call of an authenticated method."""

    token: Token
    call: CallContext
    seen: _Seen
    decision: RateDecision


@dataclass(slots=True)
class _Seen:
    """What an authenticated call learnt, for its journal event."""

    token: Token | None = None
    recipient: str = ""
    subject_digest: str = ""


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def method_access(method: str) -> options_pb2.MethodAccess:
    """The ``method_access`` option of a GatewayService method, as the contract sets it."""
    options = SERVICE.methods_by_name[method].GetOptions()
    access: options_pb2.MethodAccess = options.Extensions[options_pb2.method_access]
    return access


class GatewayApi(gateway_pb2_grpc.GatewayServiceServicer):
    """Serves ``GatewayService`` over the gateway's call path.

    Args:
        settings: The gateway's settings (default rate limit).
        proxy: The call path (admission, provider calls, timeouts).
        verifier: Token verification.
        journal: The access journal.
        usage: The usage counters, read for the statistics.
        availability: The providers' availability.
        catalog: The Api enum ↔ routes.
    """

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        proxy: ProviderProxy,
        verifier: TokenVerifier,
        journal: Journal,
        usage: UsageRecorder,
        availability: AvailabilityTracker,
        catalog: ApiCatalog,
    ) -> None:
        self._settings = settings
        self._proxy = proxy
        self._verifier = verifier
        self._journal = journal
        self._usage = usage
        self._availability = availability
        self._catalog = catalog
        self._lookup = LookupService(proxy, catalog)
        self._every_token = frozenset(m.name for m in SERVICE.methods if method_access(m.name).every_token)

    def service_definition(self) -> ServiceDefinition:
        """The definition the gateway's server registers."""
        return ServiceDefinition(
            SERVICE_NAME, lambda server: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(self, server)
        )

    async def _serve(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        body: Callable[[_Admitted], Awaitable[Response]],
        *,
        send_decision: bool = True,
    ) -> Response:
        """Authenticate, admit, run ``body``, and journal the call whatever its outcome.

        Args:
            method: The method's name.
            context: The call's context.
            body: What the method does once the caller is admitted.
            send_decision: Send the admission's rate-limit metadata back (a lookup
                sends the tightest of its own and its provider calls' instead).
        """
        if method not in self._every_token:
            # A method the contract opens to nobody (or anonymous, served elsewhere) is refused.
            raise internal_error()
        call = current_call()
        started = time.perf_counter()
        seen = _Seen()
        status, code = "OK", ""
        try:
            token = seen.token = self._verifier.authenticate(context.invocation_metadata())
            decision = await self._proxy.admit(token)
            if send_decision:
                call.response_metadata.extend(decision.metadata)
            return await body(_Admitted(token, call, seen, decision))
        except ApiError as error:
            status, code = error.status.name, error.code
            raise
        except Exception:
            internal = internal_error()
            status, code = internal.status.name, internal.code
            raise
        finally:
            self._journal.record(
                request_id=call.request_id,
                token_id=seen.token.jti if seen.token is not None else "",
                recipient=seen.recipient,
                method=f"/{SERVICE_NAME}/{method}",
                provider="",
                status=status,
                code=code,
                latency_ms=(time.perf_counter() - started) * 1000,
                subject_digest=seen.subject_digest,
            )

    async def Lookup(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.LookupRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.LookupResponse:
        """Ask several APIs about one person at once (see `gateway.lookup`)."""

        async def body(admitted: _Admitted) -> gateway_pb2.LookupResponse:
            seen, call = admitted.seen, admitted.call
            seen.recipient = recipient_from(context.invocation_metadata())
            try:
                response, metadata = await self._lookup.lookup(
                    request,
                    token=admitted.token,
                    recipient=seen.recipient,
                    call=call,
                    timeout=self._proxy.timeout_for(context),
                    decision=admitted.decision,
                )
            finally:
                # After a FranceConnect subject is resolved, the digest is the certified identity's.
                seen.subject_digest = self._journal.subject_digest(request)
            call.response_metadata.extend(metadata)
            return response

        return await self._serve("Lookup", context, body, send_decision=False)

    async def IntrospectToken(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.IntrospectTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.IntrospectTokenResponse:
        """What the gateway knows of the caller's token."""

        async def body(admitted: _Admitted) -> gateway_pb2.IntrospectTokenResponse:
            token = admitted.token
            return gateway_pb2.IntrospectTokenResponse(
                token_id=token.jti,
                habilitation=token.habilitation,
                siret=token.siret,
                scopes=sorted(token.scopes),
                expires_at=timestamp_pb2.Timestamp(seconds=token.expires_at),
                rate_limit_per_second=token.rate_limit_per_second or self._settings.rate_limit_per_second,
            )

        return await self._serve("IntrospectToken", context, body)

    async def GetUsageStatistics(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.GetUsageStatisticsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.GetUsageStatisticsResponse:
        """The caller's calls per day, API and outcome."""

        async def body(admitted: _Admitted) -> gateway_pb2.GetUsageStatisticsResponse:
            days = request.days or USAGE_DAYS
            if not 1 <= days <= USAGE_DAYS:
                raise invalid_days()
            try:
                rows = await self._usage.usage_of(admitted.token.jti, days)
            except (RedisError, OSError, TimeoutError):
                raise statistics_unavailable() from None
            return gateway_pb2.GetUsageStatisticsResponse(
                counts=[
                    gateway_pb2.UsageCount(
                        day=day,
                        api=self._catalog.api_of_label(label),  # type: ignore[arg-type]
                        outcome=outcome,
                        calls=calls,
                    )
                    for day, label, outcome, calls in rows
                ]
            )

        return await self._serve("GetUsageStatistics", context, body)

    async def GetProofsAvoided(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.GetProofsAvoidedRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.GetProofsAvoidedResponse:
        """Successful calls over the last 30 days, all tokens together; anonymous."""
        try:
            proofs = await self._usage.proofs_avoided(PROOFS_DAYS)
        except (RedisError, OSError, TimeoutError):
            raise statistics_unavailable() from None
        return gateway_pb2.GetProofsAvoidedResponse(proofs_avoided=proofs, days=PROOFS_DAYS)

    async def ListProviderAvailability(  # noqa: N802 - the name is the contract's
        self,
        request: gateway_pb2.ListProviderAvailabilityRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> gateway_pb2.ListProviderAvailabilityResponse:
        """Availability of every provider; anonymous and not rate limited."""
        response = gateway_pb2.ListProviderAvailabilityResponse()
        for state in self._availability.snapshot():
            entry = response.providers.add(provider=state.provider, status=_STATUSES[state.status])
            if state.last_update is not None:
                entry.last_update.CopyFrom(_timestamp(state.last_update))
            if state.last_ok is not None:
                entry.last_ok_status.CopyFrom(_timestamp(state.last_ok))
        return response
