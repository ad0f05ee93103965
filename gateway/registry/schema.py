"""The registry's tables in PostgreSQL, and their migrations.

Schema ``registry``, apart from the journal's:

- ``habilitations``: one row per habilitation (a DataPass authorization): label, holder
  SIRET and organisation name (v4; empty: unknown), DataPass id, use case, legal basis,
  scopes, allowed IPs or CIDRs, per-second and per-minute limits (NULL: the gateway's
  default, none), contacts for notices, status and validity.
- ``tokens``: the tokens of each habilitation, several at once: kind, environment,
  issued, expiry, state, and the revocation or ban (date and reason), the token it
  replaces or that replaces it (rotation, ban), the end of a rotation's grace.
- ``editors``: software editors (SIRET, name, declared IP ranges, contacts); their tokens
  are rows of ``tokens`` with an ``editor_id`` instead of a ``habilitation_id``, and their
  own ``allowed_ips`` (v2).
- ``delegations``: a habilitation delegated to an editor, with its origin, creation and
  revocation; one active delegation per editor and habilitation (v2).
- ``france_connect_clients``: a FranceConnect client and the habilitation its citizens'
  calls count against (v2).
- ``invitations``: an editor's invitation of a public body to delegate its habilitation, naming
  the body's data protection officer; the SHA-256 of the secret the body's holder accepts it
  with, never the secret; once accepted, the delegation it made (v3).
- ``audit``: every admin action, in one hash chain (`gateway.registry.audit`): who,
  what, when, on what, before and after.
- ``notices``: the expiry notices sent, one row per token and threshold.
- ``schema_migrations``: the migrations applied.

Every write of the admin API commits with a ``NOTIFY registry_changes`` whose payload is
the id of the habilitation or editor changed: the gateways' snapshots
(`gateway.registry.snapshot`) reload on it.
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
    (
        2,
        """
        CREATE TABLE registry.editors (
            id uuid PRIMARY KEY,
            siret char(14) NOT NULL,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            allowed_ips cidr[] NOT NULL DEFAULT '{}',
            contacts text[] NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        ALTER TABLE registry.tokens
            ALTER COLUMN habilitation_id DROP NOT NULL,
            ADD COLUMN editor_id uuid REFERENCES registry.editors,
            ADD COLUMN allowed_ips cidr[] NOT NULL DEFAULT '{}',
            ADD CONSTRAINT tokens_one_holder CHECK ((habilitation_id IS NULL) <> (editor_id IS NULL)),
            ADD CONSTRAINT tokens_editor_kind CHECK (editor_id IS NULL OR kind = 'editor');
        CREATE INDEX tokens_editor ON registry.tokens (editor_id) WHERE editor_id IS NOT NULL;
        CREATE TABLE registry.delegations (
            id uuid PRIMARY KEY,
            editor_id uuid NOT NULL REFERENCES registry.editors,
            habilitation_id uuid NOT NULL REFERENCES registry.habilitations,
            created_via text NOT NULL
                CHECK (created_via IN ('manual', 'datapass_auto', 'editor_delegation_request')),
            created_at timestamptz NOT NULL,
            revoked_at timestamptz
        );
        CREATE UNIQUE INDEX delegations_active ON registry.delegations (editor_id, habilitation_id)
            WHERE revoked_at IS NULL;
        CREATE TABLE registry.france_connect_clients (
            client_id text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
            habilitation_id uuid NOT NULL REFERENCES registry.habilitations,
            updated_at timestamptz NOT NULL
        );
        """,
    ),
    (
        3,
        """
        CREATE TABLE registry.invitations (
            id uuid PRIMARY KEY,
            editor_id uuid NOT NULL REFERENCES registry.editors,
            habilitation_id uuid NOT NULL REFERENCES registry.habilitations,
            contact_email text NOT NULL,
            dpo jsonb NOT NULL,
            secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
            invited_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            accepted_at timestamptz,
            delegation_id uuid REFERENCES registry.delegations,
            CHECK ((accepted_at IS NULL) = (delegation_id IS NULL))
        );
        CREATE INDEX invitations_editor ON registry.invitations (editor_id);
        """,
    ),
    (
        4,
        """
        ALTER TABLE registry.habilitations
            ADD COLUMN organisation_name text NOT NULL DEFAULT ''
                CHECK (length(organisation_name) <= 200);
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
