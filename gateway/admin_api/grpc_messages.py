"""The admin API's gRPC messages of the registry's records, and the requests' values read back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from apiparticulier.admin.v1 import admin_pb2
from gateway.admin_api.maintenance import MaintenanceWindow
from gateway.admin_api.service import OwnerFilter, TokenTerms
from gateway.registry import audit, model
from gateway.registry.model import (
    TOKEN_DEFAULT_DAYS,
    DelegationOrigin,
    DelegationState,
    Environment,
    InvitationState,
    Status,
    TokenKind,
)

_STATUS = {
    Status.VALIDATED: admin_pb2.HABILITATION_STATUS_VALIDATED,
    Status.REVOKED: admin_pb2.HABILITATION_STATUS_REVOKED,
    Status.ARCHIVED: admin_pb2.HABILITATION_STATUS_ARCHIVED,
}
STATUS_OF = {value: key for key, value in _STATUS.items()}
_KIND = {TokenKind.CLASSIC: admin_pb2.TOKEN_KIND_CLASSIC, TokenKind.EDITOR: admin_pb2.TOKEN_KIND_EDITOR}
KIND_OF = {value: key for key, value in _KIND.items()}
_ENVIRONMENT = {
    Environment.PRODUCTION: admin_pb2.ENVIRONMENT_PRODUCTION,
    Environment.SANDBOX: admin_pb2.ENVIRONMENT_SANDBOX,
}
ENVIRONMENT_OF = {value: key for key, value in _ENVIRONMENT.items()}
_ORIGIN = {
    DelegationOrigin.MANUAL: admin_pb2.DELEGATION_ORIGIN_MANUAL,
    DelegationOrigin.DATAPASS_AUTO: admin_pb2.DELEGATION_ORIGIN_DATAPASS_AUTO,
    DelegationOrigin.EDITOR_DELEGATION_REQUEST: admin_pb2.DELEGATION_ORIGIN_EDITOR_DELEGATION_REQUEST,
}
ORIGIN_OF = {value: key for key, value in _ORIGIN.items()}
_DELEGATION_STATE = {
    DelegationState.ACTIVE: admin_pb2.DELEGATION_STATE_ACTIVE,
    DelegationState.REVOKED: admin_pb2.DELEGATION_STATE_REVOKED,
}
_INVITATION_STATE = {
    InvitationState.PENDING: admin_pb2.INVITATION_STATE_PENDING,
    InvitationState.ACCEPTED: admin_pb2.INVITATION_STATE_ACCEPTED,
    InvitationState.EXPIRED: admin_pb2.INVITATION_STATE_EXPIRED,
}
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


def habilitation_message(habilitation: model.Habilitation) -> admin_pb2.Habilitation:
    """The message of a habilitation."""
    return admin_pb2.Habilitation(
        id=habilitation.id,
        label=habilitation.label,
        siret=habilitation.siret,
        organisation_name=habilitation.organisation_name,
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


def token_message(token: model.TokenRecord) -> admin_pb2.Token:
    """The message of a token's record, its state as of now."""
    return admin_pb2.Token(
        id=token.id,
        habilitation_id=token.habilitation_id or "",
        editor_id=token.editor_id or "",
        allowed_ips=token.allowed_ips,
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


def editor_message(editor: model.Editor) -> admin_pb2.Editor:
    """The message of an editor."""
    return admin_pb2.Editor(
        id=editor.id,
        siret=editor.siret,
        name=editor.name,
        allowed_ips=editor.allowed_ips,
        contacts=editor.contacts,
        created_at=_timestamp(editor.created_at),
        updated_at=_timestamp(editor.updated_at),
    )


def delegation_message(delegation: model.Delegation) -> admin_pb2.Delegation:
    """The message of a delegation."""
    return admin_pb2.Delegation(
        id=delegation.id,
        editor_id=delegation.editor_id,
        habilitation_id=delegation.habilitation_id,
        origin=_ORIGIN[delegation.origin],
        state=_DELEGATION_STATE[delegation.state],
        created_at=_timestamp(delegation.created_at),
        revoked_at=_timestamp(delegation.revoked_at),
    )


def invitation_message(invitation: model.Invitation) -> admin_pb2.Invitation:
    """The message of an invitation, its state as of now."""
    return admin_pb2.Invitation(
        id=invitation.id,
        editor_id=invitation.editor_id,
        habilitation_id=invitation.habilitation_id,
        contact_email=invitation.contact_email,
        dpo=admin_pb2.DataProtectionOfficer(**invitation.dpo.as_json()),
        state=_INVITATION_STATE[invitation.state(dt.datetime.now(dt.UTC))],
        invited_at=_timestamp(invitation.invited_at),
        expires_at=_timestamp(invitation.expires_at),
        accepted_at=_timestamp(invitation.accepted_at),
        delegation_id=invitation.delegation_id or "",
    )


def client_message(client: model.FranceConnectClient) -> admin_pb2.FranceConnectClient:
    """The message of a FranceConnect client's mapping."""
    return admin_pb2.FranceConnectClient(
        client_id=client.client_id,
        habilitation_id=client.habilitation_id,
        updated_at=_timestamp(client.updated_at),
    )


def window_message(window: MaintenanceWindow, now: dt.datetime) -> admin_pb2.MaintenanceWindow:
    """The message of a maintenance window, ``open`` as of ``now``."""
    return admin_pb2.MaintenanceWindow(
        ping=window.ping.id,
        label=window.ping.label,
        start=_timestamp(window.start),
        end=_timestamp(window.end),
        open=window.is_open(now),
    )


def audit_message(entry: audit.Entry) -> admin_pb2.AuditEntry:
    """The message of an audit entry, its records as JSON ("" for none)."""
    return admin_pb2.AuditEntry(
        seq=entry.seq,
        occurred_at=_timestamp(entry.occurred_at),
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        before_json="" if entry.before is None else json.dumps(entry.before, ensure_ascii=False),
        after_json="" if entry.after is None else json.dumps(entry.after, ensure_ascii=False),
        hash=entry.entry_hash.hex(),
    )


def habilitation_values(request: admin_pb2.CreateHabilitationRequest) -> dict[str, Any]:
    """The keyword arguments of `gateway.registry.store.create_habilitation` of a request."""
    return {
        "label": request.label,
        "siret": request.siret,
        "organisation_name": request.organisation_name,
        "scopes": list(request.scopes),
        "allowed_ips": list(request.allowed_ips),
        "rate_per_second": request.rate_per_second or None,
        "rate_per_minute": request.rate_per_minute or None,
        "contacts": list(request.contacts),
        "datapass_id": request.datapass_id,
        "use_case": request.use_case,
        "legal_basis": request.legal_basis,
    }


def owner_filter(request: admin_pb2.ListDelegationsRequest | admin_pb2.ListInvitationsRequest) -> OwnerFilter:
    """The editor or habilitation whose records a listing request asks for ("": any)."""
    return {"editor_id": request.editor_id or None, "habilitation_id": request.habilitation_id or None}


def token_terms(request: admin_pb2.IssueTokenRequest | admin_pb2.IssueEditorTokenRequest) -> TokenTerms:
    """A new token's ``days`` and ``environment`` of an issue request (0 and unspecified: the defaults)."""
    return {
        "days": request.days or TOKEN_DEFAULT_DAYS,
        "environment": ENVIRONMENT_OF.get(request.environment, Environment.PRODUCTION),
    }


def duration(duration: duration_pb2.Duration) -> dt.timedelta:
    """A protobuf duration as a time delta (to the microsecond)."""
    return dt.timedelta(seconds=duration.seconds, microseconds=duration.nanos // 1000)
