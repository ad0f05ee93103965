"""The registry of habilitations and tokens in PostgreSQL: the source of truth of who may call.

`gateway.registry.schema` (tables, migrations), `gateway.registry.model` (what is held
and the checks on what is written), `gateway.registry.store` (reads, and writes with
their audit entry), `gateway.registry.audit` (the tamper-evident trail of admin actions).
The admin API (`gateway.admin_api`) is the only writer; the gateways read it into a snapshot
(`gateway.registry.snapshot`). `gateway.registry.notices`: the expiry notices.
"""
