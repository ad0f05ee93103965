"""The registry's tables in PostgreSQL, and their migrations.

Schema ``registry``, apart from the journal's:

- ``habilitations``: one row per habilitation (a DataPass authorization): label, holder
  SIRET, DataPass id, use case, legal basis, scopes, allowed IPs or CIDRs, per-second and
  per-minute limits (NULL: the gateway's default, none), contacts for notices, status and
  validity.
- ``tokens``: the tokens of each habilitation, several at once: kind, environment,
  issued, expiry, state, and the revocation or ban (date and reason), the token it
  replaces or that replaces it (rotation, ban), the end of a rotation's grace.
- ``audit``: every admin action, in one hash chain (`gateway.registry.audit`): who,
  what, when, on what, before and after.
- ``notices``: the expiry notices sent, one row per token and threshold.
- ``schema_migrations``: the migrations applied.

Every write of the admin API commits with a ``NOTIFY registry_changes`` whose payload is
the habilitation's id: the gateways' snapshots (`gateway.registry.snapshot`) reload on it.
Migrations run when the admin API starts, in one transaction under an advisory lock of
their own, as the journal's do.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from gateway.migrations import apply_migrations

SCHEMA = "registry"
CHANNEL = "registry_changes"
"""The PostgreSQL channel on which each committed change is announced (payload: the habilitation id)."""
_LOCK_KEY = 0x7265676973747279  # "registry": the registry's DDL, apart from the journal's lock.

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE registry.habilitations (
            id uuid PRIMARY KEY,
            label text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
            siret char(14) NOT NULL,
            datapass_id text NOT NULL DEFAULT '',
            use_case text NOT NULL DEFAULT '',
            legal_basis text NOT NULL DEFAULT '',
            scopes text[] NOT NULL,
            allowed_ips cidr[] NOT NULL DEFAULT '{}',
            rate_per_second integer CHECK (rate_per_second BETWEEN 1 AND 10000),
            rate_per_minute integer CHECK (rate_per_minute BETWEEN 1 AND 600000),
            contacts text[] NOT NULL DEFAULT '{}',
            status text NOT NULL CHECK (status IN ('validated', 'revoked', 'archived')),
            valid_from timestamptz NOT NULL,
            valid_until timestamptz,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE UNIQUE INDEX habilitations_datapass ON registry.habilitations (datapass_id)
            WHERE datapass_id <> '';
        CREATE TABLE registry.tokens (
            id uuid PRIMARY KEY,
            habilitation_id uuid NOT NULL REFERENCES registry.habilitations,
            kind text NOT NULL CHECK (kind IN ('classic', 'editor')),
            environment text NOT NULL CHECK (environment IN ('production', 'sandbox')),
            issued_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz,
            revoked_reason text NOT NULL DEFAULT '',
            replaces uuid REFERENCES registry.tokens,
            replaced_by uuid REFERENCES registry.tokens,
            CHECK (expires_at > issued_at)
        );
        CREATE INDEX tokens_habilitation ON registry.tokens (habilitation_id);
        CREATE INDEX tokens_expiry ON registry.tokens (expires_at) WHERE revoked_at IS NULL;
        CREATE TABLE registry.audit (
            seq bigint PRIMARY KEY,
            occurred_at timestamptz NOT NULL,
            actor text NOT NULL,
            action text NOT NULL,
            target text NOT NULL,
            before jsonb,
            after jsonb,
            entry_hash bytea NOT NULL
        );
        CREATE TABLE registry.notices (
            token_id uuid NOT NULL REFERENCES registry.tokens,
            days_left integer NOT NULL,
            expires_at timestamptz NOT NULL,
            recipients text[] NOT NULL,
            sent_at timestamptz NOT NULL,
            PRIMARY KEY (token_id, days_left, expires_at)
        );
        """,
    ),
)
"""(version, SQL) in order; a new migration is appended, never an old one edited."""


async def migrate(conn: AsyncConnection[Any]) -> list[int]:
    """Apply the migrations this database lacks, in one transaction under the registry's lock.

    Returns:
        The versions applied now (none when another process did it first).
    """
    return await apply_migrations(conn, "registry", _LOCK_KEY, MIGRATIONS)
