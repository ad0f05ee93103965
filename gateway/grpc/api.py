"""The gateway's own API, ``apiparticulier.gateway.v1.GatewayService``.

Who may call each method is read from the contract (the ``method_access``
option), as for the provider methods:

- ``every_token`` (Lookup, IntrospectToken, GetUsageStatistics, ListDelegations): served through
  the gateway's call path (`gateway.call_path`) like a provider method, open to
  every token; Lookup also needs the recipient, which its provider calls
  forward, and checks scopes per API itself (`gateway.grpc.lookup`).
- ``anonymous`` (GetProofsAvoided, ListProviderAvailability): public figures,
  neither authenticated nor rate limited, like the real API's pings.
- ``france_connect`` (ListAccesses): the citizen's FranceConnect access token alone
  opens it, through `CallPath.call_citizen` (`gateway.journal.access_history`).

Every authenticated call leaves one journal event (provider "", the subject's
digest for a lookup); the provider calls of a lookup leave their own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from apiparticulier.common.v1 import options_pb2
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from contract.gateway_service import SERVICE, SERVICE_NAME
from contract.routes import ContractError
from gateway.availability import Availability
from gateway.call_path import Exchange, Inbound
from gateway.delegations import page_of
from gateway.grpc.lookup import LookupService
from gateway.registry.model import DelegationState
from gateway.serving import Serving
from gateway.settings import GatewaySettings
from gateway.usage import PROOFS_DAYS
from runtime.server import ServiceDefinition

_STATUSES = {
    Availability.OK: gateway_pb2.PROVIDER_STATUS_OK,
    Availability.BAD_GATEWAY: gateway_pb2.PROVIDER_STATUS_BAD_GATEWAY,
    Availability.UNKNOWN: gateway_pb2.PROVIDER_STATUS_UNKNOWN,
    Availability.MAINTENANCE: gateway_pb2.PROVIDER_STATUS_MAINTENANCE,
}


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


_DELEGATION_STATUSES = {
    DelegationState.ACTIVE: gateway_pb2.DELEGATION_STATUS_ACTIVE,
    DelegationState.REVOKED: gateway_pb2.DELEGATION_STATUS_REVOKED,
}
_TOKEN_HOLDERS: set[str] = set()
"""The methods served through the call path (`_through_call_path`); the contract opens them to tokens."""
_CITIZENS = ("ListAccesses",)
"""The methods the citizen's FranceConnect token alone opens (``france_connect``)."""


Request = TypeVar("Request")
Response = TypeVar("Response")
Body = Callable[["GatewayApi", Request, Exchange], Awaitable[Response]]
Handler = Callable[["GatewayApi", Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[Response]]


def _through_call_path(
    *, needs_recipient: bool
) -> Callable[[Body[Request, Response]], Handler[Request, Response]]:
    """Serve a method written as ``(self, request, call) -> response`` through `CallPath.call_own`.

    The body runs once the call is admitted (steps 1 to 4); ``needs_recipient``: it forwards data to
    a recipient, who must be named.
    """

    def serve(body: Body[Request, Response]) -> Handler[Request, Response]:
        path = f"/{SERVICE_NAME}/{body.__name__}"
        _TOKEN_HOLDERS.add(body.__name__)

        @functools.wraps(body)
        async def handle(
            api: GatewayApi, request: Request, context: grpc.aio.ServicerContext[Any, Any]
        ) -> Response:
            return await api._serving.call_path.call_own(
                path,
                Inbound.of_grpc(context),
                functools.partial(body, api, request),
                needs_recipient=needs_recipient,
            )

        return handle

    return serve


def method_access(method: str) -> options_pb2.MethodAccess:
    """The ``method_access`` option of a GatewayService method, as the contract sets it."""
    options = SERVICE.methods_by_name[method].GetOptions()
    access: options_pb2.MethodAccess = options.Extensions[options_pb2.method_access]
    return access


class GatewayApi(gateway_pb2_grpc.GatewayServiceServicer):
    """Serves ``GatewayService``; its token-holders' methods go through the call path.

    Args:
        settings: The gateway's settings (default rate limit).
        serving: What it answers with: the call path, the usage counters, the pings, the catalog,
            the citizens' access histories.

    Raises:
        ContractError: a method is open to tokens without being served through the call path, or the
            reverse (the contract and this class disagree).
    """

    def __init__(self, *, settings: GatewaySettings, serving: Serving) -> None:
        self._settings = settings
        self._serving = serving
        self._lookup = LookupService(serving.call_path, serving.catalog)
        every_token = {m.name for m in SERVICE.methods if method_access(m.name).every_token}
        anonymous = {m.name for m in SERVICE.methods if method_access(m.name).anonymous}
        citizens = {m.name for m in SERVICE.methods if method_access(m.name).france_connect}
        if (
            every_token != _TOKEN_HOLDERS
            or citizens != set(_CITIZENS)
            or anonymous != set(SERVICE.methods_by_name) - every_token - citizens
        ):
            raise ContractError("GatewayService's method_access options do not match the methods served")

    def service_definition(self) -> ServiceDefinition:
        """The definition the gateway's server registers."""
        return ServiceDefinition(
            SERVICE_NAME, lambda server: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(self, server)
        )

    @_through_call_path(needs_recipient=True)
    async def Lookup(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.LookupRequest, call: Exchange
    ) -> gateway_pb2.LookupResponse:
        """Ask several APIs about one person at once (see `gateway.grpc.lookup`)."""
        return await self._lookup.lookup(request, call)

    @_through_call_path(needs_recipient=False)
    async def IntrospectToken(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.IntrospectTokenRequest, call: Exchange
    ) -> gateway_pb2.IntrospectTokenResponse:
        """What the gateway knows of the caller's token."""
        token = call.holder
        return gateway_pb2.IntrospectTokenResponse(
            token_id=token.jti,
            habilitation=token.habilitation,
            siret=token.siret,
            scopes=sorted(token.scopes),
            expires_at=timestamp_pb2.Timestamp(seconds=token.expires_at),
            rate_limit_per_second=token.rate_limit_per_second or self._settings.rate_limit_per_second,
        )

    @_through_call_path(needs_recipient=False)
    async def GetUsageStatistics(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.GetUsageStatisticsRequest, call: Exchange
    ) -> gateway_pb2.GetUsageStatisticsResponse:
        """The caller's calls per day, API and outcome."""
        rows = await self._serving.usage.usage_of(call.holder.jti, request.days)
        return gateway_pb2.GetUsageStatisticsResponse(
            counts=[
                gateway_pb2.UsageCount(
                    day=day,
                    api=self._serving.catalog.api_of_label(label),  # type: ignore[arg-type]
                    outcome=outcome,
                    calls=calls,
                )
                for day, label, outcome, calls in rows
            ]
        )

    @_through_call_path(needs_recipient=False)
    async def ListDelegations(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.ListDelegationsRequest, call: Exchange
    ) -> gateway_pb2.ListDelegationsResponse:
        """The caller's editor's delegations, a page at a time (`gateway.delegations.page_of`)."""
        found = page_of(call.holder, request.page, request.per_page)
        return gateway_pb2.ListDelegationsResponse(
            delegations=[
                gateway_pb2.EditorDelegation(
                    id=delegation.delegation_id,
                    datapass_id=int(delegation.datapass_id) if delegation.datapass_id.isdigit() else 0,
                    siret=delegation.siret,
                    label=delegation.label,
                    scopes=delegation.scopes,
                    status=_DELEGATION_STATUSES[delegation.state],
                    created_at=_timestamp(delegation.created_at),
                )
                for delegation in found.delegations
            ],
            page=found.page,
            per_page=found.per_page,
            total=found.total,
            total_pages=found.total_pages,
        )

    async def GetProofsAvoided(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.GetProofsAvoidedRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.GetProofsAvoidedResponse:
        """Successful calls over the last 30 days, all tokens together; anonymous."""
        proofs = await self._serving.usage.proofs_avoided(PROOFS_DAYS)
        return gateway_pb2.GetProofsAvoidedResponse(proofs_avoided=proofs, days=PROOFS_DAYS)

    async def ListProviderAvailability(  # noqa: N802 - the name is the contract's
        self,
        request: gateway_pb2.ListProviderAvailabilityRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> gateway_pb2.ListProviderAvailabilityResponse:
        """What every ping says; anonymous and not rate limited."""
        response = gateway_pb2.ListProviderAvailabilityResponse()
        for state in await self._serving.pings.states():
            entry = response.providers.add(
                provider=state.ping.provider,
                status=_STATUSES[state.status],
                ping=state.ping.id,
                name=state.ping.label,
                last_update=_timestamp(state.last_update),
                last_ok_status=_timestamp(state.last_ok),
            )
            if state.until is not None:
                entry.until.CopyFrom(_timestamp(state.until))
        return response

    async def ListAccesses(  # noqa: N802 - the name is the contract's
        self, request: gateway_pb2.ListAccessesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.ListAccessesResponse:
        """The calls made about the citizen whose FranceConnect token the request carries."""
        return await self._serving.call_path.call_citizen(
            f"/{SERVICE_NAME}/ListAccesses",
            Inbound.of_grpc(context),
            request,
            self._settings.access_history_rate_per_second,
            self._serving.access_history.list_accesses,
        )
