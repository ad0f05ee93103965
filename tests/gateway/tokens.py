"""Keys and tokens for the gateway's tests, in the format the admin CLI issues.

Key files are ``<kid>.private.pem`` (PKCS8, mode 0600) and ``<kid>.public.pem``
(SubjectPublicKeyInfo) in one directory; tokens are JWTs with the header
``{alg, kid, typ: JWT}`` and the claims the gateway requires.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ISSUER = "api-particulier-mesh"
AUDIENCE = "api-particulier"
SIRET = "13002526500013"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    """A private key, its kid and its algorithm."""

    kid: str
    algorithm: str
    private: PrivateKey

    @property
    def public_pem(self) -> bytes:
        """The public key, SubjectPublicKeyInfo PEM."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write(self, directory: Path) -> None:
        """Write ``<kid>.private.pem`` (0600) and ``<kid>.public.pem`` into ``directory``."""
        private = directory / f"{self.kid}.private.pem"
        private.write_bytes(
            self.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private.chmod(0o600)
        (directory / f"{self.kid}.public.pem").write_bytes(self.public_pem)


def es256_key(kid: str = "es-1") -> SigningKey:
    """A new EC P-256 key."""
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def ed25519_key(kid: str = "ed-1") -> SigningKey:
    """A new Ed25519 key."""
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


@dataclass
class TokenFactory:
    """Signs tokens with a key; claims default to a valid token with every cnaf scope."""

    key: SigningKey
    scopes: list[str] = field(
        default_factory=lambda: [
            "cnaf_quotient_familial",
            "cnaf_allocataires",
            "cnaf_enfants",
            "cnaf_adresse",
        ]
    )

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims, with some replaced; an override of ``...`` removes the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": str(uuid.uuid4()),
            "sub": "Mairie de test - quotient familial",
            "siret": SIRET,
            "scopes": list(self.scopes),
        }
        for name, value in overrides.items():
            if value is ...:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def token(self, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        """A signed token with the given claim overrides and extra header fields."""
        return jwt.encode(
            self.claims(**overrides),
            self.key.private,
            algorithm=self.key.algorithm,
            headers={"kid": self.key.kid, "typ": "JWT", **(headers or {})},
        )

    def bearer(self, **overrides: Any) -> str:
        """``Bearer <token>``."""
        return f"Bearer {self.token(**overrides)}"
