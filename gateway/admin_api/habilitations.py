"""The admin API's habilitations and their tokens (`gateway.admin_api.actions.AdminService` serves them).

Every action runs as an operator (`gateway.admin_api.service.ServiceCore`): a token ended now
(revoked, banned, rotated, or its habilitation no longer validated) is written to the gateways'
Redis as well, refused from the next call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Unpack

import psycopg

from gateway.admin_api.service import IssuedToken, Operator, Role, ServiceCore, TokenTerms
from gateway.registry import store
from gateway.registry.model import Habilitation, Status, TokenKind, TokenRecord


class HabilitationActions(ServiceCore):
    """Habilitations and tokens: create, change, read; issue, list, revoke, ban, rotate, prolong, import."""

    # -- habilitations ------------------------------------------------------------------------------

    async def create_habilitation(self, operator: Operator, **values: Any) -> Habilitation:
        """`gateway.registry.store.create_habilitation`, as ``operator``."""
        return await self._run(
            operator, Role.ADMIN, lambda conn: store.create_habilitation(conn, operator.name, **values)
        )

    async def update_habilitation(
        self, operator: Operator, habilitation_id: str, changes: store.HabilitationChanges
    ) -> Habilitation:
        """`gateway.registry.store.update_habilitation`, as ``operator``.

        A habilitation no longer validated has its tokens and delegations ended: their revocations
        written to Redis as well, refused from the next call.
        """
        habilitation = await self._run(
            operator,
            Role.ADMIN,
            lambda conn: store.update_habilitation(conn, operator.name, habilitation_id, changes),
        )
        if habilitation.status is not Status.VALIDATED:
            async with self.connection() as conn:
                delegations = await store.list_delegations(conn, habilitation_id=habilitation.id)
            await self.push_delegation_revocations([d for d in delegations if d.revoked_at is not None])
            for token in await self.list_tokens(
                operator, habilitation_id=habilitation.id, expiring_within=None
            ):
                await self.push_revocation(token)
        return habilitation

    async def get_habilitation(
        self, operator: Operator, habilitation_id: str
    ) -> tuple[Habilitation, list[TokenRecord]]:
        """A habilitation and its tokens."""

        async def read(conn: psycopg.AsyncConnection[Any]) -> tuple[Habilitation, list[TokenRecord]]:
            habilitation = await store.get_habilitation(conn, habilitation_id)
            return habilitation, await store.list_tokens(conn, habilitation_id=habilitation.id)

        return await self._run(operator, Role.VIEWER, read)

    async def list_habilitations(self, operator: Operator) -> list[Habilitation]:
        """Every habilitation."""
        return await self._run(operator, Role.VIEWER, store.list_habilitations)

    # -- tokens -------------------------------------------------------------------------------------

    async def issue_token(
        self, operator: Operator, habilitation_id: str, *, kind: TokenKind, **terms: Unpack[TokenTerms]
    ) -> IssuedToken:
        """`gateway.registry.store.issue_token` and the new token's JWT."""
        return await self._issue(
            operator, lambda conn: store.issue_token(conn, operator.name, habilitation_id, kind=kind, **terms)
        )

    async def list_tokens(
        self,
        operator: Operator,
        *,
        habilitation_id: str | None,
        expiring_within: dt.timedelta | None,
        editor_id: str | None = None,
    ) -> list[TokenRecord]:
        """`gateway.registry.store.list_tokens`."""
        return await self._run(
            operator,
            Role.VIEWER,
            lambda conn: store.list_tokens(
                conn, habilitation_id=habilitation_id, expiring_within=expiring_within, editor_id=editor_id
            ),
        )

    async def revoke_token(self, operator: Operator, token_id: str, reason: str) -> TokenRecord:
        """`gateway.registry.store.revoke_token`, then the revocation in Redis."""
        record = await self._run(
            operator, Role.ADMIN, lambda conn: store.revoke_token(conn, operator.name, token_id, reason)
        )
        await self.push_revocation(record)
        return record

    async def ban_token(
        self, operator: Operator, token_id: str, *, at: dt.datetime | None, reason: str, replace: bool
    ) -> tuple[TokenRecord, IssuedToken | None]:
        """`gateway.registry.store.ban_token`, the replacement's JWT, and Redis when the ban starts now."""

        async def ban(conn: psycopg.AsyncConnection[Any]) -> tuple[TokenRecord, IssuedToken | None]:
            banned, replacement = await store.ban_token(
                conn, operator.name, token_id, at=at, reason=reason, replace=replace
            )
            return banned, None if replacement is None else await self.signed(conn, replacement)

        banned, replacement = await self._run(operator, Role.ADMIN, ban)
        await self.push_revocation(banned)
        return banned, replacement

    async def rotate_token(
        self, operator: Operator, token_id: str, *, grace: dt.timedelta
    ) -> tuple[TokenRecord, IssuedToken]:
        """`gateway.registry.store.rotate_token` and the new token's JWT."""

        async def rotate(conn: psycopg.AsyncConnection[Any]) -> tuple[TokenRecord, IssuedToken]:
            old, new = await store.rotate_token(conn, operator.name, token_id, grace=grace)
            return old, await self.signed(conn, new)

        old, new = await self._run(operator, Role.ADMIN, rotate)
        await self.push_revocation(old)
        return old, new

    async def prolong_token(self, operator: Operator, token_id: str, *, days: int) -> TokenRecord:
        """`gateway.registry.store.prolong_token`."""
        return await self._run(
            operator, Role.ADMIN, lambda conn: store.prolong_token(conn, operator.name, token_id, days=days)
        )

    async def import_legacy_token(
        self, operator: Operator, **values: Any
    ) -> tuple[Habilitation, TokenRecord]:
        """`gateway.registry.store.import_legacy_token`, as ``operator``."""
        return await self._run(
            operator, Role.ADMIN, lambda conn: store.import_legacy_token(conn, operator.name, **values)
        )
