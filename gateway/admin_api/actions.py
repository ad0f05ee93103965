"""Every action of the admin API, in one service its gRPC service and REST front share.

The actions stand by concern in `gateway.admin_api.habilitations` (habilitations and tokens),
`gateway.admin_api.editors` (editors, delegations, FranceConnect clients, invitations) and
`gateway.admin_api.oversight` (maintenance windows, the audit trail), on what they share
(`gateway.admin_api.service.ServiceCore`: the connection, the operator's rights, the revocations).
"""

from __future__ import annotations

from gateway.admin_api.editors import EditorActions
from gateway.admin_api.habilitations import HabilitationActions
from gateway.admin_api.oversight import OversightActions


class AdminService(HabilitationActions, EditorActions, OversightActions):
    """Every action of the admin API, for an authenticated operator (the constructor: `ServiceCore`)."""
