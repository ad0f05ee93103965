"""The admin API's maintenance windows and audit trail (`gateway.admin_api.actions.AdminService`)."""

from __future__ import annotations

import datetime as dt

from gateway.admin_api import maintenance, trail
from gateway.admin_api.service import Operator, Role, ServiceCore
from gateway.registry import audit


class OversightActions(ServiceCore):
    """Maintenance windows (list, open, close) and the audit trail (a page of it, its verification)."""

    # -- maintenance windows, the audit trail's entries ----------------------------------------------

    async def list_maintenance_windows(self, operator: Operator) -> list[maintenance.MaintenanceWindow]:
        """`gateway.admin_api.maintenance.list_windows`, now."""
        return await self._run(
            operator,
            Role.VIEWER,
            lambda _conn: maintenance.list_windows(self._redis, dt.datetime.now(dt.UTC)),
        )

    async def open_maintenance_window(
        self, operator: Operator, ping_id: str, *, start: dt.datetime | None, end: dt.datetime
    ) -> maintenance.MaintenanceWindow:
        """`gateway.admin_api.maintenance.open_window`, as ``operator``."""
        return await self._run(
            operator,
            Role.ADMIN,
            lambda conn: maintenance.open_window(
                conn, self._redis, operator.name, ping_id, start=start, end=end
            ),
        )

    async def close_maintenance_window(
        self, operator: Operator, ping_id: str
    ) -> maintenance.MaintenanceWindow | None:
        """`gateway.admin_api.maintenance.close_window`, as ``operator``."""
        return await self._run(
            operator,
            Role.ADMIN,
            lambda conn: maintenance.close_window(conn, self._redis, operator.name, ping_id),
        )

    async def list_audit(
        self, operator: Operator, *, page_size: int, page_token: str
    ) -> tuple[list[audit.Entry], str]:
        """`gateway.admin_api.trail.page`: a page of the audit trail, newest first, and the next's token."""
        return await self._run(operator, Role.VIEWER, lambda conn: trail.page(conn, page_size, page_token))

    async def verify_audit(self, operator: Operator) -> audit.Verification:
        """`gateway.registry.audit.verify`."""
        return await self._run(operator, Role.VIEWER, audit.verify)
