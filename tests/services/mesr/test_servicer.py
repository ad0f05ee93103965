"""The mesr service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf.message import Message

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.mesr.v1 import mesr_pb2, mesr_pb2_grpc
from contract.v3_json import render
from tests.rich_status import rich_status


def person(name: str, first: str, year: int, month: int, day: int, sex: str) -> identity_pb2.IdentityPivot:
    """An identity pivot as the MESR takes it: one first name, full birth date, sex."""
    return identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=[first],
        annee_date_naissance=year,
        mois_date_naissance=month,
        jour_date_naissance=day,
        sexe_etat_civil=sex,
    )


def bernard(**overrides: object) -> identity_pb2.IdentityPivot:
    """The sandbox's student in initial education, with fields overridden."""
    fields: dict[str, object] = {
        "nom_naissance": "Bernard",
        "prenoms": ["Camille"],
        "annee_date_naissance": 2005,
        "mois_date_naissance": 5,
        "jour_date_naissance": 17,
        "sexe_etat_civil": "F",
        "code_cog_insee_commune_naissance": "29019",
    }
    fields.update(overrides)
    return identity_pb2.IdentityPivot(**fields)  # type: ignore[arg-type]


BERNARD_DATA = {
    "admissions": [
        {
            "date_debut": "2026-09-01",
            "date_fin": "2027-08-31",
            "est_inscrit": True,
            "regime_formation": {"libelle": "formation initiale", "code": "RF1"},
            "code_cog_insee_commune": "29019",
            "etablissement_etudes": {"uai": "0290346U", "nom": "UNIVERSITE DE BRETAGNE OCCIDENTALE"},
        }
    ],
    "identite": {"nom_naissance": "BERNARD", "prenom": "CAMILLE", "date_naissance": "2005-05-17"},
}


def as_json(message: Message) -> dict[str, object]:
    """The v3 JSON form of a data object."""
    return render(message)


async def test_student_by_identity_gets_the_v3_data_object(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """The student in initial education comes back whole, with the v3 JSON field names."""
    response = await mesr.GetStatutEtudiantByIdentity(
        mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=bernard())
    )
    assert as_json(response.data) == BERNARD_DATA


async def test_student_by_ine_gets_the_same_answer(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """The INE finds the same student, whatever the case of its letters."""
    response = await mesr.GetStatutEtudiantByIne(mesr_pb2.GetStatutEtudiantByIneRequest(ine="2301456789k"))
    assert as_json(response.data) == BERNARD_DATA


async def test_continuing_education_student(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """An adult in formation continue has a RF5 admission."""
    response = await mesr.GetStatutEtudiantByIdentity(
        mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=person("Roussel", "Thierry", 1981, 10, 2, "M"))
    )
    (admission,) = response.data.admissions
    assert (admission.regime_formation.code, admission.regime_formation.libelle) == (
        "RF5",
        "formation continue",
    )
    assert admission.est_inscrit is True
    assert admission.etablissement_etudes.uai == "0753471R"


async def test_admitted_student_is_not_enrolled(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """A student admitted whose fees are not settled has est_inscrit false, found by INE too."""
    by_identity = await mesr.GetStatutEtudiantByIdentity(
        mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=person("Garnier", "Inès", 2008, 2, 11, "F"))
    )
    by_ine = await mesr.GetStatutEtudiantByIne(mesr_pb2.GetStatutEtudiantByIneRequest(ine="240234567HK"))
    assert by_identity.data == by_ine.data
    (admission,) = by_identity.data.admissions
    assert admission.est_inscrit is False
    assert admission.regime_formation.code == "RF2"
    assert by_identity.data.identite.prenom == "INÈS"


async def test_student_with_several_admissions(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """Each establishment that admitted the student is one admission, enrolled or not."""
    response = await mesr.GetStatutEtudiantByIne(mesr_pb2.GetStatutEtudiantByIneRequest(ine="220345678AB"))
    admissions = as_json(response.data)["admissions"]
    assert isinstance(admissions, list)
    assert [(a["regime_formation"]["code"], a["est_inscrit"]) for a in admissions] == [
        ("RF1", True),
        ("RF4", False),
    ]
    assert [a["etablissement_etudes"]["uai"] for a in admissions] == ["0691774D", "0693623K"]


async def test_france_connect_answer_has_no_identite(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """A FranceConnect user is looked up by the first of their first names; identite is left out."""
    subject = identity_pb2.FranceConnectSubject(
        access_token="opaque",
        identite_pivot=bernard(
            prenoms=["Camille", "Anne", "Marie", "Louise"], code_cog_insee_pays_naissance="99100"
        ),
    )
    response = await mesr.GetStatutEtudiantByFranceConnect(
        mesr_pb2.GetStatutEtudiantByFranceConnectRequest(france_connect=subject)
    )
    assert "identite" not in response.data.DESCRIPTOR.fields_by_name
    assert as_json(response.data) == {"admissions": BERNARD_DATA["admissions"]}


async def test_france_connect_needs_the_identity_resolved_by_the_gateway(
    mesr: mesr_pb2_grpc.MesrServiceAsyncStub,
) -> None:
    """A FranceConnect subject without the gateway's resolved identity is refused under 00366."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesr.GetStatutEtudiantByFranceConnect(
            mesr_pb2.GetStatutEtudiantByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="opaque")
            )
        )
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "00366")
    assert status.violated_fields == {"franceConnect.identitePivot"}


async def test_not_found_detail_depends_on_the_lookup(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """Someone unknown is 25003 from MESRI, with the v3 text of the lookup, their name not echoed."""
    stranger = person("Zyxwvut", "Quentin", 2001, 3, 9, "M")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesr.GetStatutEtudiantByIdentity(mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=stranger))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.NOT_FOUND, "25003")
    assert status.error_info.metadata["provider"] == "MESRI"
    assert status.localized is not None
    assert "avec les critères de recherche fournis" in status.localized.message
    assert "Zyxwvut" not in status.message + status.localized.message
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesr.GetStatutEtudiantByFranceConnect(
            mesr_pb2.GetStatutEtudiantByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(
                    access_token="opaque", identite_pivot=stranger
                )
            )
        )
    status = rich_status(caught.value)
    assert status.api_code == "25003"
    assert status.localized is not None
    assert status.localized.message.endswith("Aucun étudiant n'a pu être trouvé.")


ERROR_PATHS = [
    (person("Inconnu", "Hugo", 2003, 1, 1, "M"), "0000000003N", grpc.StatusCode.NOT_FOUND, "25003", False),
    (
        person("Indisponible", "Jade", 2002, 6, 21, "F"),
        "0000000001U",
        grpc.StatusCode.UNAVAILABLE,
        "25001",
        True,
    ),
    (
        person("Delai", "Arthur", 2001, 9, 9, "M"),
        "0000000002T",
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "25002",
        True,
    ),
    (person("Etrange", "Manon", 2000, 3, 30, "F"), "0000000999X", grpc.StatusCode.UNKNOWN, "25999", False),
]
ERROR_IDS = ["not-found", "unavailable", "timeout", "unknown-answer"]


@pytest.mark.parametrize(("identity", "ine", "code", "api_code", "retry"), ERROR_PATHS, ids=ERROR_IDS)
async def test_sandbox_error_paths(
    mesr: mesr_pb2_grpc.MesrServiceAsyncStub,
    identity: identity_pb2.IdentityPivot,
    ine: str,
    code: grpc.StatusCode,
    api_code: str,
    retry: bool,
) -> None:
    """Each error person yields its status and code by identity and by INE, RetryInfo where it helps."""
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: mesr.GetStatutEtudiantByIdentity(
            mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=identity)
        ),
        lambda: mesr.GetStatutEtudiantByIne(mesr_pb2.GetStatutEtudiantByIneRequest(ine=ine)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        status = rich_status(caught.value)
        assert (status.code, status.api_code) == (code, api_code)
        assert status.error_info.metadata["provider"] == "MESRI"
        assert (status.retry is not None) == retry


@pytest.mark.parametrize(
    ("overrides", "rules"),
    [
        ({"prenoms": []}, [("prenoms", "00421")]),
        ({"nom_naissance": ""}, [("nomNaissance", "00420")]),
        ({"sexe_etat_civil": ""}, [("sexeEtatCivil", "00427")]),
        ({"sexe_etat_civil": "X"}, [("sexeEtatCivil", "00427")]),
        ({"jour_date_naissance": None}, [("jourDateNaissance", "00424")]),
        ({"mois_date_naissance": None, "jour_date_naissance": None}, [("moisDateNaissance", "00423")]),
        ({"mois_date_naissance": 2, "jour_date_naissance": 30}, [("jourDateNaissance", "00425")]),
        ({"code_cog_insee_commune_naissance": "2901"}, [("codeCogInseeCommuneNaissance", "00365")]),
        (
            {"nom_naissance": "", "prenoms": [" "], "sexe_etat_civil": "Z"},
            [("nomNaissance", "00420"), ("prenoms", "00421"), ("sexeEtatCivil", "00427")],
        ),
    ],
)
async def test_invalid_identities_are_refused_rule_by_rule(
    mesr: mesr_pb2_grpc.MesrServiceAsyncStub, overrides: dict[str, object], rules: list[tuple[str, str]]
) -> None:
    """Each broken rule is one violation with its code, in the real order; the values are not echoed."""
    cleared = [name for name, value in overrides.items() if value is None]
    identity = bernard(**{name: value for name, value in overrides.items() if value is not None})
    for name in cleared:
        identity.ClearField(name)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesr.GetStatutEtudiantByIdentity(mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=identity))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, rules[0][1])
    assert status.broken_rules == [(f"identite.{name}", code) for name, code in rules]
    assert status.bad_request is not None
    told = status.message + " ".join(v.description for v in status.bad_request.field_violations)
    assert "Bernard" not in told and "Camille" not in told


async def test_birth_country_is_not_required(mesr: mesr_pb2_grpc.MesrServiceAsyncStub) -> None:
    """The MESR pivot has no birth country; a pivot without one is answered."""
    response = await mesr.GetStatutEtudiantByIdentity(
        mesr_pb2.GetStatutEtudiantByIdentityRequest(identite=bernard(code_cog_insee_commune_naissance=""))
    )
    assert len(response.data.admissions) == 1


@pytest.mark.parametrize(
    "ine", ["", "2301456789", "2301456789KK", "2301456789-", "230145 789K", "23014567890É"]
)
async def test_malformed_ine_is_refused(mesr: mesr_pb2_grpc.MesrServiceAsyncStub, ine: str) -> None:
    """An INE that is not 11 letters or digits is refused under 00360, without being echoed."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesr.GetStatutEtudiantByIne(mesr_pb2.GetStatutEtudiantByIneRequest(ine=ine))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "00360")
    assert status.violated_fields == {"ine"}
    assert status.bad_request is not None
    if ine:
        assert ine not in status.message + " ".join(
            v.description for v in status.bad_request.field_violations
        )
