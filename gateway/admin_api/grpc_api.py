"""The admin API over gRPC (``apiparticulier.admin.v1.AdminService``), on `gateway.admin_api.service`.

Each method authenticates the operator from the call's ``authorization`` metadata, runs
the action and maps its refusals to gRPC statuses: UNAUTHENTICATED, PERMISSION_DENIED,
INVALID_ARGUMENT (the message names the field), NOT_FOUND, FAILED_PRECONDITION,
UNAVAILABLE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from apiparticulier.admin.v1 import admin_pb2, admin_pb2_grpc
from gateway.admin_api.service import (
    AdminService,
    ForbiddenError,
    Operator,
    Operators,
    UnauthenticatedError,
    UnavailableError,
)
from gateway.registry import store
from gateway.registry.model import (
    TOKEN_DEFAULT_DAYS,
    Environment,
    Habilitation,
    InvalidInputError,
    Status,
    TokenKind,
    TokenRecord,
)
from runtime.server import ServiceDefinition

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
Response = TypeVar("Response")

_STATUS = {
    Status.VALIDATED: admin_pb2.HABILITATION_STATUS_VALIDATED,
    Status.REVOKED: admin_pb2.HABILITATION_STATUS_REVOKED,
    Status.ARCHIVED: admin_pb2.HABILITATION_STATUS_ARCHIVED,
}
_STATUS_OF = {value: key for key, value in _STATUS.items()}
_KIND = {TokenKind.CLASSIC: admin_pb2.TOKEN_KIND_CLASSIC, TokenKind.EDITOR: admin_pb2.TOKEN_KIND_EDITOR}
_KIND_OF = {value: key for key, value in _KIND.items()}
_ENVIRONMENT = {
    Environment.PRODUCTION: admin_pb2.ENVIRONMENT_PRODUCTION,
    Environment.SANDBOX: admin_pb2.ENVIRONMENT_SANDBOX,
}
_ENVIRONMENT_OF = {value: key for key, value in _ENVIRONMENT.items()}
_STATE = {
    "active": admin_pb2.TOKEN_STATE_ACTIVE,
    "ending": admin_pb2.TOKEN_STATE_ENDING,
    "revoked": admin_pb2.TOKEN_STATE_REVOKED,
    "expired": admin_pb2.TOKEN_STATE_EXPIRED,
}


def _timestamp(moment: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp


def habilitation_message(habilitation: Habilitation) -> admin_pb2.Habilitation:
    """The message of a habilitation."""
    return admin_pb2.Habilitation(
        id=habilitation.id,
        label=habilitation.label,
        siret=habilitation.siret,
        datapass_id=habilitation.datapass_id,
        use_case=habilitation.use_case,
        legal_basis=habilitation.legal_basis,
        scopes=habilitation.scopes,
        allowed_ips=habilitation.allowed_ips,
        rate_per_second=habilitation.rate_per_second or 0,
        rate_per_minute=habilitation.rate_per_minute or 0,
        contacts=habilitation.contacts,
        status=_STATUS[habilitation.status],
        valid_from=_timestamp(habilitation.valid_from),
        valid_until=_timestamp(habilitation.valid_until),
        created_at=_timestamp(habilitation.created_at),
        updated_at=_timestamp(habilitation.updated_at),
    )


def token_message(token: TokenRecord) -> admin_pb2.Token:
    """The message of a token's record, its state as of now."""
    return admin_pb2.Token(
        id=token.id,
        habilitation_id=token.habilitation_id,
        kind=_KIND[token.kind],
        environment=_ENVIRONMENT[token.environment],
        issued_at=_timestamp(token.issued_at),
        expires_at=_timestamp(token.expires_at),
        revoked_at=_timestamp(token.revoked_at),
        revoked_reason=token.revoked_reason,
        replaces=token.replaces or "",
        replaced_by=token.replaced_by or "",
        state=_STATE[token.state(dt.datetime.now(dt.UTC)).value],
    )


def _habilitation_values(request: admin_pb2.CreateHabilitationRequest) -> dict[str, Any]:
    return {
        "label": request.label,
        "siret": request.siret,
        "scopes": list(request.scopes),
        "allowed_ips": list(request.allowed_ips),
        "rate_per_second": request.rate_per_second or None,
        "rate_per_minute": request.rate_per_minute or None,
        "contacts": list(request.contacts),
        "datapass_id": request.datapass_id,
        "use_case": request.use_case,
        "legal_basis": request.legal_basis,
    }


def _duration(duration: duration_pb2.Duration) -> dt.timedelta:
    return dt.timedelta(seconds=duration.seconds, microseconds=duration.nanos // 1000)


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    # The stubs type the metadata as the sync API's; grpc.aio gives (key, value) pairs.
    pairs: Any = context.invocation_metadata() or ()
    values = [value for key, value in pairs if key == "authorization"]
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """``AdminService``: every method of the admin API."""

    def __init__(self, service: AdminService, operators: Operators) -> None:
        """Serve ``service`` to the ``operators``."""
        self._service = service
        self._operators = operators

    async def _serve(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        action: Callable[[Operator], Awaitable[Response]],
    ) -> Response:
        try:
            return await action(self._operators.authenticate(_authorization(context)))
        except UnauthenticatedError as error:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
        except ForbiddenError as error:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        except InvalidInputError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except store.UnknownError as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except store.ConflictError as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        except UnavailableError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        raise AssertionError("context.abort raises")  # pragma: no cover

    async def CreateHabilitation(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.CreateHabilitationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.CreateHabilitationResponse:
        """Create a validated habilitation."""

        async def create(operator: Operator) -> admin_pb2.CreateHabilitationResponse:
            habilitation = await self._service.create_habilitation(operator, **_habilitation_values(request))
            return admin_pb2.CreateHabilitationResponse(habilitation=habilitation_message(habilitation))

        return await self._serve(context, create)

    async def UpdateHabilitation(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.UpdateHabilitationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.UpdateHabilitationResponse:
        """Change a habilitation: the fields set."""
        changes = store.HabilitationChanges(
            label=request.label if request.HasField("label") else None,
            scopes=list(request.scopes.values) if request.HasField("scopes") else None,
            allowed_ips=list(request.allowed_ips.values) if request.HasField("allowed_ips") else None,
            rate_per_second=request.rate_per_second or None if request.HasField("rate_per_second") else None,
            clear_rate_per_second=request.HasField("rate_per_second") and request.rate_per_second == 0,
            rate_per_minute=request.rate_per_minute or None if request.HasField("rate_per_minute") else None,
            clear_rate_per_minute=request.HasField("rate_per_minute") and request.rate_per_minute == 0,
            contacts=list(request.contacts.values) if request.HasField("contacts") else None,
            status=_STATUS_OF.get(request.status),
        )

        async def update(operator: Operator) -> admin_pb2.UpdateHabilitationResponse:
            habilitation = await self._service.update_habilitation(operator, request.id, changes)
            return admin_pb2.UpdateHabilitationResponse(habilitation=habilitation_message(habilitation))

        return await self._serve(context, update)

    async def GetHabilitation(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.GetHabilitationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.GetHabilitationResponse:
        """A habilitation and its tokens."""

        async def get(operator: Operator) -> admin_pb2.GetHabilitationResponse:
            habilitation, tokens = await self._service.get_habilitation(operator, request.id)
            return admin_pb2.GetHabilitationResponse(
                habilitation=habilitation_message(habilitation), tokens=[token_message(t) for t in tokens]
            )

        return await self._serve(context, get)

    async def ListHabilitations(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.ListHabilitationsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListHabilitationsResponse:
        """Every habilitation."""

        async def listing(operator: Operator) -> admin_pb2.ListHabilitationsResponse:
            found = await self._service.list_habilitations(operator)
            return admin_pb2.ListHabilitationsResponse(habilitations=[habilitation_message(h) for h in found])

        return await self._serve(context, listing)

    async def IssueToken(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.IssueTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.IssueTokenResponse:
        """Issue a token; its JWT this once."""

        async def issue(operator: Operator) -> admin_pb2.IssueTokenResponse:
            issued = await self._service.issue_token(
                operator,
                request.habilitation_id,
                days=request.days or TOKEN_DEFAULT_DAYS,
                kind=_KIND_OF.get(request.kind, TokenKind.CLASSIC),
                environment=_ENVIRONMENT_OF.get(request.environment, Environment.PRODUCTION),
            )
            return admin_pb2.IssueTokenResponse(token=token_message(issued.record), jwt=issued.jwt)

        return await self._serve(context, issue)

    async def ListTokens(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.ListTokensRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListTokensResponse:
        """Tokens of a habilitation, or expiring soon."""

        async def listing(operator: Operator) -> admin_pb2.ListTokensResponse:
            tokens = await self._service.list_tokens(
                operator,
                habilitation_id=request.habilitation_id or None,
                expiring_within=_duration(request.expiring_within)
                if request.HasField("expiring_within")
                else None,
            )
            return admin_pb2.ListTokensResponse(tokens=[token_message(t) for t in tokens])

        return await self._serve(context, listing)

    async def RevokeToken(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RevokeTokenResponse:
        """Revoke a token now."""

        async def revoke(operator: Operator) -> admin_pb2.RevokeTokenResponse:
            token = await self._service.revoke_token(operator, request.id, request.reason)
            return admin_pb2.RevokeTokenResponse(token=token_message(token))

        return await self._serve(context, revoke)

    async def RotateToken(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.RotateTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RotateTokenResponse:
        """Replace a token; both work during the grace."""

        async def rotate(operator: Operator) -> admin_pb2.RotateTokenResponse:
            old, new = await self._service.rotate_token(operator, request.id, grace=_duration(request.grace))
            return admin_pb2.RotateTokenResponse(
                old_token=token_message(old), new_token=token_message(new.record), jwt=new.jwt
            )

        return await self._serve(context, rotate)

    async def ProlongToken(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.ProlongTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ProlongTokenResponse:
        """Move a token's expiry."""

        async def prolong(operator: Operator) -> admin_pb2.ProlongTokenResponse:
            token = await self._service.prolong_token(
                operator, request.id, days=request.days or TOKEN_DEFAULT_DAYS
            )
            return admin_pb2.ProlongTokenResponse(token=token_message(token))

        return await self._serve(context, prolong)

    async def BanToken(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.BanTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.BanTokenResponse:
        """Ban a token from a date."""

        async def ban(operator: Operator) -> admin_pb2.BanTokenResponse:
            at = request.at.ToDatetime(dt.UTC) if request.HasField("at") else None
            banned, replacement = await self._service.ban_token(
                operator, request.id, at=at, reason=request.reason, replace=request.replace
            )
            if replacement is None:
                return admin_pb2.BanTokenResponse(token=token_message(banned))
            return admin_pb2.BanTokenResponse(
                token=token_message(banned),
                replacement=token_message(replacement.record),
                jwt=replacement.jwt,
            )

        return await self._serve(context, ban)

    async def ImportLegacyToken(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.ImportLegacyTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ImportLegacyTokenResponse:
        """Record a token issued before the registry under a habilitation of its own."""

        async def migrate(operator: Operator) -> admin_pb2.ImportLegacyTokenResponse:
            habilitation, token = await self._service.import_legacy_token(
                operator,
                token_id=request.token_id,
                issued_at=request.issued_at.ToDatetime(dt.UTC),
                expires_at=request.expires_at.ToDatetime(dt.UTC),
                **_habilitation_values(request.habilitation),
            )
            return admin_pb2.ImportLegacyTokenResponse(
                habilitation=habilitation_message(habilitation), token=token_message(token)
            )

        return await self._serve(context, migrate)

    async def VerifyAudit(  # noqa: N802 - the gRPC method's name
        self, request: admin_pb2.VerifyAuditRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.VerifyAuditResponse:
        """Recompute the audit chain."""

        async def verify(operator: Operator) -> admin_pb2.VerifyAuditResponse:
            verification = await self._service.verify_audit(operator)
            return admin_pb2.VerifyAuditResponse(
                entries=verification.entries,
                head=verification.head.hex(),
                broken_at=verification.broken_at or 0,
            )

        return await self._serve(context, verify)


def definition(servicer: AdminServicer) -> ServiceDefinition:
    """The service, for `runtime.server.GrpcServer`."""
    return ServiceDefinition(
        SERVICE_NAME, lambda server: admin_pb2_grpc.add_AdminServiceServicer_to_server(servicer, server)
    )
