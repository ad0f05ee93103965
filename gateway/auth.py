"""Verification of the callers' tokens: signed JWTs, keys selected by ``kid``.

A token is ``authorization: Bearer <jwt>`` in the call's metadata. It is accepted
only when:

- it is the only ``authorization`` entry, with the exact ``Bearer`` scheme, and
  no longer than ``TOKEN_MAX_BYTES``;
- its header names a known ``kid`` and the algorithm bound to that key (ES256
  for EC P-256 keys, EdDSA for Ed25519 keys): the algorithm is pinned by the
  key, never taken from the token, so ``none`` or HMAC with a public key fail;
- its signature verifies, and its claims are all there and well typed: ``iss``
  (equal to ``TOKEN_ISSUER``), ``aud`` (containing ``TOKEN_AUDIENCE``), ``exp``,
  ``nbf`` and ``iat`` (with ``TOKEN_LEEWAY_SECONDS`` of clock skew, ``iat`` not
  in the future), ``jti`` (a UUID), ``sub`` (the habilitation), ``siret``,
  ``scopes`` (strings), and optionally ``rate_limit`` (requests per second) and ``env``
  (``production``, the default, or ``sandbox``: a token of the other environment than
  ``GATEWAY_ENVIRONMENT`` is refused 00108 on the sandbox, 00109 in production);
- every number in it is within `gateway.bounds`: dates from 0 to the year 9999,
  a lifetime (``exp`` minus ``iat``) of ``TOKEN_LIFETIME_MAX_DAYS`` at most, a
  rate limit from 1 to ``RATE_LIMIT_MAX_PER_SECOND``. A token outside them is
  invalid (00101), whoever signed it, so no value reaches the rate limiter or a
  date conversion that would fail on it.

Keys are ``<kid>.public.pem`` files in ``KEYS_DIR`` or the keys of a JWKS file
(``JWKS_FILE``). An unknown ``kid`` reloads them, at most once every
``KEYS_RELOAD_MIN_SECONDS``, so that a new key can be rolled out without a
restart and a storm of made-up kids costs nothing.

Verified tokens are cached by their text in a bounded LRU, and a cached token is
never used past its ``exp``. Revocation is not decided here: it
is read from Redis with the rate limit, in one round trip.

With a registry (``REGISTRY_DATABASE_URL``, `gateway.registry.snapshot`), the JWT is only
the key: its ``jti`` finds the token's record in the snapshot, whose habilitation gives
the scopes, limits and holder at the time of the call (its claims of them are ignored),
whose expiry replaces the JWT's (a prolongation keeps the JWT), and whose end (a ban
from a date, a rotation's grace, a habilitation no longer validated) refuses it 00105.
A token the registry lacks is refused 00101; before the registry was ever loaded, 00503.
An editor token resolves to no scopes and its editor's delegations (`Token.grants`): the
recipient picks one later in the call (`gateway.delegations`).
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.bounds import TOKEN_LIFETIME_MAX_SECONDS, is_numeric_date, is_rate_limit
from gateway.registry.model import Environment
from gateway.registry.snapshot import EditorGrants, RegistrySnapshot, Rights, TokenEntry
from gateway.settings import TokenSettings
from runtime.errors import (
    expired_token,
    invalid_token,
    production_token_on_staging,
    revoked_token,
    staging_token_on_production,
    store_unavailable,
)

_LOG = structlog.get_logger(__name__)

AUTHORIZATION_KEY = "authorization"
API_KEY_HEADER = "x-api-key"
"""The REST front's other header for the API token, when no ``authorization`` is sent (`gateway.rest.app`)."""
_SCHEME = "Bearer "
# Base64url in three dot-separated parts; anything else is refused before any parsing.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A kid is logged only when it looks like one: the caller writes it, and it could carry anything.
_KID_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PUBLIC_SUFFIX = ".public.pem"
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "nbf", "iat", "jti", "sub"]

_ENVIRONMENTS = {environment.value: environment for environment in Environment}

ES256 = "ES256"
EDDSA = "EdDSA"


@dataclass(frozen=True, slots=True)
class Token:
    """A verified token: who calls, on behalf of which habilitation, with which rights."""

    jti: str
    """The token's id (a UUID): the revocation list and the rate limit key on it."""
    habilitation: str
    """The habilitation label (``sub``)."""
    siret: str
    """SIRET of the organisation the token was issued to."""
    scopes: frozenset[str]
    """The scopes granted."""
    expires_at: int
    """Expiry, in epoch seconds."""
    rate_limit_per_second: int | None
    """The token's own rate limit, if it has one; the gateway's default otherwise."""
    habilitation_id: str = ""
    """The registry's habilitation id: its tokens share their rate counters. Empty without a registry."""
    rate_limit_per_minute: int | None = None
    """The habilitation's per-minute limit, if it has one."""
    environment: Environment = Environment.PRODUCTION
    """Where the token may be used (its ``env`` claim; production when it has none)."""
    rights: Rights | None = None
    """The registry's rights of the call (scopes, IP lists, limits); None without a registry."""
    grants: EditorGrants | None = None
    """An editor token's delegations, before the recipient picks one; None for any other token."""
    delegation_id: str = ""
    """The delegation an editor token's call was resolved to (`gateway.delegations`); "" otherwise."""
    editor_id: str = ""
    """The editor of an editor token ("" for any other token)."""

    @property
    def rate_key(self) -> str:
        """What its rate counters are keyed by: the habilitation, else the token itself."""
        return self.habilitation_id or self.jti

    @classmethod
    def under(
        cls,
        rights: Rights,
        *,
        jti: str,
        expires_at: int,
        environment: Environment = Environment.PRODUCTION,
        grants: EditorGrants | None = None,
        delegation_id: str = "",
        editor_id: str = "",
    ) -> Token:
        """A token calling under the registry's ``rights``: its habilitation, scopes and limits are theirs."""
        return cls(
            jti=jti,
            habilitation=rights.label,
            siret=rights.siret,
            scopes=rights.scopes,
            expires_at=expires_at,
            rate_limit_per_second=rights.rate_per_second,
            habilitation_id=rights.habilitation_id,
            rate_limit_per_minute=rights.rate_per_minute,
            environment=environment,
            rights=rights,
            grants=grants,
            delegation_id=delegation_id,
            editor_id=editor_id,
        )


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the one algorithm it verifies."""

    kid: str
    algorithm: str
    key: Any


def algorithm_of(key: object) -> str | None:
    """The algorithm pinned to a public key, or None for a kind of key the gateway refuses."""
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return ES256
    if isinstance(key, ed25519.Ed25519PublicKey):
        return EDDSA
    return None


def load_keys_dir(directory: Path) -> dict[str, VerificationKey]:
    """Read every ``<kid>.public.pem`` of a directory; keys of a refused kind are skipped."""
    keys: dict[str, VerificationKey] = {}
    for path in sorted(directory.glob(f"*{_PUBLIC_SUFFIX}")):
        kid = path.name.removesuffix(_PUBLIC_SUFFIX)
        try:
            key = load_pem_public_key(path.read_bytes())
        except (OSError, ValueError):
            _LOG.warning("key_unreadable", kid=kid)
            continue
        algorithm = algorithm_of(key)
        if algorithm is None:
            _LOG.warning("key_kind_refused", kid=kid)
            continue
        keys[kid] = VerificationKey(kid, algorithm, key)
    return keys


def load_jwks_file(path: Path) -> dict[str, VerificationKey]:
    """Read the keys of a JWKS file.

    Keys without a kid, of a refused kind, or whose
    ``alg`` disagrees with their kind, are skipped.
    """
    document = json.loads(path.read_text())
    keys: dict[str, VerificationKey] = {}
    for entry in document.get("keys", []):
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            key = jwt.PyJWK(entry).key
        except jwt.PyJWTError:
            _LOG.warning("key_unreadable", kid=kid)
            continue
        algorithm = algorithm_of(key)
        if algorithm is None or entry.get("alg", algorithm) != algorithm:
            _LOG.warning("key_kind_refused", kid=kid)
            continue
        keys[kid] = VerificationKey(kid, algorithm, key)
    return keys


class KeyStore:
    """The verification keys by kid, reloaded from their source when an unknown kid shows up."""

    def __init__(
        self,
        load: Callable[[], Mapping[str, VerificationKey]],
        reload_min_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the keys once.

        Args:
            load: Reads the keys from their source.
            reload_min_seconds: Shortest time between two reloads caused by unknown kids.
            clock: Monotonic clock.
        """
        self._load = load
        self._reload_min_seconds = reload_min_seconds
        self._clock = clock
        self._keys: Mapping[str, VerificationKey] = load()
        self._loaded_at = clock()

    @classmethod
    def from_source(
        cls, keys_dir: Path | None, jwks_file: Path | None, reload_min_seconds: float
    ) -> KeyStore:
        """The store of ``KEYS_DIR`` or ``JWKS_FILE`` (exactly one must be set).

        Raises:
            ValueError: neither or both are set.
        """
        if (keys_dir is None) == (jwks_file is None):
            raise ValueError("set exactly one of KEYS_DIR and JWKS_FILE: the token verification keys")
        if jwks_file is not None:
            jwks = jwks_file
            return cls(lambda: load_jwks_file(jwks), reload_min_seconds)
        directory: Path = keys_dir  # type: ignore[assignment]  # checked above: not both None
        return cls(lambda: load_keys_dir(directory), reload_min_seconds)

    def kids(self) -> list[str]:
        """The key ids known now, sorted (public: they name public keys)."""
        return sorted(self._keys)

    def get(self, kid: str) -> VerificationKey | None:
        """The key of ``kid``, reloading the source first if it is unknown and may be reloaded."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        now = self._clock()
        if now - self._loaded_at < self._reload_min_seconds:
            return None
        self._loaded_at = now
        try:
            self._keys = self._load()
        except (OSError, ValueError):
            # Keep serving with the keys known: a half-written file must not lock everybody out.
            _LOG.warning("keys_reload_failed")
            return None
        _LOG.info("keys_reloaded", kids=len(self._keys))
        return self._keys.get(kid)


class TokenVerifier:
    """Turns the ``authorization`` metadata of a call into a verified `Token`."""

    def __init__(
        self,
        keys: KeyStore,
        settings: TokenSettings,
        *,
        clock: Callable[[], float] = time.time,
        registry: RegistrySnapshot | None = None,
        environment: Environment = Environment.PRODUCTION,
    ) -> None:
        """Verify against ``keys`` with the expectations of ``settings``.

        Args:
            keys: The verification keys.
            settings: The claims expected (``TOKEN_ISSUER``, ``TOKEN_AUDIENCE``), the clock skew
                allowed on ``exp``, ``nbf`` and ``iat`` (``TOKEN_LEEWAY_SECONDS``), the longest
                ``authorization`` value accepted (``TOKEN_MAX_BYTES``), the verified tokens kept
                (``TOKEN_CACHE_SIZE``; 0 disables the cache).
            clock: Wall clock, in epoch seconds.
            registry: The registry snapshot: set, a token's rights, expiry and end are its record's.
            environment: The gateway's environment; a token of the other is refused (00108, 00109).
        """
        self._keys = keys
        self._registry = registry
        self._environment = environment
        # By jti: the token as last resolved against the registry entry it came from.
        self._resolved: dict[str, tuple[TokenEntry, Token]] = {}
        self._issuer = settings.token_issuer
        self._audience = settings.token_audience
        self._leeway = settings.token_leeway_seconds
        self._max_bytes = settings.token_max_bytes
        self._cache_size = settings.token_cache_size
        self._clock = clock
        # By the token's text: only verified tokens get in, at most cache_size of them, each
        # within TOKEN_MAX_BYTES; a lookup costs a string hash, not a SHA-256.
        self._cache: OrderedDict[str, Token] = OrderedDict()

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Token:
        """The verified token of a call.

        Raises:
            ApiError: 00101 when the token is missing or invalid, 00103 when it is expired.
        """
        values = [value for key, value in metadata or () if key == AUTHORIZATION_KEY]
        if len(values) != 1 or not isinstance(values[0], str):
            raise invalid_token()
        return self.verify_header(values[0])

    def verify_header(self, header: str) -> Token:
        """Verify one ``Bearer <jwt>`` value.

        Raises:
            ApiError: 00101 when the token is invalid (or, with a registry, unknown to it), 00103
                when it is expired, 00105 when the registry ended it (a ban from a date, a rotation's
                grace, a habilitation no longer validated), 00108 / 00109 when it is of the other
                environment, 00503 when the registry was never loaded.
        """
        token = self._verified(header)
        return token if self._registry is None else self._resolve(token, self._registry)

    def _resolve(self, token: Token, registry: RegistrySnapshot) -> Token:
        """The token with its registry record's rights, as of this call (the snapshot's)."""
        entry = registry.token(token.jti)
        if entry is None:
            if not registry.loaded:
                raise store_unavailable()
            raise invalid_token()
        now = self._clock()
        if entry.ends_at is not None and now >= entry.ends_at:
            raise revoked_token()
        if now >= entry.expires_at:
            raise expired_token()
        if not entry.rights.validated:
            raise revoked_token()
        resolved = self._resolved.get(token.jti)
        if resolved is not None and resolved[0] is entry:
            return resolved[1]
        enriched = Token.under(
            entry.rights,
            jti=token.jti,
            expires_at=int(entry.expires_at),
            environment=entry.environment,
            grants=entry.grants,
            editor_id="" if entry.grants is None else entry.grants.editor_id,
        )
        if len(self._resolved) >= max(self._cache_size, 1):
            self._resolved.clear()
        self._resolved[token.jti] = (entry, enriched)
        return enriched

    def _verified(self, header: str) -> Token:
        # The scheme is case-insensitive (RFC 9110 §11.1): "bearer" is "Bearer".
        if len(header) > self._max_bytes or header[: len(_SCHEME)].lower() != _SCHEME.lower():
            raise invalid_token()
        text = header[len(_SCHEME) :]
        cached = self._cache.get(text)
        if cached is not None:  # this very text passed every check below
            if self._clock() < cached.expires_at:
                self._cache.move_to_end(text)
                return cached
            del self._cache[text]
        if not _JWT_SHAPE.fullmatch(text):
            raise invalid_token()
        token = self._verify(text)
        if self._cache_size:
            self._cache[text] = token
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return token

    def _verify(self, text: str) -> Token:
        try:
            header = jwt.get_unverified_header(text)
        except jwt.PyJWTError:
            raise invalid_token() from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("typ", "JWT") != "JWT":
            raise invalid_token()
        key = self._keys.get(kid)
        if key is None:
            # The one refusal an operator can fix (a token signed with a key the gateway lacks): say so.
            _LOG.warning(
                "token_kid_unknown",
                kid=kid if _KID_SHAPE.fullmatch(kid) else "<not a key id>",
                known_kids=self._keys.kids(),
            )
            raise invalid_token()
        if header.get("alg") != key.algorithm:
            raise invalid_token()
        try:
            claims = jwt.decode(
                text,
                key.key,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                # Times are checked below against the verifier's own clock, the one the cache uses.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "strict_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise invalid_token() from None
        token = _token_of(claims)
        now = self._clock()
        if claims["nbf"] > now + self._leeway or claims["iat"] > now + self._leeway:
            raise invalid_token()
        if claims["exp"] <= now - self._leeway:
            raise expired_token()
        if token.environment is not self._environment:
            raise (
                production_token_on_staging()
                if token.environment is Environment.PRODUCTION
                else staging_token_on_production()
            )
        return token


def _token_of(claims: Mapping[str, Any]) -> Token:
    jti, sub, siret, scopes = claims["jti"], claims["sub"], claims.get("siret"), claims.get("scopes")
    rate_limit = claims.get("rate_limit")
    environment = claims.get("env", Environment.PRODUCTION.value)
    if (
        not isinstance(environment, str)
        or environment not in _ENVIRONMENTS
        or not isinstance(jti, str)
        or not _UUID.fullmatch(jti)
        or not isinstance(sub, str)
        or not sub
        or not isinstance(siret, str)
        or not siret
        or not isinstance(scopes, list)
        or not all(isinstance(scope, str) for scope in scopes)
        or not all(is_numeric_date(claims[name]) for name in ("exp", "nbf", "iat"))
        or claims["exp"] - claims["iat"] > TOKEN_LIFETIME_MAX_SECONDS
        or (rate_limit is not None and not is_rate_limit(rate_limit))
    ):
        raise invalid_token()
    return Token(
        jti=jti,
        habilitation=sub,
        siret=siret,
        scopes=frozenset(scopes),
        expires_at=int(claims["exp"]),
        rate_limit_per_second=rate_limit,
        environment=_ENVIRONMENTS[environment],
    )
