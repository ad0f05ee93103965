"""The journal's signing key: each way it cannot be read says so, naming the file alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.admin.keys import generate as generate_token_key
from gateway.journal.signing import Signer, SigningKeyError, generate


def test_a_generated_key_signs(tmp_path: Path) -> None:
    private, _ = generate(tmp_path, "journal-read")
    assert len(Signer.from_file(private).key_id) == 16


def test_a_key_that_cannot_be_read_is_refused_with_its_reason(tmp_path: Path) -> None:
    absent = tmp_path / "absent.pem"
    with pytest.raises(
        SigningKeyError, match=re.escape(f"cannot read the journal signing key {absent}: No such")
    ):
        Signer.from_file(absent)
    not_pem = tmp_path / "not.pem"
    not_pem.write_bytes(b"not a key")
    with pytest.raises(
        SigningKeyError, match=re.escape(f"{not_pem} is not a readable unencrypted PEM private key")
    ):
        Signer.from_file(not_pem)
    es256, _ = generate_token_key(tmp_path, "es-not-journal")
    with pytest.raises(SigningKeyError, match="is not an Ed25519 key"):
        Signer.from_file(es256)
