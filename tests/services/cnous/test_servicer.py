"""The cnous service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from apiparticulier.cnous.v1 import cnous_pb2, cnous_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from contract.v3_json import render
from tests.rich_status import rich_status


def person(
    name: str, firsts: list[str], year: int, month: int, day: int, sex: str = ""
) -> identity_pb2.IdentityPivot:
    """An identity pivot as the Cnous takes it: full birth date, sex optional."""
    return identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=firsts,
        annee_date_naissance=year,
        mois_date_naissance=month,
        jour_date_naissance=day,
        sexe_etat_civil=sex,
    )


def mercier(**overrides: object) -> identity_pb2.IdentityPivot:
    """The sandbox's échelon 0bis student, with fields overridden."""
    identity = person("Mercier", ["Zoé"], 2006, 3, 21, "F")
    for name, value in overrides.items():
        if value is None:
            identity.ClearField(name)  # type: ignore[arg-type]
        elif name == "prenoms":
            del identity.prenoms[:]
            identity.prenoms.extend(value)  # type: ignore[arg-type]
        else:
            setattr(identity, name, value)
    return identity


MERCIER_DATA = {
    "statut_boursier": {"est_boursier": True, "est_radie": False, "date_radiation": None},
    "periode_versement_bourse": {"date_rentree": "2026-09-01", "duree": 10},
    "etablissement_etudes": {"nom_commune": "RENNES", "nom_etablissement": "UNIVERSITE DE RENNES"},
    "echelon_bourse": {"echelon": "0bis", "echelon_bourse_regionale_provisoire": False},
    "email": "zoe.mercier@etu.example",
    "identite": {
        "nom": "MERCIER",
        "prenoms": ["ZOÉ"],
        "date_naissance": "2006-03-21",
        "nom_commune_naissance": "VANNES",
        "sexe": "F",
    },
}


def as_json(message: Message) -> dict[str, object]:
    """The v4 JSON form of a data object."""
    return render(message)


async def test_boursier_by_identity_gets_the_v4_data_object(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub,
) -> None:
    """The échelon 0bis student comes back whole, with the v4 JSON field names."""
    response = await cnous.GetEtudiantBoursierByIdentity(
        cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=mercier())
    )
    assert as_json(response.data) == MERCIER_DATA


async def test_sex_is_optional_and_ine_finds_the_same_student(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub,
) -> None:
    """A pivot without sex is answered, and the INE finds the same student."""
    by_identity = await cnous.GetEtudiantBoursierByIdentity(
        cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=mercier(sexe_etat_civil=""))
    )
    by_ine = await cnous.GetEtudiantBoursierByIne(
        cnous_pb2.GetEtudiantBoursierByIneRequest(ine="2406123457a")
    )
    assert as_json(by_identity.data) == as_json(by_ine.data) == MERCIER_DATA


ECHELONS = [
    ("Mercier", ["Zoé"], (2006, 3, 21), "2406123457A", "0bis"),
    ("Lambert", ["Noah"], (2005, 7, 8), "2305234568B", "1"),
    ("Girard", ["Chloé"], (2004, 1, 14), "2204345679C", "2"),
    ("Bonnet", ["Maël"], (2006, 11, 25), "2406456780D", "3"),
    ("Faure", ["Lina"], (2005, 9, 2), "2305567891E", "4"),
    ("Andre", ["Théo"], (2003, 4, 30), "2103678902F", "5"),
    ("Chevalier", ["Léna", "Marie"], (2004, 6, 19), "220478901GH", "6"),
    ("Blanc", ["Yanis"], (2002, 12, 12), "200289012JK", "7"),
]


@pytest.mark.parametrize(
    ("name", "firsts", "birth", "ine", "echelon"), ECHELONS, ids=[e[4] for e in ECHELONS]
)
async def test_every_echelon_is_served(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub,
    name: str,
    firsts: list[str],
    birth: tuple[int, int, int],
    ine: str,
    echelon: str,
) -> None:
    """One boursier per échelon, 0bis to 7, by identity and by INE alike."""
    by_identity = await cnous.GetEtudiantBoursierByIdentity(
        cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=person(name, firsts, *birth))
    )
    by_ine = await cnous.GetEtudiantBoursierByIne(cnous_pb2.GetEtudiantBoursierByIneRequest(ine=ine))
    assert by_identity.data == by_ine.data
    assert by_identity.data.statut_boursier.est_boursier is True
    assert by_identity.data.echelon_bourse.echelon == echelon
    assert list(by_identity.data.identite.prenoms) == [first.upper() for first in firsts]


async def test_provisional_regional_echelon(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """A regional scholarship's échelon may be provisional."""
    response = await cnous.GetEtudiantBoursierByIne(
        cnous_pb2.GetEtudiantBoursierByIneRequest(ine="2204345679C")
    )
    assert as_json(response.data)["echelon_bourse"] == {
        "echelon": "2",
        "echelon_bourse_regionale_provisoire": True,
    }


async def test_struck_off_student_has_a_radiation_date(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """A student struck off keeps the scholarship status with est_radie and the date."""
    response = await cnous.GetEtudiantBoursierByIdentity(
        cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=person("Faure", ["Lina"], 2005, 9, 2, "F"))
    )
    assert as_json(response.data)["statut_boursier"] == {
        "est_boursier": True,
        "est_radie": True,
        "date_radiation": "2026-11-03",
    }


async def test_student_without_scholarship(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """A student the Cnous knows without a scholarship: nothing paid, a duree of 0 that stays 0."""
    response = await cnous.GetEtudiantBoursierByIdentity(
        cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=person("Gauthier", ["Emma"], 2005, 2, 27))
    )
    data = as_json(response.data)
    assert data["statut_boursier"] == {"est_boursier": False, "est_radie": False, "date_radiation": None}
    assert data["periode_versement_bourse"] == {"date_rentree": "2026-09-01", "duree": 0.0}
    assert data["etablissement_etudes"] == {
        "nom_commune": "TOULOUSE",
        "nom_etablissement": "UNIVERSITE TOULOUSE CAPITOLE",
    }


async def test_france_connect_answer_has_no_identite(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """A FranceConnect user gets everything but identite, even with more first names than allowed."""
    subject = identity_pb2.FranceConnectSubject(
        access_token="opaque",
        identite_pivot=person("Chevalier", ["Léna", "Marie", "Anne", "Rose"], 2004, 6, 19, "F"),
    )
    response = await cnous.GetEtudiantBoursierByFranceConnect(
        cnous_pb2.GetEtudiantBoursierByFranceConnectRequest(france_connect=subject)
    )
    assert "identite" not in response.data.DESCRIPTOR.fields_by_name
    data = as_json(response.data)
    assert set(data) == {
        "statut_boursier",
        "periode_versement_bourse",
        "etablissement_etudes",
        "echelon_bourse",
        "email",
    }
    assert data["echelon_bourse"] == {"echelon": "6", "echelon_bourse_regionale_provisoire": False}


async def test_france_connect_needs_the_identity_resolved_by_the_gateway(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub,
) -> None:
    """A FranceConnect subject without the gateway's resolved identity is refused under 00366."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnous.GetEtudiantBoursierByFranceConnect(
            cnous_pb2.GetEtudiantBoursierByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="opaque")
            )
        )
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "00366")
    assert status.violated_fields == {"franceConnect.identitePivot"}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("identity", "Aucun étudiant boursier n'a pu être trouvé avec les critères de recherche fournis."),
        ("ine", "Veuillez vérifier que l'identifiant correspond au périmètre couvert par l'API."),
        ("france_connect", ": Aucun étudiant boursier n'a pu être trouvé."),
    ],
)
async def test_not_found_detail_depends_on_the_lookup(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub, method: str, expected: str
) -> None:
    """Someone unknown is 26003 from CNOUS, with the v4 text of the lookup, their name not echoed."""
    stranger = person("Zyxwvut", ["Quentin"], 2001, 3, 9, "M")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "identity": lambda: cnous.GetEtudiantBoursierByIdentity(
            cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=stranger)
        ),
        "ine": lambda: cnous.GetEtudiantBoursierByIne(
            cnous_pb2.GetEtudiantBoursierByIneRequest(ine="9999999999Z")
        ),
        "france_connect": lambda: cnous.GetEtudiantBoursierByFranceConnect(
            cnous_pb2.GetEtudiantBoursierByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="t", identite_pivot=stranger)
            )
        ),
    }
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await calls[method]()
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.NOT_FOUND, "26003")
    assert status.error_info.metadata["provider"] == "CNOUS"
    assert status.retry is None
    assert status.localized is not None and status.localized.message.endswith(expected)
    assert "Zyxwvut" not in status.message + status.localized.message


ERROR_PATHS = [
    (person("Inconnu", ["Sacha"], 2004, 1, 1), "0000000003N", grpc.StatusCode.NOT_FOUND, "26003", False),
    (person("Indisponible", ["Rose"], 2003, 5, 5), "0000000001U", grpc.StatusCode.UNAVAILABLE, "26001", True),
    (
        person("Delai", ["Ethan"], 2002, 8, 18),
        "0000000002T",
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "26002",
        True,
    ),
    (person("Etrange", ["Alice"], 2001, 10, 10), "0000000999X", grpc.StatusCode.UNKNOWN, "26999", False),
]


@pytest.mark.parametrize(
    ("identity", "ine", "code", "api_code", "retry"),
    ERROR_PATHS,
    ids=["not-found", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub,
    identity: identity_pb2.IdentityPivot,
    ine: str,
    code: grpc.StatusCode,
    api_code: str,
    retry: bool,
) -> None:
    """Each error person yields its status and code on every lookup, RetryInfo where it helps."""
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: cnous.GetEtudiantBoursierByIdentity(
            cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=identity)
        ),
        lambda: cnous.GetEtudiantBoursierByIne(cnous_pb2.GetEtudiantBoursierByIneRequest(ine=ine)),
        lambda: cnous.GetEtudiantBoursierByFranceConnect(
            cnous_pb2.GetEtudiantBoursierByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="t", identite_pivot=identity)
            )
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        status = rich_status(caught.value)
        assert (status.code, status.api_code) == (code, api_code)
        assert status.error_info.metadata["provider"] == "CNOUS"
        assert (status.retry is not None) == retry


@pytest.mark.parametrize(
    ("overrides", "rules"),
    [
        ({"prenoms": []}, [("identite.prenoms", "00421")]),
        ({"nom_naissance": "  "}, [("identite.nomNaissance", "00420")]),
        ({"annee_date_naissance": None}, [("identite.anneeDateNaissance", "00422")]),
        ({"mois_date_naissance": 13}, [("identite.moisDateNaissance", "00423")]),
        ({"jour_date_naissance": 32}, [("identite.jourDateNaissance", "00424")]),
        ({"mois_date_naissance": 2, "jour_date_naissance": 30}, [("identite.jourDateNaissance", "00425")]),
        (
            {"prenoms": [], "nom_naissance": "M3RCIER", "mois_date_naissance": None},
            [
                ("identite.nomNaissance", "00420"),
                ("identite.prenoms", "00421"),
                ("identite.moisDateNaissance", "00423"),
            ],
        ),
    ],
)
async def test_invalid_identities_are_refused_rule_by_rule(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub, overrides: dict[str, object], rules: list[tuple[str, str]]
) -> None:
    """Each broken civility rule is one violation with its code, in order; sex and birthplace unchecked."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnous.GetEtudiantBoursierByIdentity(
            cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=mercier(**overrides))
        )
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, rules[0][1])
    assert status.broken_rules == rules
    assert status.bad_request is not None
    told = status.message + " ".join(v.description for v in status.bad_request.field_violations)
    assert "Mercier" not in told


@pytest.mark.parametrize(
    "ine", ["", "24061234", "2406123457AA", "2406_23457A", "240612345 A", "ABCDEFGHIJK", "2406123457O"]
)
async def test_malformed_ine_is_refused(cnous: cnous_pb2_grpc.CnousServiceAsyncStub, ine: str) -> None:
    """An INE of none of the four formats is refused under 00360, without being echoed."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnous.GetEtudiantBoursierByIne(cnous_pb2.GetEtudiantBoursierByIneRequest(ine=ine))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "00360")
    assert status.violated_fields == {"ine"}
    assert status.bad_request is not None
    if ine:
        assert ine not in status.message + " ".join(
            v.description for v in status.bad_request.field_violations
        )


async def test_v3_shape_puts_est_boursier_at_the_top(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """By identity and by INE, v3 is v4 with est_boursier where statut_boursier was, the rest equal."""
    by_identity = await cnous.GetEtudiantBoursierV3ByIdentity(
        cnous_pb2.GetEtudiantBoursierV3ByIdentityRequest(identite=mercier())
    )
    by_ine = await cnous.GetEtudiantBoursierV3ByIne(
        cnous_pb2.GetEtudiantBoursierV3ByIneRequest(ine="2406123457A")
    )
    v3 = {key: value for key, value in MERCIER_DATA.items() if key != "statut_boursier"}
    assert as_json(by_identity.data) == as_json(by_ine.data) == {**v3, "est_boursier": True}


@pytest.mark.parametrize(
    ("identity", "est_boursier"),
    [(person("Faure", ["Lina"], 2005, 9, 2, "F"), True), (person("Gauthier", ["Emma"], 2005, 2, 27), False)],
    ids=["struck-off", "not-a-holder"],
)
async def test_v3_tells_nothing_of_a_striking_off(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub, identity: identity_pb2.IdentityPivot, est_boursier: bool
) -> None:
    """est_boursier is v4's statut_boursier.est_boursier, false kept; est_radie and its date go nowhere."""
    response = await cnous.GetEtudiantBoursierV3ByIdentity(
        cnous_pb2.GetEtudiantBoursierV3ByIdentityRequest(identite=identity)
    )
    assert response.data.HasField("est_boursier") and response.data.est_boursier is est_boursier
    assert b"2026-11-03" not in response.SerializeToString()
    assert not UnknownFieldSet(response.data)


async def test_v3_france_connect_answer_has_no_identite(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """A FranceConnect user gets the v3 object without identite, which does not travel as bytes either."""
    subject = identity_pb2.FranceConnectSubject(
        access_token="opaque", identite_pivot=person("Chevalier", ["Léna", "Marie"], 2004, 6, 19, "F")
    )
    response = await cnous.GetEtudiantBoursierV3ByFranceConnect(
        cnous_pb2.GetEtudiantBoursierV3ByFranceConnectRequest(france_connect=subject)
    )
    assert set(as_json(response.data)) == {
        "est_boursier",
        "periode_versement_bourse",
        "etablissement_etudes",
        "echelon_bourse",
        "email",
    }
    assert b"CHEVALIER" not in response.SerializeToString()


async def test_v3_refuses_and_fails_as_v4_does(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """The same checks and provider errors: 00424, 00360, 26003, 26001."""
    calls: list[tuple[Awaitable[object], str]] = [
        (
            cnous.GetEtudiantBoursierV3ByIdentity(
                cnous_pb2.GetEtudiantBoursierV3ByIdentityRequest(identite=mercier(jour_date_naissance=None))
            ),
            "00424",
        ),
        (
            cnous.GetEtudiantBoursierV3ByIne(cnous_pb2.GetEtudiantBoursierV3ByIneRequest(ine="24061234")),
            "00360",
        ),
        (
            cnous.GetEtudiantBoursierV3ByIne(cnous_pb2.GetEtudiantBoursierV3ByIneRequest(ine="0000000003N")),
            "26003",
        ),
        (
            cnous.GetEtudiantBoursierV3ByFranceConnect(
                cnous_pb2.GetEtudiantBoursierV3ByFranceConnectRequest(
                    france_connect=identity_pb2.FranceConnectSubject(
                        access_token="t", identite_pivot=person("Indisponible", ["Rose"], 2003, 5, 5)
                    )
                )
            ),
            "26001",
        ),
    ]
    for call, code in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert rich_status(caught.value).api_code == code


async def test_v5_adds_the_ine_in_every_modality(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """v5 is v4 and the student's INE, by identity, by INE and for a FranceConnect user (without identite)."""
    by_identity = await cnous.GetEtudiantBoursierV5ByIdentity(
        cnous_pb2.GetEtudiantBoursierV5ByIdentityRequest(identite=mercier())
    )
    assert as_json(by_identity.data) == {**MERCIER_DATA, "ine": "2406123457A"}
    by_ine = await cnous.GetEtudiantBoursierV5ByIne(
        cnous_pb2.GetEtudiantBoursierV5ByIneRequest(ine="2406123457a")
    )
    assert by_ine.data == by_identity.data
    subject = identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=mercier())
    by_france_connect = await cnous.GetEtudiantBoursierV5ByFranceConnect(
        cnous_pb2.GetEtudiantBoursierV5ByFranceConnectRequest(france_connect=subject)
    )
    expected = {key: value for key, value in MERCIER_DATA.items() if key != "identite"}
    assert as_json(by_france_connect.data) == {**expected, "ine": "2406123457A"}
    v4 = await cnous.GetEtudiantBoursierByIdentity(
        cnous_pb2.GetEtudiantBoursierByIdentityRequest(identite=mercier())
    )
    assert b"2406123457A" not in v4.SerializeToString()


async def test_campaign_year_picks_the_campaign_in_every_version(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub,
) -> None:
    """2025 is another grant; the latest grant's own campaign is the default; none earlier: 26003."""
    earlier = await cnous.GetEtudiantBoursierV5ByIdentity(
        cnous_pb2.GetEtudiantBoursierV5ByIdentityRequest(identite=mercier(), campaign_year=2025)
    )
    assert earlier.data.periode_versement_bourse.date_rentree == "2025-09-01"
    assert earlier.data.echelon_bourse.echelon == "1"
    latest = await cnous.GetEtudiantBoursierV3ByIne(
        cnous_pb2.GetEtudiantBoursierV3ByIneRequest(ine="2406123457A", campaign_year=2026)
    )
    assert latest.data.echelon_bourse.echelon == "0bis"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnous.GetEtudiantBoursierByIne(
            cnous_pb2.GetEtudiantBoursierByIneRequest(ine="2406123457A", campaign_year=2022)
        )
    assert rich_status(caught.value).api_code == "26003"


@pytest.mark.parametrize("year", [2020, 0, -2025, 10000])
async def test_campaign_year_before_2021_or_not_four_digits_is_refused(
    cnous: cnous_pb2_grpc.CnousServiceAsyncStub, year: int
) -> None:
    """00368 in every modality: after a valid identity or INE, alone for FranceConnect."""
    subject = identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=mercier())
    calls: list[Callable[[], Awaitable[Message]]] = [
        lambda: cnous.GetEtudiantBoursierV5ByIdentity(
            cnous_pb2.GetEtudiantBoursierV5ByIdentityRequest(identite=mercier(), campaign_year=year)
        ),
        lambda: cnous.GetEtudiantBoursierByIne(
            cnous_pb2.GetEtudiantBoursierByIneRequest(ine="2406123457A", campaign_year=year)
        ),
        lambda: cnous.GetEtudiantBoursierV3ByFranceConnect(
            cnous_pb2.GetEtudiantBoursierV3ByFranceConnectRequest(france_connect=subject, campaign_year=year)
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        status = rich_status(caught.value)
        assert (status.code, status.api_code, status.violated_fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "00368",
            {"campaignYear"},
        )


async def test_a_bad_ine_is_refused_before_the_campaign(cnous: cnous_pb2_grpc.CnousServiceAsyncStub) -> None:
    """The INE is checked first, as in the real API: 00360 alone."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnous.GetEtudiantBoursierV5ByIne(
            cnous_pb2.GetEtudiantBoursierV5ByIneRequest(ine="24061234", campaign_year=2019)
        )
    assert rich_status(caught.value).api_code == "00360"
