"""A PEM private key is read once for every signer: what it refuses, and with which exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from runtime.pem import read_private_key


def _pem(key: PrivateKeyTypes, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def test_an_unencrypted_pem_key_is_read_whatever_its_kind(tmp_path: Path) -> None:
    for key in (ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()):
        path = tmp_path / "key.pem"
        path.write_bytes(_pem(key))
        assert _pem(read_private_key(path)) == _pem(key)


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_private_key(tmp_path / "absent.pem")


def test_a_directory_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="Is a directory") as raised:
        read_private_key(tmp_path)
    assert raised.value.strerror


@pytest.mark.parametrize(
    "content",
    [
        b"not a key",
        _pem(ed25519.Ed25519PrivateKey.generate(), password=b"a password"),
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    ],
    ids=["not PEM", "encrypted", "a public key"],
)
def test_what_is_no_unencrypted_private_key_raises_value_error_naming_the_path(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a readable unencrypted PEM private key") as raised:
        read_private_key(path)
    assert str(path) in str(raised.value)
