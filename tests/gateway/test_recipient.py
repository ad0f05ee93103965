"""The recipient SIRET: required, 14 digits, Luhn, La Poste's own rule."""

from __future__ import annotations

import grpc
import pytest

from gateway.recipient import is_valid_siret, recipient_from
from runtime.errors import ApiError


@pytest.mark.parametrize(
    ("siret", "valid"),
    [
        ("13002526500013", True),  # a State body, Luhn
        ("73282932000074", True),  # Luhn
        ("21750001600019", True),  # Ville de Paris, Luhn
        ("13002526500014", False),  # bad Luhn
        ("73282932000075", False),  # bad Luhn
        ("1300252650001A", False),  # a letter
        ("1300252650001", False),  # 13 digits
        ("130025265000130", False),  # 15 digits
        ("", False),
        ("13002526 500013", False),  # a space
        ("\uff11\uff13" + "002526500013", False),  # full-width digits are not digits here
        ("35600000049837", True),  # La Poste: digit sum 45, a multiple of 5
        ("35600000000048", True),  # La Poste's head office, which passes Luhn
        ("35600000049838", False),  # La Poste: digit sum 46, and no Luhn either
        ("35600000049830", False),  # La Poste: digit sum 38
    ],
)
def test_siret_rule(siret: str, valid: bool) -> None:
    """Each SIRET is judged by Luhn, or by La Poste's digit sum for SIREN 356000000."""
    assert is_valid_siret(siret) is valid


def test_recipient_is_read_from_the_metadata() -> None:
    """A valid x-recipient is returned as is."""
    assert recipient_from((("x-request-id", "a"), ("x-recipient", "13002526500013"))) == "13002526500013"


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), "00203"),
        (None, "00203"),
        ((("x-recipient", ""),), "00203"),
        ((("x-recipient", "13002526500014"),), "00210"),
        ((("x-recipient", "abc"),), "00210"),
        ((("x-recipient", "13002526500013"), ("x-recipient", "73282932000074")), "00210"),
    ],
)
def test_recipient_refusals(metadata: tuple[tuple[str, str], ...] | None, code: str) -> None:
    """A missing recipient is 00203, an invalid or repeated one 00210, both INVALID_ARGUMENT."""
    with pytest.raises(ApiError) as refused:
        recipient_from(metadata)
    assert refused.value.code == code
    assert refused.value.status is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in refused.value.violations] == ["x-recipient"]
