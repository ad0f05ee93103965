"""Private keys read from PEM files, for the processes that sign (tokens, the journal's checkpoints).

Each caller checks the kind of key it needs and words its own refusals; the reading, and what
counts as unreadable, is here once.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


def read_private_key(path: Path) -> PrivateKeyTypes:
    """The unencrypted private key of the PEM file ``path`` (PKCS#8, or a traditional format).

    Raises:
        OSError: the file cannot be read (FileNotFoundError: there is none); ``strerror`` says why.
        ValueError: not a PEM private key, or an encrypted one (the processes hold no password);
            the message names the path, never key material.
    """
    data = path.read_bytes()
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # TypeError: the key is encrypted and no password was given.
        raise ValueError(f"{path} is not a readable unencrypted PEM private key") from None
