"""The men service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

import contextlib
import datetime as dt

import grpc
import pytest

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.men.v1 import men_pb2, men_pb2_grpc
from contract.v3_json import render
from tests.rich_status import rich_status

THIS_YEAR = dt.date.today().year


def person(name: str, first: str, year: int, month: int, day: int, sex: str) -> identity_pb2.IdentityPivot:
    """An identity pivot as the MEN takes it: full birth date and sex."""
    return identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=[first],
        annee_date_naissance=year,
        mois_date_naissance=month,
        jour_date_naissance=day,
        sexe_etat_civil=sex,
    )


ROCHE = person("Roche", "Léa", 2013, 4, 9, "F")
COLIN = person("Colin", "Louise", 2011, 11, 11, "F")


def search(
    identity: identity_pb2.IdentityPivot = ROCHE, **fields: object
) -> men_pb2.GetScolariteByIdentityRequest:
    """A schooling request for this year, in the collège 0132733A unless told otherwise.

    A perimeter is of 2D establishments unless ``degre_etablissement`` says otherwise ("": none).
    """
    request = men_pb2.GetScolariteByIdentityRequest(identite=identity, annee_scolaire=str(THIS_YEAR))
    if not {"code_etablissement", "codes_bcn_departements", "codes_bcn_regions"} & fields.keys():
        request.code_etablissement = "0132733A"
    elif {"codes_bcn_departements", "codes_bcn_regions"} & fields.keys():
        request.degre_etablissement = "2D"
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    return request


def as_json(message: men_pb2.ScolariteData | men_pb2.ScolariteV5Data) -> dict[str, object]:
    """The v4 (or v5) JSON form of a data object."""
    return render(message)


async def test_pupil_in_one_establishment_gets_the_v4_data_object(
    men: men_pb2_grpc.MenServiceAsyncStub,
) -> None:
    """The collégienne searched in her collège comes back whole, dated with the school year asked."""
    response = await men.GetScolariteByIdentity(search(annee_scolaire="2026-2027"))
    assert as_json(response.data) == {
        "identite": {"nom": "ROCHE", "prenom": "LÉA", "sexe": "F", "date_naissance": "2013-04-09"},
        "module_elementaire_formation": {"code_mef_stat": "10310019110", "libelle": "3EME"},
        "etablissement": {"code_uai": "0132733A", "code_ministere_tutelle": "06"},
        "annee_scolaire": "2026-2027",
        "est_scolarise": True,
        "statut_eleve": {"code": "ST", "libelle": "SCOLAIRE"},
        "est_boursier": True,
        "echelon_bourse": 2,
    }


async def test_one_year_names_the_school_year_it_starts(men: men_pb2_grpc.MenServiceAsyncStub) -> None:
    """ "YYYY" is the school year starting that year; a lower-case UAI letter is accepted."""
    response = await men.GetScolariteByIdentity(
        search(annee_scolaire=str(THIS_YEAR - 1), code_etablissement="0132733a")
    )
    assert response.data.annee_scolaire == f"{THIS_YEAR - 1}-{THIS_YEAR}"


async def test_lyceen_at_the_top_echelon_found_by_departement(men: men_pb2_grpc.MenServiceAsyncStub) -> None:
    """A search in a list of départements finds the lycéen boursier at échelon 6."""
    response = await men.GetScolariteByIdentity(
        search(person("Morel", "Adam", 2010, 9, 30, "M"), codes_bcn_departements=["093", "075"])
    )
    assert (response.data.est_boursier, response.data.echelon_bourse) == (True, 6)
    assert response.data.etablissement.code_uai == "0750680G"


async def test_primary_pupil_without_scholarship_or_mef(men: men_pb2_grpc.MenServiceAsyncStub) -> None:
    """A 1D pupil has no scholarship (échelon null, not 0) and a MEF with both fields null."""
    response = await men.GetScolariteByIdentity(
        search(
            person("Dupuis", "Nathan", 2017, 2, 14, "M"), codes_bcn_regions=["16"], degre_etablissement="1D"
        )
    )
    data = as_json(response.data)
    assert (data["est_boursier"], data["echelon_bourse"]) == (False, None)
    assert data["module_elementaire_formation"] == {"code_mef_stat": None, "libelle": None}


async def test_apprentice_status(men: men_pb2_grpc.MenServiceAsyncStub) -> None:
    """An apprentice is schooled under status AP; an unknown supervising ministry is null."""
    response = await men.GetScolariteByIdentity(
        search(person("Perrin", "Enzo", 2009, 5, 5, "M"), code_etablissement="0690128D")
    )
    data = as_json(response.data)
    assert data["statut_eleve"] == {"code": "AP", "libelle": "APPRENTI"}
    assert data["etablissement"] == {"code_uai": "0690128D", "code_ministere_tutelle": None}
    assert data["echelon_bourse"] is None


@pytest.mark.parametrize(
    ("criterion", "uai"),
    [
        ({"code_etablissement": "0693456C"}, "0693456C"),
        ({"code_etablissement": "0752345B"}, "0752345B"),
        ({"codes_bcn_departements": ["069"]}, "0693456C"),
        ({"codes_bcn_regions": ["10"]}, "0752345B"),
        ({"codes_bcn_regions": ["01", "10"], "degre_etablissement": "2D"}, "0752345B"),
    ],
)
async def test_the_search_criterion_selects_the_schooling(
    men: men_pb2_grpc.MenServiceAsyncStub, criterion: dict[str, object], uai: str
) -> None:
    """A pupil who moved during the year is answered in the establishment or perimeter searched."""
    response = await men.GetScolariteByIdentity(search(COLIN, **criterion))
    assert response.data.etablissement.code_uai == uai


@pytest.mark.parametrize(
    "criterion",
    [
        {"code_etablissement": "0750680G"},
        {"codes_bcn_departements": ["02A", "971", "075"]},
        {"codes_bcn_regions": ["10"]},
    ],
)
async def test_pupil_outside_the_criterion_is_not_found(
    men: men_pb2_grpc.MenServiceAsyncStub, criterion: dict[str, object]
) -> None:
    """A pupil schooled elsewhere than searched is 30003 from MEN, with the v4 text."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await men.GetScolariteByIdentity(search(ROCHE, **criterion))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.NOT_FOUND, "30003")
    assert status.error_info.metadata["provider"] == "MEN"
    assert status.localized is not None
    assert status.localized.message.endswith(
        "Aucun eleve n'a pu etre trouve avec les criteres de recherche fournis"
    )
    assert "Roche" not in status.message + status.localized.message


@pytest.mark.parametrize(
    ("identity", "code", "api_code", "retry"),
    [
        (person("Inconnu", "Tom", 2012, 1, 1, "M"), grpc.StatusCode.NOT_FOUND, "30003", False),
        (person("Indisponible", "Nina", 2011, 3, 3, "F"), grpc.StatusCode.UNAVAILABLE, "30001", True),
        (person("Delai", "Paul", 2010, 6, 6, "M"), grpc.StatusCode.DEADLINE_EXCEEDED, "30002", True),
        (person("Etrange", "Lou", 2014, 9, 9, "F"), grpc.StatusCode.UNKNOWN, "30999", False),
    ],
    ids=["not-found", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    men: men_pb2_grpc.MenServiceAsyncStub,
    identity: identity_pb2.IdentityPivot,
    code: grpc.StatusCode,
    api_code: str,
    retry: bool,
) -> None:
    """Each error person yields its status and code, RetryInfo exactly where a retry helps."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await men.GetScolariteByIdentity(search(identity, codes_bcn_departements=["075"]))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (code, api_code)
    assert status.error_info.metadata["provider"] == "MEN"
    assert (status.retry is not None) == retry


def clear(
    request: men_pb2.GetScolariteByIdentityRequest, *names: str
) -> men_pb2.GetScolariteByIdentityRequest:
    """The request with identity fields cleared."""
    for name in names:
        request.identite.ClearField(name)  # type: ignore[arg-type]
    return request


@pytest.mark.parametrize(
    ("request_", "rules"),
    [
        (search(annee_scolaire=""), [("anneeScolaire", "00411")]),
        (search(annee_scolaire="2025/2026"), [("anneeScolaire", "00411")]),
        (search(annee_scolaire="26-27"), [("anneeScolaire", "00411")]),
        (search(code_etablissement="013273A"), [("codeEtablissement", "00410")]),
        (search(code_etablissement="0132733-"), [("codeEtablissement", "00410")]),
        (search(code_etablissement=""), [("codeEtablissement", "00415")]),
        (search(codes_bcn_departements=["013"], degre_etablissement="3D"), [("degreEtablissement", "00412")]),
        (search(codes_bcn_departements=["013"], degre_etablissement="2d"), [("degreEtablissement", "00412")]),
        (search(codes_bcn_departements=["013"], degre_etablissement=""), [("degreEtablissement", "00412")]),
        (
            search(codes_bcn_departements=["13"], degre_etablissement=""),
            [("degreEtablissement", "00412"), ("codesBcnDepartements", "00416")],
        ),
        (
            search(code_etablissement="0132733A", codes_bcn_departements=["013"]),
            [("codeEtablissement", "00419")],
        ),
        (
            search(code_etablissement="0132733A", codes_bcn_departements=["013"], codes_bcn_regions=["18"]),
            [("codeEtablissement", "00419")],
        ),
        (search(codes_bcn_departements=["013"], codes_bcn_regions=["18"]), [("codesBcnRegions", "00413")]),
        (search(codes_bcn_departements=["13"]), [("codesBcnDepartements", "00416")]),
        (search(codes_bcn_departements=["013", "2A"]), [("codesBcnDepartements", "00416")]),
        (search(codes_bcn_departements=["020"]), [("codesBcnDepartements", "00416")]),
        (search(codes_bcn_departements=[""]), [("codesBcnDepartements", "00414")]),
        (search(codes_bcn_regions=["19"]), [("codesBcnRegions", "00417")]),
        (search(codes_bcn_regions=["1"]), [("codesBcnRegions", "00417")]),
        (clear(search(), "sexe_etat_civil"), [("identite.sexeEtatCivil", "00427")]),
        (clear(search(), "jour_date_naissance"), [("identite.jourDateNaissance", "00424")]),
        (
            search(annee_scolaire="", code_etablissement="X"),
            [("codeEtablissement", "00410"), ("anneeScolaire", "00411")],
        ),
        (
            clear(search(annee_scolaire="x"), "sexe_etat_civil"),
            [("identite.sexeEtatCivil", "00427"), ("anneeScolaire", "00411")],
        ),
        (
            search(annee_scolaire="x", code_etablissement="0132733A", codes_bcn_regions=["18"]),
            [("codeEtablissement", "00419"), ("anneeScolaire", "00411")],
        ),
    ],
)
async def test_invalid_searches_are_refused_rule_by_rule(
    men: men_pb2_grpc.MenServiceAsyncStub,
    request_: men_pb2.GetScolariteByIdentityRequest,
    rules: list[tuple[str, str]],
) -> None:
    """Every broken rule is one violation with its code, in the real order: identity, geography, year."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await men.GetScolariteByIdentity(request_)
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, rules[0][1])
    assert status.broken_rules == rules
    assert status.bad_request is not None
    told = status.message + " ".join(v.description for v in status.bad_request.field_violations)
    assert "Roche" not in told and "Léa" not in told


@pytest.mark.parametrize(
    "request_",
    [
        search(annee_scolaire="2025-2027"),
        search(annee_scolaire=str(THIS_YEAR - 11)),
        search(code_etablissement="01327334"),
        search(code_etablissement="0132733A", degre_etablissement="3D"),
        search(person("Roche", "Léa Anne Marie Rose", 2013, 4, 9, "F")),
    ],
    ids=[
        "two-years-apart",
        "eleven-years-back",
        "uai-of-8-digits",
        "degree-ignored-with-a-uai",
        "four-first-names",
    ],
)
async def test_what_the_real_api_takes_is_taken(
    men: men_pb2_grpc.MenServiceAsyncStub, request_: men_pb2.GetScolariteByIdentityRequest
) -> None:
    """The school year's format only, a UAI's 8th character a word character, no first-name count."""
    call = men.GetScolariteByIdentity(request_)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call
    assert await call.code() != grpc.StatusCode.INVALID_ARGUMENT


async def test_v5_adds_the_boarding_regime_and_v4_never_carries_it(
    men: men_pb2_grpc.MenServiceAsyncStub,
) -> None:
    """v5 answers the regime with its BCN label; v4 has no such field, not even as unknown bytes."""
    v5 = await men.GetScolariteV5ByIdentity(
        men_pb2.GetScolariteV5ByIdentityRequest.FromString(
            search(annee_scolaire="2026-2027").SerializeToString()
        )
    )
    assert as_json(v5.data)["regime_pensionnat"] == {
        "code": "2",
        "libelle": "Demi-pensionnaire dans l'établissement",
    }
    v4 = await men.GetScolariteByIdentity(search(annee_scolaire="2026-2027"))
    assert "regime_pensionnat" not in as_json(v4.data)
    assert b"Demi-pensionnaire" not in v4.SerializeToString()


@pytest.mark.parametrize(
    ("criterion", "regime"),
    [
        ({"code_etablissement": "0690128D"}, None),
        ({"code_etablissement": "0693456C"}, {"code": "9", "libelle": None}),
    ],
    ids=["no-regime", "code-outside-the-table"],
)
async def test_v5_regime_null_or_unlabelled(
    men: men_pb2_grpc.MenServiceAsyncStub, criterion: dict[str, str], regime: dict[str, str] | None
) -> None:
    """No regime code: the object is null; a code outside the BCN table keeps its code, label null."""
    who = (
        person("Perrin", "Enzo", 2009, 5, 5, "M")
        if regime is None
        else person("Colin", "Louise", 2011, 11, 11, "F")
    )
    request = men_pb2.GetScolariteV5ByIdentityRequest(identite=who, annee_scolaire="2026-2027", **criterion)
    response = await men.GetScolariteV5ByIdentity(request)
    assert as_json(response.data)["regime_pensionnat"] == regime
