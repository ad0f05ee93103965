"""Signing keys of tokens: ES256 (ECDSA on P-256) key pairs in a directory, one per ``kid``.

``<kid>.private.pem`` (PKCS#8, mode 0600) stays with the issuer; ``<kid>.public.pem``
(SubjectPublicKeyInfo) is what gateways read from ``KEYS_DIR``. Several kids can
live side by side during a rotation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from runtime.pem import read_private_key

PRIVATE_SUFFIX = ".private.pem"
PUBLIC_SUFFIX = ".public.pem"
_KID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeyFileError(Exception):
    """A key cannot be made or read; the message says why, without any key material."""


def check_kid(kid: str) -> str:
    """Return ``kid`` if it can name key files (letters, digits, ``.``, ``_``, ``-``; 1 to 64).

    Raises:
        KeyFileError: it cannot.
    """
    if not _KID.fullmatch(kid):
        raise KeyFileError(
            f"invalid kid {kid!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return kid


def private_path(keys_dir: Path, kid: str) -> Path:
    """Where the private key of ``kid`` lives."""
    return keys_dir / f"{check_kid(kid)}{PRIVATE_SUFFIX}"


def public_path(keys_dir: Path, kid: str) -> Path:
    """Where the public key of ``kid`` lives."""
    return keys_dir / f"{check_kid(kid)}{PUBLIC_SUFFIX}"


def generate(keys_dir: Path, kid: str) -> tuple[Path, Path]:
    """Create a P-256 key pair for ES256; refuses to overwrite an existing kid.

    Returns:
        The private and public key paths.

    Raises:
        KeyFileError: the kid is invalid or already used.
    """
    private_file, public_file = private_path(keys_dir, kid), public_path(keys_dir, kid)
    if private_file.exists() or public_file.exists():
        raise KeyFileError(f"kid {kid!r} already exists in {keys_dir}; choose another kid to rotate keys")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 from the start (O_EXCL), never readable by others even for a moment.
        descriptor = os.open(private_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(private_pem)
        public_file.write_bytes(public_pem)
    except OSError as exc:
        raise KeyFileError(
            f"cannot write the key pair of kid {kid!r} in {keys_dir}: {exc.strerror}"
        ) from None
    return private_file, public_file


def load_private(keys_dir: Path, kid: str) -> ec.EllipticCurvePrivateKey:
    """The private key of ``kid``, checked to be a P-256 key.

    Raises:
        KeyFileError: missing, unreadable, or not a P-256 key.
    """
    try:
        key = read_private_key(private_path(keys_dir, kid))
    except FileNotFoundError:
        raise KeyFileError(f"no private key for kid {kid!r} in {keys_dir} (run keygen first)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read the private key of kid {kid!r}: {exc.strerror}") from None
    except ValueError:
        raise KeyFileError(f"the private key of kid {kid!r} is not a readable unencrypted PEM key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"the private key of kid {kid!r} is not a P-256 key (ES256)")
    return key
