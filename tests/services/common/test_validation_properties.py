"""Property tests: no input, however odd, makes a validator crash or leak the value it refuses."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiparticulier.common.v1 import identity_pb2
from runtime.errors import ApiError, FieldViolation
from services.common import validation
from services.common.validation import IdentityRules, validate_identity, validate_ine
from services.france_travail.validation import (
    MAX_IDENTIFIANT_LENGTH,
    checked_identifiant,
    validate_identifiant,
)

# Modest: the suite runs on a small shared machine. No example database, so the
# runs leave nothing behind in the working tree.
PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

RULE_SETS = {name: rules for name, rules in vars(validation).items() if isinstance(rules, IdentityRules)}
PIVOT_FIELDS = {
    "nomNaissance",
    "nomUsage",
    "prenoms",
    "anneeDateNaissance",
    "moisDateNaissance",
    "jourDateNaissance",
    "sexeEtatCivil",
    "codeCogInseePaysNaissance",
    "codeCogInseeCommuneNaissance",
    "nomCommuneNaissance",
    "codeCogInseeDepartementNaissance",
}
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def around(low: int, high: int) -> st.SearchStrategy[int | None]:
    """Unset, in range, just outside it, or anywhere in int32."""
    return st.one_of(st.none(), st.integers(low - 2, high + 2), INT32)


def text_like(*samples: str) -> st.SearchStrategy[str]:
    """Arbitrary text, mixed with plausible values so valid paths are reached too."""
    return st.one_of(st.text(max_size=120), st.sampled_from(samples))


@st.composite
def pivots(draw: st.DrawFn) -> identity_pb2.IdentityPivot:
    """Identity pivots with arbitrary text, ints in and out of range, and 0 to 5 first names."""
    pivot = identity_pb2.IdentityPivot(
        nom_naissance=draw(text_like("DUPONT", "", "  ", "O'BRIEN-LÉON")),
        nom_usage=draw(text_like("", "MARTIN")),
        prenoms=draw(st.lists(text_like("JEAN", "Éloïse", ""), min_size=0, max_size=5)),
        sexe_etat_civil=draw(text_like("M", "F", "m", "")),
        code_cog_insee_pays_naissance=draw(text_like("99100", "99350", "")),
        code_cog_insee_commune_naissance=draw(text_like("08480", "2A004", "")),
        nom_commune_naissance=draw(text_like("Gennevilliers", "")),
        code_cog_insee_departement_naissance=draw(text_like("92", "2B", "971", "")),
    )
    for field, value in (
        ("annee_date_naissance", draw(around(1900, 2030))),
        ("mois_date_naissance", draw(around(1, 12))),
        ("jour_date_naissance", draw(around(1, 31))),
    ):
        if value is not None:
            setattr(pivot, field, value)
    return pivot


def test_every_rule_set_is_exercised() -> None:
    """The properties below cover the rule sets the module defines (guards the discovery)."""
    assert {"DSS_IDENTITY", "MESR_IDENTITY", "CNOUS_IDENTITY", "MEN_IDENTITY"} <= set(RULE_SETS)


@pytest.mark.parametrize("rules", list(RULE_SETS.values()), ids=list(RULE_SETS))
@PROPERTIES
@given(
    pivot=pivots(),
    today=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    prefix=st.sampled_from(["identite", "franceConnect.identitePivot"]),
)
def test_validate_identity_never_crashes(
    rules: IdentityRules, pivot: identity_pb2.IdentityPivot, today: dt.date, prefix: str
) -> None:
    """Any pivot yields a list of violations on known fields of the pivot, under the given prefix."""
    violations = validate_identity(pivot, rules, today, prefix)
    assert isinstance(violations, list)
    for violation in violations:
        assert isinstance(violation, FieldViolation)
        head, _, name = violation.field.rpartition(".")
        assert head == prefix
        assert name in PIVOT_FIELDS
        assert violation.description


MARKER = "\u2603"


@st.composite
def marked_pivots(draw: st.DrawFn) -> identity_pb2.IdentityPivot:
    """Pivots whose every text field carries a marker character no fixed description has."""
    pivot = draw(pivots())
    for field in (
        "nom_naissance",
        "nom_usage",
        "sexe_etat_civil",
        "code_cog_insee_pays_naissance",
        "code_cog_insee_commune_naissance",
        "nom_commune_naissance",
        "code_cog_insee_departement_naissance",
    ):
        setattr(pivot, field, MARKER + getattr(pivot, field))
    pivot.prenoms[:] = [MARKER + first for first in pivot.prenoms]
    return pivot


@pytest.mark.parametrize("rules", list(RULE_SETS.values()), ids=list(RULE_SETS))
@PROPERTIES
@given(pivot=marked_pivots())
def test_violations_never_echo_the_values(rules: IdentityRules, pivot: identity_pb2.IdentityPivot) -> None:
    """No violation description repeats any part of what the caller sent."""
    for violation in validate_identity(pivot, rules, dt.date(2026, 1, 1)):
        assert MARKER not in violation.description


NAMES = st.text(alphabet=string.ascii_uppercase + "ÉÈÀÇ -'", min_size=1, max_size=40).filter(
    lambda name: any(ch.isalpha() for ch in name)
)


@pytest.mark.parametrize("rules", list(RULE_SETS.values()), ids=list(RULE_SETS))
@PROPERTIES
@given(
    name=NAMES,
    firsts=st.lists(NAMES, min_size=1, max_size=3),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 12, 31)),
    sex=st.sampled_from(["M", "F"]),
    commune=st.sampled_from(["08480", "2A004", "97105", ""]),
)
def test_well_formed_pivots_are_accepted(
    rules: IdentityRules, name: str, firsts: list[str], birth: dt.date, sex: str, commune: str
) -> None:
    """A well-formed pivot (within the rule set's number of first names) has no violation."""
    pivot = identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=firsts[: rules.max_first_names],
        annee_date_naissance=birth.year,
        mois_date_naissance=birth.month,
        jour_date_naissance=birth.day,
        sexe_etat_civil=sex,
        code_cog_insee_pays_naissance="99100",
        code_cog_insee_commune_naissance=commune,
    )
    assert validate_identity(pivot, rules, dt.date(2026, 1, 1)) == []


@PROPERTIES
@given(ine=st.one_of(st.text(max_size=30), st.text(alphabet=string.ascii_letters + string.digits)))
def test_validate_ine_never_crashes(ine: str) -> None:
    """Any string is either a valid INE (11 ASCII letters or digits) or one violation on `ine`."""
    violations = validate_ine(ine)
    valid = len(ine) == 11 and all(ch in string.ascii_letters + string.digits for ch in ine)
    # A refusal is the same fixed text whatever the value, so it cannot echo it.
    assert violations == ([] if valid else validate_ine(""))


@PROPERTIES
@given(identifiant=st.one_of(st.text(max_size=150), st.text(min_size=95, max_size=105)))
def test_identifiant_check_never_crashes(identifiant: str) -> None:
    """Any string is accepted unchanged, or refused with one 00380 violation that does not echo it."""
    violations = validate_identifiant(identifiant)
    assert len(violations) <= 1
    if violations:
        assert violations[0].field == "identifiant"
        with pytest.raises(ApiError) as caught:
            checked_identifiant(identifiant)
        error = caught.value
        assert error.code == "00380"
        assert [v.field for v in error.violations] == ["identifiant"]
        told = " ".join([str(error), error.detail, *(v.description for v in error.violations)])
        assert identifiant.strip() == "" or identifiant not in told
    else:
        assert checked_identifiant(identifiant) == identifiant
        assert identifiant.strip()
        assert len(identifiant) <= MAX_IDENTIFIANT_LENGTH
