"""Signed checkpoints of the journal's chains: Ed25519, with a key kept for this purpose alone.

A checkpoint says "chain C had row S with hash H at time T", signed by the gateway that
wrote the chain. The gateways hold the private key (``JOURNAL_SIGNING_KEY_FILE``); the
auditor who runs ``journal verify`` needs only the public one. The key signs nothing
else: not tokens (their keys are ES256, ``gateway.admin.keys``), not the subjects' HMAC.

Key files are PEM: ``<name>.private.pem`` (PKCS#8, mode 0600) and ``<name>.public.pem``
(SubjectPublicKeyInfo). A key is named in checkpoints by its id, the first 16 hex digits
of the SHA-256 of its raw public key, so keys can be rotated and both verified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.journal.chain import microseconds
from runtime.pem import read_private_key

_CHECKPOINT = b"apiparticulier-journal/checkpoint/v1"


class SigningKeyError(ValueError):
    """A journal signing key cannot be made or read; the message says why, without key material."""


def key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """The id checkpoints name a key by."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_message(chain_id: uuid.UUID, seq: int, head: bytes, signed_at: dt.datetime) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return b"".join(
        (
            _CHECKPOINT,
            chain_id.bytes,
            seq.to_bytes(8, "big", signed=True),
            head,
            microseconds(signed_at).to_bytes(8, "big", signed=True),
        )
    )


class Signer:
    """Signs checkpoints with the gateway's journal key.

    Args:
        private_key: The Ed25519 private key.
    """

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """The signer of a PKCS#8 PEM file.

        Raises:
            SigningKeyError: missing, unreadable or not an Ed25519 key.
        """
        try:
            key = read_private_key(path)
        except OSError as exc:
            raise SigningKeyError(f"cannot read the journal signing key {path}: {exc.strerror}") from None
        except ValueError:
            raise SigningKeyError(f"{path} is not a readable unencrypted PEM private key") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key")
        return cls(key)

    def sign(self, chain_id: uuid.UUID, seq: int, head: bytes, signed_at: dt.datetime) -> bytes:
        """The signature of one checkpoint (64 bytes)."""
        return self._key.sign(checkpoint_message(chain_id, seq, head, signed_at))


class Verifier:
    """Checks checkpoint signatures against the public keys an auditor trusts.

    Args:
        public_keys: The trusted public keys.
    """

    def __init__(self, public_keys: Iterable[ed25519.Ed25519PublicKey]) -> None:
        self._keys = {key_id(key): key for key in public_keys}

    def __reduce__(self) -> tuple[Callable[[list[bytes]], Verifier], tuple[list[bytes]]]:
        # cryptography's keys do not pickle: the keys reach `verify_in_parallel`'s processes raw.
        raw = [
            key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            for key in self._keys.values()
        ]
        return _verifier_of_raw, (raw,)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> Verifier:
        """The verifier of PEM public key files.

        Raises:
            SigningKeyError: a file is missing, unreadable or not an Ed25519 public key.
        """
        keys = []
        for path in paths:
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except OSError as exc:
                raise SigningKeyError(f"cannot read the public key {path}: {exc.strerror}") from None
            except (ValueError, TypeError):
                raise SigningKeyError(f"{path} is not a readable PEM public key") from None
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise SigningKeyError(f"{path} is not an Ed25519 public key")
            keys.append(key)
        return cls(keys)

    def valid(
        self,
        key: str,
        signature: bytes,
        chain_id: uuid.UUID,
        seq: int,
        head: bytes,
        *,
        signed_at: dt.datetime,
    ) -> bool:
        """Whether a trusted key with id ``key`` signed this checkpoint."""
        public = self._keys.get(key)
        if public is None:
            return False
        try:
            public.verify(signature, checkpoint_message(chain_id, seq, head, signed_at))
        except InvalidSignature:
            return False
        return True


def _verifier_of_raw(raw_keys: list[bytes]) -> Verifier:
    return Verifier(ed25519.Ed25519PublicKey.from_public_bytes(raw) for raw in raw_keys)


def generate(keys_dir: Path, name: str) -> tuple[Path, Path]:
    """Create an Ed25519 key pair ``<name>.private.pem`` (0600) and ``<name>.public.pem``.

    Raises:
        SigningKeyError: a file of that name exists, or the files cannot be written.
    """
    private_file = keys_dir / f"{name}.private.pem"
    public_file = keys_dir / f"{name}.public.pem"
    if private_file.exists() or public_file.exists():
        raise SigningKeyError(f"{name} already exists in {keys_dir}; choose another name to rotate keys")
    key = ed25519.Ed25519PrivateKey.generate()
    try:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(private_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        public_file.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    except OSError as exc:
        raise SigningKeyError(
            f"cannot write the journal key pair {name} in {keys_dir}: {exc.strerror}"
        ) from None
    return private_file, public_file
