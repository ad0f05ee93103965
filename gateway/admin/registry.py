"""The token registry in Redis: what the admin CLI writes and the gateways read.

Keys (the hash tag ``{<jti>}`` keeps a token's keys in one Cluster slot):

- ``token:{<jti>}``: hash with ``label``, ``siret``, ``scopes`` (JSON list), ``iat``,
  ``exp`` (Unix seconds), ``rate_limit`` (requests per second, "" for the default)
  and, once revoked, ``revoked_at``. Kept until 62 days after ``exp`` (the
  statistics' span).
- ``tokens``: set of every registered jti.

An entry the CLI cannot read (written by hand, or by a version that stored an
out-of-range expiry) is listed as ``unreadable``, never stops the listing, and can
still be revoked.
- ``revoked:{<jti>}``: exists while the token is revoked, until its ``exp``; read by
  the rate-limit script on every call, so revocation holds on every replica at once.
- ``revoked``: set of revoked jtis, which degraded gateways copy locally; each
  revocation is also published on the channel ``revocations``, so that their copies
  take it at once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from gateway.bounds import TOKEN_LIFETIME_MAX_SECONDS, is_numeric_date, is_rate_limit
from gateway.rate_script import revoked_key
from gateway.revocations import REVOCATIONS_CHANNEL, REVOKED_SET
from gateway.tokens import TOKENS_SET, TokenRecord, token_key
from gateway.usage import RETENTION_SECONDS

_KEEP_AFTER_EXPIRY_SECONDS = RETENTION_SECONDS


class UnknownTokenError(LookupError):
    """No token with this jti is registered."""


def register(client: redis.Redis, claims: dict[str, Any]) -> None:
    """Record an issued token's claims (never the token itself)."""
    jti = str(claims["jti"])
    key = token_key(jti)
    rate_limit = claims.get("rate_limit")
    pipe = client.pipeline(transaction=False)
    pipe.hset(
        key,
        mapping={
            "label": str(claims["sub"]),
            "siret": str(claims["siret"]),
            "scopes": json.dumps(list(claims["scopes"])),
            "iat": int(claims["iat"]),
            "exp": int(claims["exp"]),
            "rate_limit": "" if rate_limit is None else int(rate_limit),
        },
    )
    pipe.expireat(key, int(claims["exp"]) + _KEEP_AFTER_EXPIRY_SECONDS)
    pipe.sadd(TOKENS_SET, jti)
    pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _record(jti: str, fields: dict[bytes | str, bytes | str], revoked: bool) -> TokenRecord:
    text = {_text(k): _text(v) for k, v in fields.items()}
    unreadable = TokenRecord(jti, text.get("label", ""), text.get("siret", ""), (), None, None, None, revoked)
    try:
        scopes = json.loads(text.get("scopes", "[]"))
        iat, exp = int(text.get("iat", "")), int(text.get("exp", ""))
        rate_limit = int(text["rate_limit"]) if text.get("rate_limit") else None
    except ValueError:
        return unreadable
    if (
        not isinstance(scopes, list)
        or not all(isinstance(scope, str) for scope in scopes)
        or not (is_numeric_date(iat) and is_numeric_date(exp))
        or (rate_limit is not None and not is_rate_limit(rate_limit))
    ):
        return unreadable
    return TokenRecord(
        jti=jti,
        label=text.get("label", ""),
        siret=text.get("siret", ""),
        scopes=tuple(scopes),
        iat=iat,
        exp=exp,
        rate_limit=rate_limit,
        revoked=revoked,
    )


def list_tokens(client: redis.Redis) -> list[TokenRecord]:
    """Every registered token, oldest first; entries gone from Redis are dropped from the set."""
    jtis = sorted(_text(m) for m in client.smembers(TOKENS_SET))
    if not jtis:
        return []
    pipe = client.pipeline(transaction=False)
    for jti in jtis:
        pipe.hgetall(token_key(jti))
        pipe.exists(revoked_key(jti))
    replies = pipe.execute()
    records, gone = [], []
    for index, jti in enumerate(jtis):
        fields, revoked = replies[2 * index], replies[2 * index + 1]
        if not fields:
            gone.append(jti)
            continue
        records.append(_record(jti, fields, bool(revoked)))
    if gone:
        client.srem(TOKENS_SET, *gone)
    return sorted(records, key=lambda r: (r.iat or 0, r.jti))


def record_of(client: redis.Redis, jti: str) -> TokenRecord:
    """The registered token of a jti.

    Raises:
        UnknownTokenError: no such jti is registered.
    """
    fields = client.hgetall(token_key(jti))
    if not fields:
        raise UnknownTokenError(jti)
    return _record(jti, fields, revoked=bool(client.exists(revoked_key(jti))))


def revoke(client: redis.Redis, jti: str, now: float | None = None) -> TokenRecord:
    """Revoke a registered token on every gateway replica.

    Returns:
        The token's record, as revoked.

    Raises:
        UnknownTokenError: no such jti is registered.
    """
    now = time.time() if now is None else now
    fields = client.hgetall(token_key(jti))
    if not fields:
        raise UnknownTokenError(jti)
    record = _record(jti, fields, revoked=True)
    # The key the gateways read lives as long as the token could be used; a token
    # already expired keeps it for a minute, which changes nothing. An unreadable
    # entry's token may live as long as any token may.
    exp = int(now) + TOKEN_LIFETIME_MAX_SECONDS if record.exp is None else record.exp
    until = max(exp, int(now) + 60)
    pipe = client.pipeline(transaction=False)
    pipe.set(revoked_key(jti), str(int(now)), exat=until)
    pipe.sadd(REVOKED_SET, jti)
    pipe.hset(token_key(jti), "revoked_at", int(now))
    pipe.execute()
    # After the writes: a gateway told of it finds the revocation stored.
    client.publish(REVOCATIONS_CHANNEL, jti)
    _prune_revoked_set(client)
    return record


def _prune_revoked_set(client: redis.Redis) -> None:
    """Drop from ``revoked`` the jtis whose revocation key expired with the token."""
    members = sorted(_text(m) for m in client.smembers(REVOKED_SET))
    pipe = client.pipeline(transaction=False)
    for jti in members:
        pipe.exists(revoked_key(jti))
    expired = [jti for jti, alive in zip(members, pipe.execute(), strict=True) if not alive]
    if expired:
        client.srem(REVOKED_SET, *expired)
