"""The admin API's behaviour, shared by its gRPC service and its REST front.

An **operator** authenticates with ``authorization: Bearer <secret>``; the operators
file (``ADMIN_OPERATORS_FILE``) holds each one's name, role and the SHA-256 of the
secret, never the secret itself::

    {"operators": [{"name": "alice", "role": "admin", "secret_sha256": "<64 hex>"}]}

Roles: ``viewer`` reads (habilitations, tokens, the audit trail); ``admin`` also
writes. The operator's name is the audit trail's actor. ``console`` is the web console's
own credential: it may act only for a habilitation holder or editor it names, on theirs alone
(`gateway.admin_api.holders`), and every operator action refuses it.

Tokens are signed here (ES256, the ``TOKEN_SIGNING_KID`` key of ``KEYS_DIR``) and
their JWT is shown once, when issued: the registry keeps only their record. The JWT
names the token (``jti``), its habilitation or editor (``sub``), its kind (``kind``) and
its environment (``env``);
its ``exp`` is only an outer bound (`gateway.bounds.TOKEN_LIFETIME_MAX_SECONDS` after
issue), since the registry's expiry is the one that counts and a prolongation keeps the
JWT. It also carries the holder's ``siret`` and the habilitation's ``scopes`` at issue
(an editor token: its editor's SIRET, no scopes), which a gateway that reads the
registry ignores.

A revocation (or a ban or rotation that ends a token now) is also written to the
gateways' Redis (`gateway.rate_script.revoked_key`, the ``revoked`` set, the
``revocations`` channel), read with the rate decision of every call: it holds from the
next call on every gateway, whatever their snapshot's age. An editor token's calls count
against the habilitations delegated to its editor: its revocation is written under each
of them. A delegation's revocation (its own, or its habilitation's) is written too
(`gateway.rate_script.revoked_delegation_key`): the editor's calls through it are refused (00213)
from the next call as well. A habilitation revoked or archived ends its tokens: written the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import grpc
import jwt
import psycopg
import redis.asyncio
import structlog
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.admin_api import maintenance
from gateway.bounds import TOKEN_LIFETIME_MAX_SECONDS
from gateway.rate_script import DELEGATION_REVOCATION_KEEP_SECONDS, revoked_delegation_key, revoked_key
from gateway.registry import audit, notices, store
from gateway.registry.model import (
    Delegation,
    Editor,
    Environment,
    Habilitation,
    InvalidInputError,
    TokenRecord,
    TokenState,
)
from gateway.revocations import REVOCATIONS_CHANNEL, REVOKED_SET

_LOG = structlog.get_logger(__name__)
Result = TypeVar("Result")
_SCHEME = "bearer "


class Role(StrEnum):
    """What an operator may do."""

    VIEWER = "viewer"
    """Read habilitations, tokens and the audit trail."""
    ADMIN = "admin"
    """Everything a viewer may, and every write."""
    CONSOLE = "console"
    """Only for a named holder, on their habilitations and editors (`gateway.admin_api.holders`)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """An authenticated operator."""

    name: str
    role: Role
    acting_for: str = ""
    """The holder a ``console`` operator acts for (their e-mail, normalised); "" for an operator."""

    @property
    def actor(self) -> str:
        """The audit trail's actor: the operator, or the holder and the console acting for them."""
        return f"{self.acting_for} via {self.name}" if self.acting_for else self.name


class UnauthenticatedError(Exception):
    """No operator credential, or one that matches no operator."""


class ForbiddenError(Exception):
    """The operator's role does not allow the action."""


class UnavailableError(Exception):
    """The registry's database cannot be reached; nothing was changed."""


class Operators:
    """The operators of the admin API, from the operators file."""

    def __init__(self, entries: dict[str, tuple[str, Role]]) -> None:
        """Args: entries: the SHA-256 of each secret (hex) → (name, role)."""
        self._by_digest = {bytes.fromhex(digest): value for digest, value in entries.items()}

    @classmethod
    def from_file(cls, path: Path) -> Operators:
        """Read an operators file.

        Raises:
            ValueError: the file is not as documented (the message says where).
        """
        document = json.loads(path.read_text())
        entries: dict[str, tuple[str, Role]] = {}
        for index, entry in enumerate(document.get("operators", [])):
            name, role, digest = entry.get("name"), entry.get("role"), entry.get("secret_sha256")
            if not isinstance(name, str) or not name or role not in set(Role):
                raise ValueError(f"operator {index}: a name and a role ({', '.join(Role)}) are required")
            if not isinstance(digest, str) or len(digest) != 64:
                raise ValueError(f"operator {name!r}: secret_sha256 must be 64 hexadecimal digits")
            entries[digest.lower()] = (name, Role(role))
        return cls(entries)

    def authenticate(self, header: str | None) -> Operator:
        """The operator of an ``authorization`` value.

        Raises:
            UnauthenticatedError: none, not Bearer, or no operator has this secret.
        """
        if header is None or header[: len(_SCHEME)].lower() != _SCHEME:
            raise UnauthenticatedError("an operator credential is required: authorization: Bearer <secret>")
        digest = hashlib.sha256(header[len(_SCHEME) :].encode()).digest()
        for known, (name, role) in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return Operator(name, role)
        raise UnauthenticatedError("unknown operator credential")


REFUSALS: dict[type[Exception], tuple[grpc.StatusCode, int]] = {
    UnauthenticatedError: (grpc.StatusCode.UNAUTHENTICATED, 401),
    ForbiddenError: (grpc.StatusCode.PERMISSION_DENIED, 403),
    InvalidInputError: (grpc.StatusCode.INVALID_ARGUMENT, 400),
    store.UnknownError: (grpc.StatusCode.NOT_FOUND, 404),
    store.ConflictError: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    store.DeniedError: (grpc.StatusCode.PERMISSION_DENIED, 403),
    UnavailableError: (grpc.StatusCode.UNAVAILABLE, 503),
    maintenance.GatewaysUnreachableError: (grpc.StatusCode.UNAVAILABLE, 503),
}
"""Each refusal of an action, and its gRPC status and HTTP status (the two adapters read it)."""
REFUSED = tuple(REFUSALS)


def refusal_status(error: Exception) -> tuple[grpc.StatusCode, int]:
    """The gRPC and HTTP statuses of a refusal (one of `REFUSED`)."""
    return next(status for kind, status in REFUSALS.items() if isinstance(error, kind))


def secret_digest(secret: str) -> str:
    """The ``secret_sha256`` of an operator's secret, as the operators file holds it."""
    return hashlib.sha256(secret.encode()).hexdigest()


class OwnerFilter(TypedDict):
    """Whose records a listing of delegations or invitations reads, as both fronts read it."""

    editor_id: str | None
    """An editor's (None: any editor's)."""
    habilitation_id: str | None
    """A habilitation's (None: any habilitation's)."""


class TokenTerms(TypedDict):
    """What both fronts read of a new token's request, habilitation's or editor's, defaults applied."""

    days: int
    """Its lifetime (`gateway.registry.model.TOKEN_DEFAULT_DAYS` when the request gives none)."""
    environment: Environment
    """Production when the request names none."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just recorded, and its JWT, shown this once."""

    record: TokenRecord
    jwt: str


class TokenSigner:
    """Signs the JWT of a token record (ES256)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, kid: str, issuer: str, audience: str) -> None:
        """Sign with ``key`` under ``kid``, for ``issuer`` and ``audience``."""
        self._key, self._kid, self._issuer, self._audience = key, kid, issuer, audience

    def sign(self, token: TokenRecord, holder: Habilitation | Editor) -> str:
        """The JWT of ``token``, of ``holder`` (see the module's docstring for its claims)."""
        issued = int(token.issued_at.timestamp())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "jti": token.id,
            "sub": holder.id,
            "env": token.environment.value,
            "kind": token.kind.value,
            "siret": holder.siret,
            "scopes": list(holder.scopes) if isinstance(holder, Habilitation) else [],
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_LIFETIME_MAX_SECONDS,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid, "typ": "JWT"})


class ServiceCore:
    """What every action of the admin API shares: its connection, rights, JWTs and revocations.

    The registry's connection (one action at a time), the operator's rights, the JWT of a token
    issued and the revocations written to the gateways' Redis. The actions, by concern:
    `gateway.admin_api.habilitations`, `gateway.admin_api.editors`, `gateway.admin_api.oversight`;
    all of them together: `gateway.admin_api.actions.AdminService`.
    """

    def __init__(
        self,
        database_url: str,
        signer: TokenSigner,
        redis_client: redis.asyncio.Redis,
        *,
        timeout_seconds: float,
        mailer: notices.Mailer | None = None,
    ) -> None:
        """Serve on ``database_url`` (one connection, opened on first use and again after a failure).

        ``mailer``: where invitations are sent (none: the operator hands over their secret).
        """
        self._mailer = mailer
        self._database_url = database_url
        self._signer = signer
        self._redis = redis_client
        self._timeout = timeout_seconds
        self._conn: psycopg.AsyncConnection[Any] | None = None
        # One action at a time on the one connection: admin actions are few.
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the database connection."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The registry's connection, one action at a time.

        Raises:
            UnavailableError: the database cannot be reached (or did not answer in time).
        """
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout):
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(
                            self._database_url, autocommit=True
                        )
                    yield self._conn
            except (psycopg.OperationalError, OSError, TimeoutError) as error:
                if self._conn is not None:
                    await self._conn.close()
                    self._conn = None
                _LOG.warning("registry_unreachable", error_type=type(error).__name__)
                raise UnavailableError(
                    "the registry's database cannot be reached; nothing was changed"
                ) from None

    async def _run(
        self,
        operator: Operator,
        role: Role,
        action: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Result]],
    ) -> Result:
        if operator.role is Role.CONSOLE:
            raise ForbiddenError(f"operator {operator.name!r} (console) acts only for a holder, on theirs")
        if role is Role.ADMIN and operator.role is not Role.ADMIN:
            raise ForbiddenError(f"operator {operator.name!r} ({operator.role.value}) may not write")
        async with self.connection() as conn:
            result = await action(conn)
            if role is Role.ADMIN:
                await log_audit_head(conn, operator)
            return result

    async def _issue(
        self,
        operator: Operator,
        issue: Callable[[psycopg.AsyncConnection[Any]], Awaitable[TokenRecord]],
    ) -> IssuedToken:
        """The token ``issue`` records, as ``operator`` (an admin), with its JWT."""

        async def issued(conn: psycopg.AsyncConnection[Any]) -> IssuedToken:
            return await self.signed(conn, await issue(conn))

        return await self._run(operator, Role.ADMIN, issued)

    async def signed(self, conn: psycopg.AsyncConnection[Any], record: TokenRecord) -> IssuedToken:
        """``record`` with its JWT, signed for its habilitation or editor."""
        holder: Habilitation | Editor
        if record.editor_id is not None:
            holder = await store.get_editor(conn, record.editor_id)
        else:
            holder = await store.get_habilitation(conn, record.holder_id)
        return IssuedToken(record, self._signer.sign(record, holder))

    async def push_delegation_revocations(self, delegations: list[Delegation]) -> None:
        """Write revoked delegations to the gateways' Redis: their calls refused from the next one."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for delegation in delegations:
                key = revoked_delegation_key(delegation.id, delegation.habilitation_id)
                pipe.set(key, "1", ex=DELEGATION_REVOCATION_KEEP_SECONDS)
            await pipe.execute()
        except (redis.RedisError, OSError) as error:
            # Recorded in the registry all the same: the gateways' snapshots refuse them within seconds.
            _LOG.warning("delegation_revocation_not_pushed", error_type=type(error).__name__)

    async def push_revocation(self, token: TokenRecord) -> None:
        """Write a token that stopped working now to the gateways' Redis (a later end: the snapshots)."""
        now = dt.datetime.now(dt.UTC)
        if token.state(now) is not TokenState.REVOKED or token.revoked_at is None:
            return
        until = int(max(token.expires_at, now + dt.timedelta(minutes=1)).timestamp())
        # None: the token alone, the rate key of a gateway without registry (it knows no habilitation).
        rate_keys: list[str | None] = [None]
        if token.habilitation_id is not None:
            rate_keys.append(token.habilitation_id)
        if token.editor_id is not None:
            # Its calls count under each habilitation delegated to its editor (gateway.delegations).
            async with self.connection() as conn:
                delegations = await store.list_delegations(conn, editor_id=token.editor_id)
            rate_keys += [d.habilitation_id for d in delegations if d.revoked_at is None]
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key in rate_keys:
                pipe.set(revoked_key(token.id, key), str(int(token.revoked_at.timestamp())), exat=until)
            pipe.sadd(REVOKED_SET, token.id)
            await pipe.execute()
            await self._redis.publish(REVOCATIONS_CHANNEL, token.id)
        except (redis.RedisError, OSError) as error:
            # Recorded in the registry all the same: the gateways' snapshots refuse it within seconds.
            _LOG.warning("revocation_not_pushed", error_type=type(error).__name__)


async def log_audit_head(conn: psycopg.AsyncConnection[Any], operator: Operator) -> None:
    """Log the audit trail's head after a write: the head leaves the database (`gateway.registry.audit`).

    The log names the operator (the console for a holder: the audit trail names the holder).
    """
    seq, digest = await audit.head(conn)
    _LOG.info("registry_audit_head", operator=operator.name, seq=seq, head=digest.hex())
