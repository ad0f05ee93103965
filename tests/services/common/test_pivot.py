"""What provider services read off an identity pivot."""

from __future__ import annotations

from typing import Any

import pytest

from apiparticulier.common.v1 import identity_pb2
from services.common.pivot import birth_date


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
