"""What provider services read off an identity pivot."""

from __future__ import annotations

from typing import Any

import pytest

from apiparticulier.common.v1 import identity_pb2
from services.common.pivot import ascii_folded, birth_date


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"annee_date_naissance": 1982, "mois_date_naissance": 2, "jour_date_naissance": 7}, "1982-02-07"),
        ({"annee_date_naissance": 1982, "mois_date_naissance": 2}, "1982-02"),
        ({"annee_date_naissance": 1982}, "1982"),
        ({"annee_date_naissance": 1982, "jour_date_naissance": 7}, "1982"),
        ({}, ""),
    ],
)
def test_birth_date_as_far_as_known(parts: dict[str, Any], expected: str) -> None:
    """Zero-padded parts, each only when the ones before it are known."""
    assert birth_date(identity_pb2.IdentityPivot(**parts)) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Zoé Éloïse", "Zoe Eloise"),
        ("LŒB-ÆLIS", "LOEB-AELIS"),
        ("d\u2019Ornano\u2013Ruiz", "d'Ornano-Ruiz"),
        ("Straße 李", "Strasse "),
    ],
    ids=["accents", "ligatures", "typographic-apostrophe-and-dash", "no-ascii-form"],
)
def test_ascii_folded(name: str, expected: str) -> None:
    """Accents dropped, ligatures spelt out, look-alikes made ASCII, what has no ASCII form dropped."""
    assert ascii_folded(name) == expected
