"""FranceConnect clients and the habilitations their calls count against.

On the FranceConnect routes the citizen's FranceConnect access token alone
authorizes a call, as in the real API. The public body's service signed the
citizen in with its own FranceConnect client, to which FranceConnect issued the
access token (the ``aud`` of its introspection).

With a registry (``REGISTRY_DATABASE_URL``), an operator maps that client to its
habilitation (``python -m gateway.admin france-connect-client map <client_id>
--habilitation ID``, the admin API's ``MapFranceConnectClient``): the call takes the
habilitation's scopes, SIRET and limits from the snapshot (no I/O), and counts
against its counters under a token id of the client's own (`client_token_id`). Each
FranceConnect access token also has a bucket of its own beside the habilitation's
(`gateway.call_path`, step 4): one citizen's calls never spend another's.

Without a registry, or for a client the registry does not map, the older link holds:
an operator links the client to a token issued by the admin CLI
(``python -m gateway.admin link-france-connect <client_id> <jti>``); the call is
then authorized, rate limited, revoked, journalled and counted as a call of that
token, with its scopes, SIRET and rate limit.

Redis key, hash-tagged on the client id:

- ``france_connect_client:{<client_id>}``: hash with the linked token's ``jti``,
  ``label``, ``siret``, ``scopes`` (JSON list), ``exp`` and ``rate_limit`` ("" for
  the default), copied from the token registry when linked (a token's claims never
  change); it expires with the token.

The gateway keeps a link it read for ``FRANCE_CONNECT_LINK_CACHE_SECONDS``: an
unlink takes that long to reach every replica, while a revocation of the token
holds at once, since the rate limiter reads it for the jti on every call.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import redis
import redis.asyncio
from redis.exceptions import RedisError

from gateway.auth import Token
from gateway.registry.model import CLIENT_ID_SHAPE
from gateway.registry.snapshot import RegistrySnapshot, Rights
from gateway.tokens import TokenRecord
from runtime.errors import ApiError, api_error, expired_token, revoked_token, store_unavailable

_CACHE_MAX_CLIENTS = 10_000
"""Links kept at most; past it the cache starts again empty (FranceConnect clients are few)."""
_NEVER = 253402300799
"""9999-12-31T23:59:59Z: a mapping has no expiry of its own (its habilitation's status holds)."""
_CLIENT_TOKENS = uuid.UUID("5d1f4a4e-7c53-4d5e-9a57-0f1d2c3b4a59")
"""The namespace of the token ids of FranceConnect clients mapped in the registry."""


def client_token_id(client_id: str) -> str:
    """The token id a mapped client's calls are journalled and counted under: a UUID of its own, stable."""
    return str(uuid.uuid5(_CLIENT_TOKENS, client_id))


def client_key(client_id: str) -> str:
    """Key of the link of a FranceConnect client."""
    return f"france_connect_client:{{{client_id}}}"


def unlinked_client() -> ApiError:
    """The FranceConnect token is valid but its client holds no habilitation (00101)."""
    return api_error(
        "00101",
        detail="Le client FranceConnect auquel ce jeton a été délivré n'est lié à aucune habilitation "
        "API Particulier",
    )


def link(client: redis.Redis, client_id: str, record: TokenRecord) -> None:
    """Link a FranceConnect client to a registered token; replaces any earlier link of the client.

    Raises:
        ValueError: the client id is not of `CLIENT_ID_SHAPE`, or the token's entry is unreadable.
    """
    if not CLIENT_ID_SHAPE.fullmatch(client_id):
        raise ValueError(f"{client_id!r} is not a FranceConnect client id")
    if record.exp is None:
        raise ValueError(f"the registry entry of token {record.jti} is unreadable: issue a new token to link")
    key = client_key(client_id)
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(
        key,
        mapping={
            "jti": record.jti,
            "label": record.label,
            "siret": record.siret,
            "scopes": json.dumps(list(record.scopes)),
            "exp": record.exp,
            "rate_limit": "" if record.rate_limit is None else record.rate_limit,
        },
    )
    pipe.expireat(key, record.exp)  # a link lasts as long as its token
    pipe.execute()


def unlink(client: redis.Redis, client_id: str) -> bool:
    """Remove the link of a FranceConnect client; False when it had none."""
    return bool(client.delete(client_key(client_id)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _token(fields: dict[bytes | str, bytes | str]) -> Token:
    text = {_text(key): _text(value) for key, value in fields.items()}
    rate_limit = text.get("rate_limit", "")
    return Token(
        jti=text["jti"],
        habilitation=text["label"],
        siret=text["siret"],
        scopes=frozenset(json.loads(text["scopes"])),
        expires_at=int(text["exp"]),
        rate_limit_per_second=int(rate_limit) if rate_limit else None,
    )


class FranceConnectClients:
    """The habilitation linked to each FranceConnect client, read from Redis and kept a while.

    Args:
        client: The gateway's Redis.
        cache_seconds: How long a link read is kept (0: read on every call).
        clock: Monotonic clock, for the cache.
        wall_clock: Epoch seconds, against which the token's expiry is checked.
        registry: The registry's snapshot, whose mappings come first; None: the links alone.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        registry: RegistrySnapshot | None = None,
    ) -> None:
        self._client = client
        self._registry = registry
        # By client id: the token of a mapping, as last made from the rights it came from.
        self._mapped: dict[str, Token] = {}
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[float, Token | None]] = {}

    async def token_of(self, client_id: str) -> Token:
        """The token whose habilitation a FranceConnect client's calls count against.

        Raises:
            ApiError: 00101 when the client is mapped or linked to none, 00105 when its
                habilitation is no longer validated, 00103 when its linked token has expired,
                00503 when Redis cannot be read.
        """
        if self._registry is not None:
            rights = self._registry.france_connect_client(client_id)
            if rights is not None:
                return self._mapped_token(client_id, rights)
        now = self._clock()
        cached = self._cache.get(client_id)
        if cached is not None and cached[0] > now:
            token = cached[1]
        else:
            token = await self._read(client_id)
            if self._cache_seconds > 0:
                if len(self._cache) >= _CACHE_MAX_CLIENTS:
                    self._cache.clear()
                self._cache[client_id] = (now + self._cache_seconds, token)
        if token is None:
            raise unlinked_client()
        if token.expires_at <= self._wall_clock():
            raise expired_token()
        return token

    def _mapped_token(self, client_id: str, rights: Rights) -> Token:
        if not rights.validated:
            raise revoked_token()
        token = self._mapped.get(client_id)
        if token is None or token.rights is not rights:
            token = Token.under(rights, jti=client_token_id(client_id), expires_at=_NEVER)
            if len(self._mapped) >= _CACHE_MAX_CLIENTS:
                self._mapped.clear()
            self._mapped[client_id] = token
        return token

    async def _read(self, client_id: str) -> Token | None:
        if not CLIENT_ID_SHAPE.fullmatch(client_id):
            return None
        try:
            fields = await self._client.hgetall(client_key(client_id))
        except (RedisError, OSError, TimeoutError):
            raise store_unavailable() from None
        if not fields:
            return None
        try:
            return _token(fields)
        except (KeyError, ValueError):
            return None
