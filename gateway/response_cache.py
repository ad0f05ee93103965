"""The response cache of the DSS routes, as the real API keeps one (NEWER-ENDPOINTS §14).

As the real API:

- the cached routes are the CNAV family, every route under ``/v3/dss/`` (identité and
  FranceConnect, ARS included); an answer lives 24 h on quotient familial, 1 h on the others
  (`LIFETIMES`);
- only a provider's successful answer is kept, as the provider sent it, unmasked: after a hit
  the call path masks it with the caller's scopes (step 7), as after a provider call;
- a request whose ``Cache-Control`` is exactly ``no-cache`` neither reads nor writes the cache
  (``no-cache, no-store`` does not bypass it);
- every provider call that reaches the provider step answers ``x-response-cached`` (``true``
  from the cache, else ``false``) and ``x-cache-expires-in`` (the seconds left on the entry
  after a hit, else empty), on every route, as HTTP headers or gRPC metadata;
- a hit is served before the provider's parameter rules run (VALIDATION §1, step 12).

Where the mesh keeps more, because the answers are personal data (issue 23: "encrypted at
rest, keyed without identities, expiring, never shared across habilitations"):

- an entry serves its habilitation only: the habilitation is part of its key (the real API
  shares entries between every token; neither it nor the mesh keys on the recipient);
- the whole request is the key: on quotient familial by FranceConnect the real API leaves the
  month and year out of it, and serves a second month the first one's answer;
- nothing readable in Redis: the key is an HMAC-SHA256 of the route, the habilitation and the
  request (its deterministic protobuf bytes, the FranceConnect access token and scopes
  cleared: the certified identity stays); the value is AES-256-GCM, its key id beside it and
  its Redis key as associated data (a value moved under another key does not decrypt).

Keys (``RESPONSE_CACHE_KEYS``, `cache_keys`): ``<kid>:<32 bytes in base64url>``, comma
separated; the first one writes, all of them read. Each key gives by HKDF its digest key and
its encryption key, so a lookup asks Redis for the request's digest under every key, in one
pipelined round trip, and an entry written before a rotation is read until it expires. A key
may leave the list 24 h after it stopped being the first: no entry under it is left by then.
Without keys there is no cache, and every answer says ``x-response-cached: false``.

The cache never refuses a call: Redis unreachable, or an entry that does not decrypt (tampered,
written under a key no longer listed), is a miss, counted and logged by its kind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError, Message
from prometheus_client import Counter
from redis.exceptions import RedisError

from apiparticulier.common.v1 import identity_pb2
from contract.routes import Route

_LOG = structlog.get_logger(__name__)

CACHED_PATH_PREFIX = "/v3/dss/"
"""The real API caches the CNAV family's answers: the routes under this path."""
DEFAULT_LIFETIME_SECONDS = 3600
"""How long an answer is kept: 1 h on the DSS routes (AAH, ASF, RSA, PA, C2S, AEEH, EAJE, ARS)..."""
LIFETIMES: Mapping[str, int] = {"cnaf.quotient_familial": 24 * 3600}
"""... but 24 h on quotient familial (by the route's API label)."""

CACHE_CONTROL_KEY = "cache-control"
BYPASS = "no-cache"
"""The one ``Cache-Control`` value that bypasses the cache (the real API compares it whole)."""
CACHED_KEY = "x-response-cached"
EXPIRES_IN_KEY = "x-cache-expires-in"

KEY_BYTES = 32
_NONCE_BYTES = 12
_REDIS_PREFIX = "response-cache:"
_DIGEST_INFO = b"api-particulier-mesh response-cache digest"
_SEAL_INFO = b"api-particulier-mesh response-cache aes-256-gcm"

RESPONSE_CACHE = Counter(
    "gateway_response_cache_total",
    "Calls of the cached routes by what the response cache did: hit, miss (the provider called, "
    "its answer kept), bypass (Cache-Control: no-cache), unreadable (an entry that does not "
    "decrypt), unavailable (Redis failed: the provider called).",
    ["api", "outcome"],
)


class CacheKeyError(ValueError):
    """``RESPONSE_CACHE_KEYS`` is not a list of ``<kid>:<key>``; the message never repeats a key."""


@dataclass(frozen=True, slots=True)
class CacheKey:
    """One key of the cache: its id, and the two keys HKDF-SHA256 derives from its secret."""

    kid: str
    digest_key: bytes
    """Keys the HMAC that names an entry in Redis."""
    seal: AESGCM
    """Encrypts and authenticates the entry."""

    @classmethod
    def of(cls, kid: str, secret: bytes) -> CacheKey:
        """The key ``kid`` of a 32-byte secret.

        Raises:
            CacheKeyError: the id is empty, longer than 255 bytes or not ASCII, or the secret is no 32 bytes.
        """
        if not kid or len(kid) > 255 or not kid.isascii() or "," in kid or ":" in kid:
            raise CacheKeyError("RESPONSE_CACHE_KEYS: a key id is 1 to 255 ASCII characters, no ':' nor ','")
        if len(secret) != KEY_BYTES:
            raise CacheKeyError(f"RESPONSE_CACHE_KEYS: key {kid!r} is not {KEY_BYTES} bytes")
        return cls(kid, _derive(secret, _DIGEST_INFO), AESGCM(_derive(secret, _SEAL_INFO)))

    def redis_key(self, route: Route, habilitation: str, request: bytes) -> str:
        """The entry's Redis key: the HMAC of route, habilitation and request, nothing readable."""
        mac = hmac.new(self.digest_key, digestmod=hashlib.sha256)
        for part in (route.path.encode(), habilitation.encode(), request):
            # Length-prefixed: no two different triples give the same bytes.
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        # Hash-tagged on the whole key: one slot per entry on a Redis Cluster.
        return f"{_REDIS_PREFIX}{{{mac.hexdigest()}}}"

    def sealed(self, redis_key: str, answer: bytes) -> bytes:
        """The stored value: key id length, key id, nonce, AES-GCM of the answer bound to ``redis_key``."""
        nonce = os.urandom(_NONCE_BYTES)
        kid = self.kid.encode()
        return bytes([len(kid)]) + kid + nonce + self.seal.encrypt(nonce, answer, redis_key.encode())


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(secret)


def cache_keys(text: str) -> tuple[CacheKey, ...]:
    """Read ``RESPONSE_CACHE_KEYS``: ``<kid>:<base64url of 32 bytes>[,<kid>:<key>...]``, the writer first.

    Returns:
        The keys in their order; none for an empty text (no cache).

    Raises:
        CacheKeyError: an item is not ``<kid>:<key>``, a key is not 32 bytes of base64url, or a kid repeats.
    """
    keys: list[CacheKey] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, separator, encoded = item.partition(":")
        if not separator:
            raise CacheKeyError("RESPONSE_CACHE_KEYS: each key is <kid>:<base64url of 32 bytes>")
        try:
            secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise CacheKeyError(f"RESPONSE_CACHE_KEYS: key {kid!r} is not base64url") from None
        keys.append(CacheKey.of(kid, secret))
    if len({key.kid for key in keys}) != len(keys):
        raise CacheKeyError("RESPONSE_CACHE_KEYS: a key id is listed twice")
    return tuple(keys)


def lifetime_of(route: Route) -> int | None:
    """Seconds an answer of ``route`` is kept; None for a route the real API does not cache."""
    if not any(path.startswith(CACHED_PATH_PREFIX) for path in route.http_paths):
        return None
    return LIFETIMES.get(route.api_label, DEFAULT_LIFETIME_SECONDS)


def request_key(request: Message) -> bytes:
    """The request as the cache's key reads it: its deterministic bytes, no FranceConnect token nor scopes.

    The FranceConnect access token changes at every session of one citizen, and its scopes
    decide the masking, not the answer: the certified identity the gateway wrote stays.
    """
    copy = type(request)()
    copy.CopyFrom(request)
    for descriptor, value in copy.ListFields():
        if descriptor.message_type is identity_pb2.FranceConnectSubject.DESCRIPTOR:
            value.ClearField("access_token")
            value.ClearField("scopes")
    return copy.SerializeToString(deterministic=True)


class ResponseCache:
    """The DSS routes' answers in Redis, encrypted (see the module's docstring).

    Args:
        client: The gateway's Redis; None: no cache.
        keys: The keys, the writer first (`cache_keys`); none: no cache.
    """

    def __init__(self, client: redis.asyncio.Redis | None, keys: Sequence[CacheKey]) -> None:
        self._redis = client if keys else None
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in keys}

    @classmethod
    def off(cls) -> ResponseCache:
        """No cache: every call goes to the provider and says so."""
        return cls(None, ())

    async def through(
        self,
        route: Route,
        *,
        habilitation: str,
        metadata: Sequence[tuple[str, str | bytes]],
        request: Message,
        fetch: Callable[[], Awaitable[bytes]],
        response_metadata: list[tuple[str, str]],
    ) -> bytes:
        """The answer of a provider call: the cached one, or ``fetch``'s, kept when the route is cached.

        Args:
            route: The provider route called.
            habilitation: The habilitation the call counts against (part of the key).
            metadata: The caller's metadata, where ``cache-control`` may ask to bypass the cache.
            request: The request, its subject resolved.
            fetch: Calls the provider; its errors pass through and nothing is kept.
            response_metadata: Where ``x-response-cached`` and ``x-cache-expires-in`` are added.

        Returns:
            The provider's answer as it sent it (unmasked).

        Raises:
            ApiError: ``fetch``'s.
        """
        client, lifetime = self._redis, lifetime_of(route)
        if client is None or lifetime is None:
            return await self._fetched(fetch, response_metadata)
        if any(key == CACHE_CONTROL_KEY and value == BYPASS for key, value in metadata):
            RESPONSE_CACHE.labels(route.api_label, "bypass").inc()
            return await self._fetched(fetch, response_metadata)
        body = request_key(request)
        names = [key.redis_key(route, habilitation, body) for key in self._keys]
        cached = await self._read(client, route, names)
        if cached is not None:
            answer, seconds_left = cached
            response_metadata += [(CACHED_KEY, "true"), (EXPIRES_IN_KEY, str(seconds_left))]
            RESPONSE_CACHE.labels(route.api_label, "hit").inc()
            return answer
        answer = await self._fetched(fetch, response_metadata)
        await self._write(client, route, names[0], answer, lifetime)
        return answer

    @staticmethod
    async def _fetched(
        fetch: Callable[[], Awaitable[bytes]], response_metadata: list[tuple[str, str]]
    ) -> bytes:
        response_metadata += [(CACHED_KEY, "false"), (EXPIRES_IN_KEY, "")]
        return await fetch()

    async def _read(
        self, client: redis.asyncio.Redis, route: Route, names: Sequence[str]
    ) -> tuple[bytes, int] | None:
        """The entry under one of ``names`` (one per key) and its seconds left; None: a miss."""
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.get(name)
            pipe.ttl(name)
        try:
            replies = await pipe.execute()
        except RedisError as exc:
            RESPONSE_CACHE.labels(route.api_label, "unavailable").inc()
            _LOG.warning("response_cache_unavailable", error_type=type(exc).__name__)
            return None
        outcome = "miss"
        for name, value, ttl in zip(names, replies[::2], replies[1::2], strict=True):
            if value is None:
                continue
            answer = self._opened(name, value)
            if answer is None:
                outcome = "unreadable"
                _LOG.warning("response_cache_unreadable", api=route.api_label)
                continue
            # A TTL of -2 (gone since the GET) or -1 (none) is no entry to trust.
            if ttl > 0:
                return answer, ttl
        RESPONSE_CACHE.labels(route.api_label, outcome).inc()
        return None

    def _opened(self, name: str, value: bytes) -> bytes | None:
        """The answer sealed in ``value``; None when it does not open under its key id and ``name``."""
        if not value:
            return None
        end = 1 + value[0]
        key = self._by_kid.get(value[1:end].decode("ascii", "replace"))
        nonce, sealed = value[end : end + _NONCE_BYTES], value[end + _NONCE_BYTES :]
        if key is None or len(nonce) != _NONCE_BYTES:
            return None
        try:
            return key.seal.decrypt(nonce, sealed, name.encode())
        except InvalidTag:
            return None

    async def _write(
        self, client: redis.asyncio.Redis, route: Route, name: str, answer: bytes, lifetime: int
    ) -> None:
        """Keep a successful answer ``lifetime`` seconds under the writing key; a readable answer only."""
        try:
            route.response_class.FromString(answer)
        except DecodeError:
            return  # the call path refuses it (PP003): never served again from here
        try:
            await client.set(name, self._keys[0].sealed(name, answer), ex=lifetime)
        except RedisError as exc:
            _LOG.warning("response_cache_unavailable", error_type=type(exc).__name__)
