"""FranceConnect clients and the habilitations their calls count against.

On the FranceConnect routes the citizen's FranceConnect access token alone
authorizes a call, as in the real API. The public body's service signed the
citizen in with its own FranceConnect client, to which FranceConnect issued the
access token (the ``aud`` of its introspection). An operator links that client to
one habilitation of the body, a token issued by the admin CLI
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
import re
import time
from collections.abc import Callable

import redis
import redis.asyncio
from redis.exceptions import RedisError

from gateway.auth import Token
from gateway.tokens import TokenRecord
from runtime.errors import ApiError, api_error, expired_token, store_unavailable

_CACHE_MAX_CLIENTS = 10_000
"""Links kept at most; past it the cache starts again empty (FranceConnect clients are few)."""
CLIENT_ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What a FranceConnect client id may be: FranceConnect's are hexadecimal; nothing here may break a key."""


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
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[float, Token | None]] = {}

    async def token_of(self, client_id: str) -> Token:
        """The token whose habilitation a FranceConnect client's calls count against.

        Raises:
            ApiError: 00101 when the client is linked to none, 00103 when its token has
                expired, 00503 when Redis cannot be read.
        """
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
