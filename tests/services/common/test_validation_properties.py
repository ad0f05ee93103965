"""Property tests: no input, however odd, makes a chain crash, break its own shape or leak what it refuses."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2
from runtime.error_catalogue import rule_entry
from runtime.errors import ApiError
from services.common import validation
from services.common.validation import Chain, Subject, checked_ine
from services.dsnj.validation import SERVICE_NATIONAL

# Modest: the suite runs on a small shared machine. No example database, so the
# runs leave nothing behind in the working tree.
PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CHAINS = {name: chain for name, chain in vars(validation).items() if isinstance(chain, Chain)}
CHAINS["SERVICE_NATIONAL"] = SERVICE_NATIONAL
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


def test_every_chain_is_exercised() -> None:
    """The properties below cover the chains the module defines (guards the discovery)."""
    assert {"CNAV", "QUOTIENT_FAMILIAL", "CIVILITY", "MESRI", "SERVICE_NATIONAL"} <= set(CHAINS)


@pytest.mark.parametrize("chain", list(CHAINS.values()), ids=list(CHAINS))
@PROPERTIES
@given(
    pivot=pivots(),
    today=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    prefix=st.sampled_from(["identite", "franceConnect.identitePivot"]),
    annee=around(2000, 2100),
    mois=around(1, 12),
)
def test_a_chain_never_crashes(
    chain: Chain,
    pivot: identity_pb2.IdentityPivot,
    today: dt.date,
    prefix: str,
    annee: int | None,
    mois: int | None,
) -> None:
    """Any request yields violations on known fields, each with a code of the catalogue."""
    request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=pivot, annee=annee, mois=mois)
    for violation in chain.violations(Subject(pivot, today, prefix, request, request_id_refused=False)):
        head, _, name = violation.field.rpartition(".")
        assert (head, name) in {(prefix, field) for field in PIVOT_FIELDS} | {("", "annee"), ("", "mois")}
        assert rule_entry(violation.code).http_status == 422
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


@pytest.mark.parametrize("chain", list(CHAINS.values()), ids=list(CHAINS))
@PROPERTIES
@given(pivot=marked_pivots())
def test_violations_never_echo_the_values(chain: Chain, pivot: identity_pb2.IdentityPivot) -> None:
    """No violation description repeats any part of what the caller sent."""
    request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=pivot)
    for violation in chain.violations(Subject(pivot, dt.date(2026, 1, 1), request=request)):
        assert MARKER not in violation.description


NAMES = st.text(alphabet=string.ascii_uppercase + "ÉÈÀÇ -'", min_size=1, max_size=40).filter(
    lambda name: name.strip() != ""
)


@pytest.mark.parametrize("chain", [c for n, c in CHAINS.items() if n != "SERVICE_NATIONAL"])
@PROPERTIES
@given(
    name=NAMES,
    firsts=st.lists(NAMES, min_size=1, max_size=5),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 12, 31)),
    sex=st.sampled_from(["M", "F", "m", "f"]),
    commune=st.sampled_from(["08480", "2A004", "97105", ""]),
)
def test_well_formed_pivots_are_accepted(
    chain: Chain, name: str, firsts: list[str], birth: dt.date, sex: str, commune: str
) -> None:
    """A well-formed pivot, any number of first names, breaks no rule."""
    pivot = identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=firsts,
        annee_date_naissance=birth.year,
        mois_date_naissance=birth.month,
        jour_date_naissance=birth.day,
        sexe_etat_civil=sex,
        code_cog_insee_pays_naissance="99100",
        code_cog_insee_commune_naissance=commune,
    )
    request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=pivot)
    assert (
        chain.violations(Subject(pivot, dt.date(2026, 1, 1), request=request, request_id_refused=False)) == []
    )


FIXED_INE_REFUSAL = "an INE of one of its four formats"


@PROPERTIES
@given(ine=st.one_of(st.text(max_size=30), st.text(alphabet=string.ascii_letters + string.digits)))
def test_an_ine_is_one_of_four_formats_or_00360(ine: str) -> None:
    """Any string is an INE of one of the four formats (11 ASCII characters, its last a digit or
    a letter), upper-cased, or refused 00360 without echoing it."""
    refused: list[ApiError] = []
    try:
        assert checked_ine(ine) == ine.upper()
    except ApiError as error:
        refused.append(error)
    if refused:
        # One fixed description whatever the value, so that it cannot echo it.
        assert [(v.code, v.description) for v in refused[0].violations] == [("00360", FIXED_INE_REFUSAL)]
    else:
        assert len(ine) == 11 and ine.isascii() and ine.isalnum()
