"""The admin API's editors, delegations, FranceConnect clients and invitations of bodies.

`gateway.admin_api.actions.AdminService` serves them, each as an operator
(`gateway.admin_api.service.ServiceCore`) but an invitation's acceptance, whose secret is the
credential. A delegation revoked is written to the gateways' Redis as well, refused from the next
call.
"""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any, Unpack

import psycopg
import structlog

from gateway.admin_api.service import IssuedToken, Operator, OwnerFilter, Role, ServiceCore, TokenTerms
from gateway.registry import notices, store
from gateway.registry.model import (
    DataProtectionOfficer,
    Delegation,
    DelegationOrigin,
    Editor,
    FranceConnectClient,
    Habilitation,
    Invitation,
    TokenRecord,
)

_LOG = structlog.get_logger(__name__)
_HOLDER = Operator("holder", Role.ADMIN)
"""Who accepts an invitation: authenticated by its secret for that one write (the audit names their SIRET)."""


class EditorActions(ServiceCore):
    """Editors and their tokens, delegations, FranceConnect clients, invitations of bodies."""

    # -- editors, delegations, FranceConnect clients ------------------------------------------------

    async def create_editor(self, operator: Operator, **values: Any) -> Editor:
        """`gateway.registry.store.create_editor`, as ``operator``."""
        return await self._run(
            operator, Role.ADMIN, lambda conn: store.create_editor(conn, operator.name, **values)
        )

    async def get_editor(
        self, operator: Operator, editor_id: str
    ) -> tuple[Editor, list[TokenRecord], list[Delegation]]:
        """An editor, its tokens and its delegations."""

        async def read(
            conn: psycopg.AsyncConnection[Any],
        ) -> tuple[Editor, list[TokenRecord], list[Delegation]]:
            editor = await store.get_editor(conn, editor_id)
            return (
                editor,
                await store.list_tokens(conn, editor_id=editor.id),
                await store.list_delegations(conn, editor_id=editor.id),
            )

        return await self._run(operator, Role.VIEWER, read)

    async def list_editors(self, operator: Operator) -> list[Editor]:
        """Every editor."""
        return await self._run(operator, Role.VIEWER, store.list_editors)

    async def issue_editor_token(
        self, operator: Operator, editor_id: str, *, allowed_ips: list[str], **terms: Unpack[TokenTerms]
    ) -> IssuedToken:
        """`gateway.registry.store.issue_editor_token` and the new token's JWT."""
        return await self._issue(
            operator,
            lambda conn: store.issue_editor_token(
                conn, operator.name, editor_id, allowed_ips=allowed_ips, **terms
            ),
        )

    async def create_delegation(
        self, operator: Operator, *, editor_id: str, habilitation_id: str, origin: DelegationOrigin
    ) -> Delegation:
        """`gateway.registry.store.create_delegation`, as ``operator``."""
        return await self._run(
            operator,
            Role.ADMIN,
            lambda conn: store.create_delegation(
                conn, operator.name, editor_id=editor_id, habilitation_id=habilitation_id, origin=origin
            ),
        )

    async def revoke_delegation(self, operator: Operator, delegation_id: str) -> Delegation:
        """`gateway.registry.store.revoke_delegation`, as ``operator``, then the revocation in Redis."""
        delegation = await self._run(
            operator, Role.ADMIN, lambda conn: store.revoke_delegation(conn, operator.name, delegation_id)
        )
        await self.push_delegation_revocations([delegation])
        return delegation

    async def list_delegations(self, operator: Operator, **of: Unpack[OwnerFilter]) -> list[Delegation]:
        """`gateway.registry.store.list_delegations`."""
        return await self._run(operator, Role.VIEWER, lambda conn: store.list_delegations(conn, **of))

    async def map_france_connect_client(
        self, operator: Operator, client_id: str, habilitation_id: str
    ) -> FranceConnectClient:
        """`gateway.registry.store.map_france_connect_client`, as ``operator``."""
        return await self._run(
            operator,
            Role.ADMIN,
            lambda conn: store.map_france_connect_client(conn, operator.name, client_id, habilitation_id),
        )

    async def list_france_connect_clients(self, operator: Operator) -> list[FranceConnectClient]:
        """Every FranceConnect client mapped."""
        return await self._run(operator, Role.VIEWER, store.list_france_connect_clients)

    # -- invitations --------------------------------------------------------------------------------

    async def invite_body(
        self,
        operator: Operator,
        *,
        editor_id: str,
        habilitation_id: str,
        contact_email: str,
        dpo: DataProtectionOfficer,
    ) -> tuple[Invitation, str]:
        """`gateway.registry.store.invite`, as ``operator`` for the editor: the invitation, its secret.

        With a mailer, the invitation (its secret with it) is then sent to the body's contact; a
        message that cannot be sent is logged (``invitation_not_sent``): the operator, who has the
        secret, hands it over.
        """

        async def invite(conn: psycopg.AsyncConnection[Any]) -> tuple[Invitation, str, Editor, Habilitation]:
            invitation, secret = await store.invite(
                conn,
                operator.name,
                editor_id=editor_id,
                habilitation_id=habilitation_id,
                contact_email=contact_email,
                dpo=dpo,
            )
            editor = await store.get_editor(conn, invitation.editor_id)
            return invitation, secret, editor, await store.get_habilitation(conn, invitation.habilitation_id)

        invitation, secret, editor, habilitation = await self._run(operator, Role.ADMIN, invite)
        if self._mailer is not None:
            message = notices.invitation_message(
                invitation, secret, editor, habilitation, self._mailer.sender
            )
            try:
                await asyncio.to_thread(self._mailer.send, message)
            except (OSError, smtplib.SMTPException) as error:
                _LOG.warning("invitation_not_sent", invitation_id=invitation.id, error=type(error).__name__)
        return invitation, secret

    async def accept_invitation(
        self, invitation_id: str, secret: str, *, siret: str, terms_accepted: bool, dpo_informed: bool
    ) -> tuple[Invitation, Delegation]:
        """`gateway.registry.store.accept_invitation`: no operator, the secret is the credential."""
        return await self._run(
            _HOLDER,
            Role.ADMIN,
            lambda conn: store.accept_invitation(
                conn,
                invitation_id,
                secret,
                siret=siret,
                terms_accepted=terms_accepted,
                dpo_informed=dpo_informed,
            ),
        )

    async def list_invitations(self, operator: Operator, **of: Unpack[OwnerFilter]) -> list[Invitation]:
        """`gateway.registry.store.list_invitations`."""
        return await self._run(operator, Role.VIEWER, lambda conn: store.list_invitations(conn, **of))
