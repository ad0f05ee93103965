"""The EAJE participation familiale's eligibility rule: a child under 7 in the household."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2
from runtime.errors import ApiError
from services.cnaf.eaje import age, checked_eligible


def household(*births: str) -> cnaf_pb2.ParticipationFamilialeEajeData:
    """A household whose children were born on these dates."""
    data = cnaf_pb2.ParticipationFamilialeEajeData()
    for birth in births:
        data.enfants.add(nom_naissance="X", date_naissance=birth)
    return data


@pytest.mark.parametrize(
    ("birth", "today", "years"),
    [
        ("2019-06-15", "2026-06-14", 6),
        ("2019-06-15", "2026-06-15", 7),
        ("2020-02-29", "2027-02-28", 6),
        ("2020-02-29", "2027-03-01", 7),
        ("2020-02-29", "2028-02-29", 8),
    ],
)
def test_age_in_years_completed(birth: str, today: str, years: int) -> None:
    """A year is completed on the birthday; one born on 29 February completes it on 1 March."""
    assert age(dt.date.fromisoformat(birth), dt.date.fromisoformat(today)) == years


def test_one_child_under_7_is_enough() -> None:
    """An older child beside a young one does not matter: the data come back unchanged."""
    data = household("2010-01-01", "2020-06-15")
    assert checked_eligible(data, dt.date(2027, 6, 14)) is data


@pytest.mark.parametrize(
    "data",
    [household(), household("2010-01-01", "2020-06-15")],
    ids=["no-child", "all-7-or-more"],
)
def test_no_child_under_7_is_not_eligible(data: cnaf_pb2.ParticipationFamilialeEajeData) -> None:
    """Without a child under 7 the household is refused: NOT_FOUND 37003 from the CNAV."""
    with pytest.raises(ApiError) as refused:
        checked_eligible(data, dt.date(2027, 6, 15))
    error = refused.value
    assert (error.status, error.code, error.title) == (
        grpc.StatusCode.NOT_FOUND,
        "37003",
        "Allocataire non éligible",
    )
    assert error.provider is not None and error.provider.name == "CNAV"


@pytest.mark.parametrize("birth", ["", "2020-02-30", "15/06/2020"])
def test_a_birth_date_that_is_no_date_is_an_unknown_answer(birth: str) -> None:
    """A child's birth date the rule cannot read is the provider's unknown answer (37999), not a refusal."""
    with pytest.raises(ApiError) as refused:
        checked_eligible(household(birth), dt.date(2027, 6, 15))
    assert refused.value.code == "37999"
