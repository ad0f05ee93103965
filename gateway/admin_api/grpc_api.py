"""The admin API over gRPC (``apiparticulier.admin.v1.AdminService``), on `gateway.admin_api.service`.

Each method authenticates the operator from the call's ``authorization`` metadata (but
``AcceptInvitation``, whose request carries the invitation's secret), runs the action and
maps its refusals to gRPC statuses: UNAUTHENTICATED, PERMISSION_DENIED,
INVALID_ARGUMENT (the message names the field), NOT_FOUND, FAILED_PRECONDITION,
UNAVAILABLE. Every method is written as ``(operator, request) -> response`` and served
through one adapter (`_served`), which does the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from apiparticulier.admin.v1 import admin_pb2, admin_pb2_grpc
from gateway.admin_api.actions import AdminService
from gateway.admin_api.grpc_messages import (
    KIND_OF,
    ORIGIN_OF,
    STATUS_OF,
    audit_message,
    client_message,
    delegation_message,
    duration,
    editor_message,
    habilitation_message,
    habilitation_values,
    invitation_message,
    owner_filter,
    token_message,
    token_terms,
    window_message,
)
from gateway.admin_api.service import REFUSED, Operator, Operators, refusal_status
from gateway.registry import model, store
from gateway.registry.model import (
    TOKEN_DEFAULT_DAYS,
    DelegationOrigin,
    TokenKind,
)
from runtime.server import ServiceDefinition

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
Request = TypeVar("Request")
Response = TypeVar("Response")


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    # The stubs type the metadata as the sync API's; grpc.aio gives (key, value) pairs.
    pairs: Any = context.invocation_metadata() or ()
    values = [value for key, value in pairs if key == "authorization"]
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


class _Servicer:
    """What every method reads: the service, and the operators who may call it."""

    def __init__(self, service: AdminService, operators: Operators) -> None:
        """Serve ``service`` to the ``operators``."""
        self.service = service
        self.operators = operators


Servicer = TypeVar("Servicer", bound=_Servicer)
Action = Callable[[Servicer, Operator, Request], Awaitable[Response]]
Handler = Callable[[Servicer, Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[Response]]


async def _answered(context: grpc.aio.ServicerContext[Any, Any], run: Awaitable[Response]) -> Response:
    """What ``run`` answers, its refusals mapped to gRPC statuses."""
    try:
        return await run
    except REFUSED as error:
        await context.abort(refusal_status(error)[0], str(error))
    raise AssertionError("context.abort raises")  # pragma: no cover


def _served(action: Action[Servicer, Request, Response]) -> Handler[Servicer, Request, Response]:
    """The gRPC method of ``action``: the operator authenticated, its refusals mapped to statuses."""

    @functools.wraps(action)
    async def handle(
        servicer: Servicer, request: Request, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Response:
        async def run() -> Response:
            operator = servicer.operators.authenticate(_authorization(context))
            return await action(servicer, operator, request)

        return await _answered(context, run())

    return handle


def _served_without_operator(
    action: Callable[[Servicer, Request], Awaitable[Response]],
) -> Handler[Servicer, Request, Response]:
    """The gRPC method of an action whose request carries its own credential: its refusals mapped."""

    @functools.wraps(action)
    async def handle(
        servicer: Servicer, request: Request, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Response:
        return await _answered(context, action(servicer, request))

    return handle


class _HabilitationMethods(_Servicer):
    """Habilitations and their tokens."""

    @_served
    async def CreateHabilitation(  # noqa: N802
        self, operator: Operator, request: admin_pb2.CreateHabilitationRequest
    ) -> admin_pb2.CreateHabilitationResponse:
        """Create a validated habilitation."""
        habilitation = await self.service.create_habilitation(operator, **habilitation_values(request))
        return admin_pb2.CreateHabilitationResponse(habilitation=habilitation_message(habilitation))

    @_served
    async def UpdateHabilitation(  # noqa: N802
        self, operator: Operator, request: admin_pb2.UpdateHabilitationRequest
    ) -> admin_pb2.UpdateHabilitationResponse:
        """Change a habilitation: the fields set."""
        changes = store.HabilitationChanges(
            label=request.label if request.HasField("label") else None,
            organisation_name=request.organisation_name if request.HasField("organisation_name") else None,
            scopes=list(request.scopes.values) if request.HasField("scopes") else None,
            allowed_ips=list(request.allowed_ips.values) if request.HasField("allowed_ips") else None,
            rate_per_second=request.rate_per_second or None if request.HasField("rate_per_second") else None,
            clear_rate_per_second=request.HasField("rate_per_second") and request.rate_per_second == 0,
            rate_per_minute=request.rate_per_minute or None if request.HasField("rate_per_minute") else None,
            clear_rate_per_minute=request.HasField("rate_per_minute") and request.rate_per_minute == 0,
            contacts=list(request.contacts.values) if request.HasField("contacts") else None,
            status=STATUS_OF.get(request.status),
        )
        habilitation = await self.service.update_habilitation(operator, request.id, changes)
        return admin_pb2.UpdateHabilitationResponse(habilitation=habilitation_message(habilitation))

    @_served
    async def GetHabilitation(  # noqa: N802
        self, operator: Operator, request: admin_pb2.GetHabilitationRequest
    ) -> admin_pb2.GetHabilitationResponse:
        """A habilitation and its tokens."""
        habilitation, tokens = await self.service.get_habilitation(operator, request.id)
        return admin_pb2.GetHabilitationResponse(
            habilitation=habilitation_message(habilitation), tokens=[token_message(t) for t in tokens]
        )

    @_served
    async def ListHabilitations(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListHabilitationsRequest
    ) -> admin_pb2.ListHabilitationsResponse:
        """Every habilitation."""
        found = await self.service.list_habilitations(operator)
        return admin_pb2.ListHabilitationsResponse(habilitations=[habilitation_message(h) for h in found])

    # -- tokens -------------------------------------------------------------------------------------

    @_served
    async def IssueToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.IssueTokenRequest
    ) -> admin_pb2.IssueTokenResponse:
        """Issue a token; its JWT this once."""
        issued = await self.service.issue_token(
            operator,
            request.habilitation_id,
            kind=KIND_OF.get(request.kind, TokenKind.CLASSIC),
            **token_terms(request),
        )
        return admin_pb2.IssueTokenResponse(token=token_message(issued.record), jwt=issued.jwt)

    @_served
    async def ListTokens(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListTokensRequest
    ) -> admin_pb2.ListTokensResponse:
        """Tokens of a habilitation or editor, or expiring soon."""
        tokens = await self.service.list_tokens(
            operator,
            habilitation_id=request.habilitation_id or None,
            editor_id=request.editor_id or None,
            expiring_within=duration(request.expiring_within)
            if request.HasField("expiring_within")
            else None,
        )
        return admin_pb2.ListTokensResponse(tokens=[token_message(t) for t in tokens])

    @_served
    async def RevokeToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.RevokeTokenRequest
    ) -> admin_pb2.RevokeTokenResponse:
        """Revoke a token now."""
        token = await self.service.revoke_token(operator, request.id, request.reason)
        return admin_pb2.RevokeTokenResponse(token=token_message(token))

    @_served
    async def RotateToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.RotateTokenRequest
    ) -> admin_pb2.RotateTokenResponse:
        """Replace a token; both work during the grace."""
        old, new = await self.service.rotate_token(operator, request.id, grace=duration(request.grace))
        return admin_pb2.RotateTokenResponse(
            old_token=token_message(old), new_token=token_message(new.record), jwt=new.jwt
        )

    @_served
    async def ProlongToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ProlongTokenRequest
    ) -> admin_pb2.ProlongTokenResponse:
        """Move a token's expiry."""
        token = await self.service.prolong_token(
            operator, request.id, days=request.days or TOKEN_DEFAULT_DAYS
        )
        return admin_pb2.ProlongTokenResponse(token=token_message(token))

    @_served
    async def BanToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.BanTokenRequest
    ) -> admin_pb2.BanTokenResponse:
        """Ban a token from a date."""
        at = request.at.ToDatetime(dt.UTC) if request.HasField("at") else None
        banned, replacement = await self.service.ban_token(
            operator, request.id, at=at, reason=request.reason, replace=request.replace
        )
        if replacement is None:
            return admin_pb2.BanTokenResponse(token=token_message(banned))
        return admin_pb2.BanTokenResponse(
            token=token_message(banned), replacement=token_message(replacement.record), jwt=replacement.jwt
        )

    @_served
    async def ImportLegacyToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ImportLegacyTokenRequest
    ) -> admin_pb2.ImportLegacyTokenResponse:
        """Record a token issued before the registry under a habilitation of its own."""
        habilitation, token = await self.service.import_legacy_token(
            operator,
            token_id=request.token_id,
            issued_at=request.issued_at.ToDatetime(dt.UTC),
            expires_at=request.expires_at.ToDatetime(dt.UTC),
            **habilitation_values(request.habilitation),
        )
        return admin_pb2.ImportLegacyTokenResponse(
            habilitation=habilitation_message(habilitation), token=token_message(token)
        )


class _EditorMethods(_Servicer):
    """Editors, delegations, FranceConnect clients and invitations of bodies."""

    @_served
    async def CreateEditor(  # noqa: N802
        self, operator: Operator, request: admin_pb2.CreateEditorRequest
    ) -> admin_pb2.CreateEditorResponse:
        """Record a software editor."""
        editor = await self.service.create_editor(
            operator,
            siret=request.siret,
            name=request.name,
            allowed_ips=list(request.allowed_ips),
            contacts=list(request.contacts),
        )
        return admin_pb2.CreateEditorResponse(editor=editor_message(editor))

    @_served
    async def GetEditor(  # noqa: N802
        self, operator: Operator, request: admin_pb2.GetEditorRequest
    ) -> admin_pb2.GetEditorResponse:
        """An editor, its tokens and delegations."""
        editor, tokens, delegations = await self.service.get_editor(operator, request.id)
        return admin_pb2.GetEditorResponse(
            editor=editor_message(editor),
            tokens=[token_message(t) for t in tokens],
            delegations=[delegation_message(d) for d in delegations],
        )

    @_served
    async def ListEditors(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListEditorsRequest
    ) -> admin_pb2.ListEditorsResponse:
        """Every editor."""
        return admin_pb2.ListEditorsResponse(
            editors=[editor_message(e) for e in await self.service.list_editors(operator)]
        )

    @_served
    async def IssueEditorToken(  # noqa: N802
        self, operator: Operator, request: admin_pb2.IssueEditorTokenRequest
    ) -> admin_pb2.IssueEditorTokenResponse:
        """Issue an editor token; its JWT this once."""
        issued = await self.service.issue_editor_token(
            operator, request.editor_id, allowed_ips=list(request.allowed_ips), **token_terms(request)
        )
        return admin_pb2.IssueEditorTokenResponse(token=token_message(issued.record), jwt=issued.jwt)

    @_served
    async def CreateDelegation(  # noqa: N802
        self, operator: Operator, request: admin_pb2.CreateDelegationRequest
    ) -> admin_pb2.CreateDelegationResponse:
        """Delegate a habilitation to an editor."""
        delegation = await self.service.create_delegation(
            operator,
            editor_id=request.editor_id,
            habilitation_id=request.habilitation_id,
            origin=ORIGIN_OF.get(request.origin, DelegationOrigin.MANUAL),
        )
        return admin_pb2.CreateDelegationResponse(delegation=delegation_message(delegation))

    @_served
    async def RevokeDelegation(  # noqa: N802
        self, operator: Operator, request: admin_pb2.RevokeDelegationRequest
    ) -> admin_pb2.RevokeDelegationResponse:
        """Revoke a delegation now."""
        delegation = await self.service.revoke_delegation(operator, request.id)
        return admin_pb2.RevokeDelegationResponse(delegation=delegation_message(delegation))

    @_served
    async def ListDelegations(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListDelegationsRequest
    ) -> admin_pb2.ListDelegationsResponse:
        """Delegations of an editor or a habilitation."""
        found = await self.service.list_delegations(operator, **owner_filter(request))
        return admin_pb2.ListDelegationsResponse(delegations=[delegation_message(d) for d in found])

    @_served
    async def MapFranceConnectClient(  # noqa: N802
        self, operator: Operator, request: admin_pb2.MapFranceConnectClientRequest
    ) -> admin_pb2.MapFranceConnectClientResponse:
        """Map a FranceConnect client to a habilitation."""
        client = await self.service.map_france_connect_client(
            operator, request.client_id, request.habilitation_id
        )
        return admin_pb2.MapFranceConnectClientResponse(client=client_message(client))

    @_served
    async def ListFranceConnectClients(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListFranceConnectClientsRequest
    ) -> admin_pb2.ListFranceConnectClientsResponse:
        """Every FranceConnect client mapped."""
        clients = await self.service.list_france_connect_clients(operator)
        return admin_pb2.ListFranceConnectClientsResponse(clients=[client_message(c) for c in clients])

    @_served
    async def InviteBody(  # noqa: N802
        self, operator: Operator, request: admin_pb2.InviteBodyRequest
    ) -> admin_pb2.InviteBodyResponse:
        """Invite a body to delegate its habilitation to an editor; the secret this once."""
        invitation, secret = await self.service.invite_body(
            operator,
            editor_id=request.editor_id,
            habilitation_id=request.habilitation_id,
            contact_email=request.contact_email,
            dpo=model.DataProtectionOfficer(
                **{name: getattr(request.dpo, name) for name in model.DPO_FIELDS}
            ),
        )
        return admin_pb2.InviteBodyResponse(invitation=invitation_message(invitation), secret=secret)

    @_served_without_operator
    async def AcceptInvitation(  # noqa: N802
        self, request: admin_pb2.AcceptInvitationRequest
    ) -> admin_pb2.AcceptInvitationResponse:
        """The body's holder accepts, with the invitation's secret: the delegation is made."""
        invitation, delegation = await self.service.accept_invitation(
            request.id,
            request.secret,
            siret=request.siret,
            terms_accepted=request.terms_accepted,
            dpo_informed=request.dpo_informed,
        )
        return admin_pb2.AcceptInvitationResponse(
            invitation=invitation_message(invitation), delegation=delegation_message(delegation)
        )

    @_served
    async def ListInvitations(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListInvitationsRequest
    ) -> admin_pb2.ListInvitationsResponse:
        """Invitations of an editor or a habilitation."""
        found = await self.service.list_invitations(operator, **owner_filter(request))
        return admin_pb2.ListInvitationsResponse(invitations=[invitation_message(i) for i in found])


class _OversightMethods(_Servicer):
    """Maintenance windows and the audit trail."""

    @_served
    async def ListMaintenanceWindows(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListMaintenanceWindowsRequest
    ) -> admin_pb2.ListMaintenanceWindowsResponse:
        """The windows not yet over."""
        windows = await self.service.list_maintenance_windows(operator)
        now = dt.datetime.now(dt.UTC)
        return admin_pb2.ListMaintenanceWindowsResponse(windows=[window_message(w, now) for w in windows])

    @_served
    async def OpenMaintenanceWindow(  # noqa: N802
        self, operator: Operator, request: admin_pb2.OpenMaintenanceWindowRequest
    ) -> admin_pb2.OpenMaintenanceWindowResponse:
        """Open (or replace) a ping's window."""
        if not request.HasField("end"):
            raise model.InvalidInputError("end", "required: the window's end")
        window = await self.service.open_maintenance_window(
            operator,
            request.ping,
            start=request.start.ToDatetime(dt.UTC) if request.HasField("start") else None,
            end=request.end.ToDatetime(dt.UTC),
        )
        return admin_pb2.OpenMaintenanceWindowResponse(window=window_message(window, dt.datetime.now(dt.UTC)))

    @_served
    async def CloseMaintenanceWindow(  # noqa: N802
        self, operator: Operator, request: admin_pb2.CloseMaintenanceWindowRequest
    ) -> admin_pb2.CloseMaintenanceWindowResponse:
        """End a ping's open window now, or cancel its scheduled one."""
        window = await self.service.close_maintenance_window(operator, request.ping)
        if window is None:
            return admin_pb2.CloseMaintenanceWindowResponse()
        return admin_pb2.CloseMaintenanceWindowResponse(
            window=window_message(window, dt.datetime.now(dt.UTC))
        )

    @_served
    async def ListAudit(  # noqa: N802
        self, operator: Operator, request: admin_pb2.ListAuditRequest
    ) -> admin_pb2.ListAuditResponse:
        """A page of the audit trail, newest first."""
        entries, token = await self.service.list_audit(
            operator, page_size=request.page_size, page_token=request.page_token
        )
        return admin_pb2.ListAuditResponse(entries=[audit_message(e) for e in entries], next_page_token=token)

    @_served
    async def VerifyAudit(  # noqa: N802
        self, operator: Operator, request: admin_pb2.VerifyAuditRequest
    ) -> admin_pb2.VerifyAuditResponse:
        """Recompute the audit chain."""
        verification = await self.service.verify_audit(operator)
        return admin_pb2.VerifyAuditResponse(
            entries=verification.entries, head=verification.head.hex(), broken_at=verification.broken_at or 0
        )


class AdminServicer(
    _HabilitationMethods, _EditorMethods, _OversightMethods, admin_pb2_grpc.AdminServiceServicer
):
    """``AdminService``: every method of the admin API (names are the gRPC methods'), by concern."""


def definition(servicer: AdminServicer) -> ServiceDefinition:
    """The service, for `runtime.server.GrpcServer`."""
    return ServiceDefinition(
        SERVICE_NAME, lambda server: admin_pb2_grpc.add_AdminServiceServicer_to_server(servicer, server)
    )
