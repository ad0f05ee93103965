"""The token signing key of a kid: each way it cannot be read says so, without key material."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.admin.keys import KeyFileError, generate, load_private, private_path


def test_a_generated_key_is_read_back(tmp_path: Path) -> None:
    generate(tmp_path, "es-read")
    assert isinstance(load_private(tmp_path, "es-read").curve, ec.SECP256R1)


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        (None, r"no private key for kid 'es-x' in .* \(run keygen first\)"),
        (b"not a key", "the private key of kid 'es-x' is not a readable unencrypted PEM key"),
    ],
    ids=["missing", "not PEM"],
)
def test_an_unreadable_key_is_refused_with_its_reason(
    tmp_path: Path, content: bytes | None, refusal: str
) -> None:
    if content is not None:
        private_path(tmp_path, "es-x").write_bytes(content)
    with pytest.raises(KeyFileError, match=refusal):
        load_private(tmp_path, "es-x")


def test_a_key_file_that_cannot_be_read_names_the_kid_and_the_reason(tmp_path: Path) -> None:
    private_path(tmp_path, "es-x").mkdir()
    with pytest.raises(KeyFileError, match="cannot read the private key of kid 'es-x': Is a directory"):
        load_private(tmp_path, "es-x")
