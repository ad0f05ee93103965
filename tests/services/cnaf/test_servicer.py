"""The cnaf service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from functools import partial

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from services.cnaf.app import CNAF
from services.cnaf.sandbox import SandboxCnafBackend
from services.cnaf.servicer import CnafServicer
from services.cnaf.settings import CnafSettings
from services.common.sandbox import SandboxPerson, SandboxPopulation
from services.common.settings import BackendKind
from tests.conftest import running
from tests.people import lefebvre
from tests.rich_status import rich_status


def person(name: str, first: str, year: int, month: int, day: int, sex: str) -> identity_pb2.IdentityPivot:
    """An identity pivot born in France."""
    return identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=[first],
        annee_date_naissance=year,
        mois_date_naissance=month,
        jour_date_naissance=day,
        sexe_etat_civil=sex,
        code_cog_insee_pays_naissance="99100",
    )


async def test_found_person_gets_the_v3_data_object(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """A sandbox person's quotient familial comes back whole, with the v3 JSON field names."""
    response = await cnaf.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre())
    )
    data = json_format.MessageToDict(response.data, preserving_proto_field_name=True)
    today = dt.date.today()
    assert data["quotient_familial"] == {
        "fournisseur": "CNAF",
        "valeur": 2550,
        "annee": today.year,
        "mois": today.month,
        "annee_calcul": 2026,
        "mois_calcul": 1,
    }
    assert [a["nom_naissance"] for a in data["allocataires"]] == ["LEFEBVRE", "DUBOIS"]
    assert data["allocataires"][0]["nom_usage"] == "DUBOIS"
    assert "nom_usage" not in data["allocataires"][1]
    assert [e["prenoms"] for e in data["enfants"]] == ["LÉA", "HUGO"]
    assert data["adresse"]["code_postal_ville"] == "08000 CHARLEVILLE-MEZIERES"


async def test_asked_month_comes_from_the_history(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """Asking a past month returns that month's value, dated that month."""
    today = dt.date.today()
    asked = (today.year - 1, 6) if (today.year - 1, 6) >= (today.year - 2, today.month) else None
    assert asked is not None
    response = await cnaf.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(), annee=2025, mois=6)
    )
    assert (response.data.quotient_familial.annee, response.data.quotient_familial.mois) == (2025, 6)
    assert response.data.quotient_familial.valeur == 2480


TODAY = dt.date.today()


@pytest.mark.parametrize(
    ("annee", "mois", "rules"),
    [
        (TODAY.year + 1, 1, [("annee", "00356")]),
        (TODAY.year - 3, 1, [("annee", "00356")]),
        (TODAY.year - 1, 13, [("mois", "00354")]),
        (TODAY.year, 13, [("mois", "00354"), ("mois", "00354")]),
        (TODAY.year - 2, 1, [("annee", "00355")]),
    ],
    ids=["next-year", "three-years-back", "month-13", "month-13-this-year-twice", "over-23-months"],
)
async def test_bad_reference_month_is_refused(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub, annee: int, mois: int, rules: list[tuple[str, str]]
) -> None:
    """A year out of N-2…N, a month out of 1-12 or in the future, a month over 23 months back: refused."""
    request = cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(), annee=annee, mois=mois)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetQuotientFamilialByIdentity(request)
    status = rich_status(caught.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.broken_rules == rules


async def test_annee_or_mois_alone_is_taken(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """Either one alone is the month asked, the other today's."""
    for request in (
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(), annee=TODAY.year),
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(), mois=1),
    ):
        response = await cnaf.GetQuotientFamilialByIdentity(request)
        assert response.data.quotient_familial.valeur > 0


async def test_msa_household_is_answered_by_the_msa(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """The MSA allocataire's quotient familial names the MSA as its provider, with no child."""
    response = await cnaf.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=person("Moreau", "Jean", 1958, 4, 3, "M"))
    )
    assert response.data.quotient_familial.fournisseur == "MSA"
    assert len(response.data.enfants) == 0


async def test_benefits_answer_with_presence_kept(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """A beneficiary has a start date; a non-beneficiary has none (null in v3), not an empty one."""
    rsa = await cnaf.GetRevenuSolidariteActiveByIdentity(
        cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=lefebvre())
    )
    assert rsa.data.est_beneficiaire is True
    assert rsa.data.HasField("avec_majoration") and rsa.data.avec_majoration is False
    assert rsa.data.date_debut_droit == "2021-04-01"
    aah = await cnaf.GetAllocationAdulteHandicapeByIdentity(
        cnaf_pb2.GetAllocationAdulteHandicapeByIdentityRequest(identite=lefebvre())
    )
    assert aah.data.est_beneficiaire is False
    assert not aah.data.HasField("date_debut_droit")


async def test_first_names_in_one_string_find_the_person_registered_with_a_list(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
) -> None:
    """ "Alexis Gérôme" as one string finds the sandbox's ["ALEXIS", "GÉRÔME"], as the list does."""
    for prenoms in (["Alexis Gérôme"], ["Alexis", "Gérôme"]):
        rsa = await cnaf.GetRevenuSolidariteActiveByIdentity(
            cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=lefebvre(prenoms=prenoms))
        )
        assert rsa.data.date_debut_droit == "2021-04-01"


async def test_a_person_registered_with_first_names_in_one_string_is_found_by_the_list() -> None:
    """A sandbox person written ["ALEXIS GÉRÔME"] is found by ["Alexis", "Gérôme"] and by "Alexis Gérôme"."""
    registered = {**json_format.MessageToDict(lefebvre()), "prenoms": ["ALEXIS GÉRÔME"]}
    rsa = {"est_beneficiaire": True, "date_debut_droit": "2024-02-01"}
    population = SandboxPopulation(
        [({"identite": registered}, SandboxPerson("one string", {"revenu_solidarite_active": rsa}))]
    )
    assembly = replace(CNAF, backends={BackendKind.SANDBOX: lambda _: SandboxCnafBackend(population)})
    async with running(assembly.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        for prenoms in (["Alexis", "Gérôme"], ["Alexis Gérôme"]):
            response = await stub.GetRevenuSolidariteActiveByIdentity(
                cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=lefebvre(prenoms=prenoms))
            )
            assert response.data.date_debut_droit == "2024-02-01"


async def test_unknown_person_is_not_found_with_the_contract_code(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
) -> None:
    """Someone outside the sandbox is NOT_FOUND 35003 from CNAF & MSA, without their name echoed."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(
                identite=person("Zyxwvut", "Quentin", 1971, 3, 9, "M")
            )
        )
    status = rich_status(caught.value)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert status.api_code == "35003"
    assert status.error_info.metadata["provider"] == "CNAF & MSA"
    assert status.localized is not None and status.localized.locale == "fr-FR"
    assert "Zyxwvut" not in status.message + status.localized.message


@pytest.mark.parametrize(
    ("identity", "code", "api_code", "retry"),
    [
        (person("Inconnu", "Paul", 1990, 1, 1, "M"), grpc.StatusCode.NOT_FOUND, "35003", False),
        (person("Indisponible", "Lucie", 1985, 7, 14, "F"), grpc.StatusCode.UNAVAILABLE, "37001", True),
        (person("Delai", "Marc", 1979, 2, 28, "M"), grpc.StatusCode.DEADLINE_EXCEEDED, "37002", True),
        (person("Etrange", "Claire", 1992, 10, 5, "F"), grpc.StatusCode.UNKNOWN, "37999", False),
    ],
    ids=["not-found", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
    identity: identity_pb2.IdentityPivot,
    code: grpc.StatusCode,
    api_code: str,
    retry: bool,
) -> None:
    """Each error person yields its status, its code and RetryInfo exactly where a retry helps."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetPrimeActiviteByIdentity(cnaf_pb2.GetPrimeActiviteByIdentityRequest(identite=identity))
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (code, api_code)
    assert (status.retry is not None) == retry


@pytest.mark.parametrize(
    ("overrides", "month", "rules"),
    [
        (
            {"nom_naissance": "", "sexe_etat_civil": "Z", "prenoms": ["A1"]},
            {"annee": TODAY.year + 1},
            [
                ("annee", "00356"),
                ("identite.sexeEtatCivil", "00427"),
                ("identite.prenoms", "00367"),
                ("identite.nomNaissance", "00420"),
            ],
        ),
        (
            {"nom_naissance": "", "code_cog_insee_commune_naissance": "8480"},
            {"annee": TODAY.year + 1},
            [("identite.codeCogInseeCommuneNaissance", "00365"), ("identite.nomNaissance", "00420")],
        ),
    ],
    ids=["in-chain-order", "the-birthplace-replaces-what-came-before"],
)
async def test_the_quotient_familial_chain_reports_every_broken_rule(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
    overrides: dict[str, object],
    month: dict[str, int],
    rules: list[tuple[str, str]],
) -> None:
    """The month's rules come first, then the CNAV chain's; a bad birthplace drops what came before."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetQuotientFamilialByIdentity(
            cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(**overrides), **month)
        )
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, rules[0][1])
    assert status.broken_rules == rules
    described = " ".join(v.description for v in status.bad_request.field_violations)  # type: ignore[union-attr]
    assert "Lefebvre" not in described and "8480" not in described


async def test_france_connect_needs_the_identity_resolved_by_the_gateway(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
) -> None:
    """A FranceConnect subject the gateway did not resolve is refused; a resolved one is answered."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetQuotientFamilialByFranceConnect(
            cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="opaque")
            )
        )
    assert rich_status(caught.value).violated_fields == {"franceConnect.identitePivot"}
    response = await cnaf.GetQuotientFamilialByFranceConnect(
        cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
            france_connect=identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=lefebvre())
        )
    )
    assert response.data.quotient_familial.valeur == 2550


async def test_request_id_is_echoed_or_refused(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """A UUID x-request-id comes back in the trailers; any other is 00401 on a CNAV route, under a new id."""
    ticket = "0B6A2F4E-7C1D-4E8A-9B3F-5D2C1A0E9F87"
    call = cnaf.GetAllocationSoutienFamilialByIdentity(
        cnaf_pb2.GetAllocationSoutienFamilialByIdentityRequest(identite=lefebvre()),
        metadata=(("x-request-id", ticket),),
    )
    await call
    assert dict(await call.trailing_metadata())["x-request-id"] == ticket
    call = cnaf.GetAllocationSoutienFamilialByIdentity(
        cnaf_pb2.GetAllocationSoutienFamilialByIdentityRequest(identite=lefebvre()),
        metadata=(("x-request-id", "LEFEBVRE.ALEXIS.1982-12-27"),),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert rich_status(caught.value).broken_rules == [("x-request-id", "00401")]
    made = dict(await call.trailing_metadata())["x-request-id"]
    assert len(made) == 36 and "LEFEBVRE" not in made


@pytest.mark.parametrize(
    ("identity", "status", "since"),
    [
        (lefebvre(), "allocataire", "2023-09-01"),
        (person("Dubois", "Hugo", 2015, 9, 30, "M"), "ouvrant_droit", "2023-09-01"),
        (person("Moreau", "Jean", 1958, 4, 3, "M"), "non_beneficiaire", None),
    ],
    ids=["parent", "child", "neither"],
)
async def test_aeeh_status_of_parent_child_and_neither(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
    identity: identity_pb2.IdentityPivot,
    status: str,
    since: str | None,
) -> None:
    """The parent is allocataire, the child ouvrant_droit, both with a start date; anyone else has none."""
    response = await cnaf.GetAllocationEnfantHandicapeByIdentity(
        cnaf_pb2.GetAllocationEnfantHandicapeByIdentityRequest(identite=identity)
    )
    assert response.data.status == status
    assert (response.data.date_debut_droit if response.data.HasField("date_debut_droit") else None) == since


@pytest.mark.parametrize(
    ("identity", "status", "since"),
    [
        (lefebvre(), "allocataire", "2025-08-01"),
        (person("Dubois", "Hugo", 2015, 9, 30, "M"), "ouvrant_droit", "2025-08-01"),
        (person("Moreau", "Jean", 1958, 4, 3, "M"), "non_beneficiaire", None),
    ],
    ids=["parent", "child", "neither"],
)
async def test_ars_status_of_parent_child_and_neither_in_both_modalities(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
    identity: identity_pb2.IdentityPivot,
    status: str,
    since: str | None,
) -> None:
    """ARS as AEEH: the parent allocataire, the child aged 6-18 ouvrant_droit, by identity or by FC."""
    by_identity = await cnaf.GetAllocationRentreeScolaireByIdentity(
        cnaf_pb2.GetAllocationRentreeScolaireByIdentityRequest(identite=identity)
    )
    subject = identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=identity)
    by_france_connect = await cnaf.GetAllocationRentreeScolaireByFranceConnect(
        cnaf_pb2.GetAllocationRentreeScolaireByFranceConnectRequest(france_connect=subject)
    )
    for data in (by_identity.data, by_france_connect.data):
        assert data.status == status
        assert (data.date_debut_droit if data.HasField("date_debut_droit") else None) == since


async def test_ars_of_nobody_known_is_35003(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """Someone no caisse knows for the ARS is refused as for the other prestations."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetAllocationRentreeScolaireByIdentity(
            cnaf_pb2.GetAllocationRentreeScolaireByIdentityRequest(identite=rochefort())
        )
    assert rich_status(caught.value).api_code == "35003"


def rochefort() -> identity_pb2.IdentityPivot:
    """The sandbox's household with a child under 7."""
    return person("Rochefort", "Anne", 1991, 4, 12, "F")


async def test_eaje_household_with_a_young_child(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """A household with a child under 7 gets its members, address and computation parameters, nulls kept."""
    response = await cnaf.GetParticipationFamilialeEajeByIdentity(
        cnaf_pb2.GetParticipationFamilialeEajeByIdentityRequest(identite=rochefort())
    )
    data = response.data
    assert [(a.nom_naissance, a.code_cog_insee_commune_naissance) for a in data.allocataires] == [
        ("ROCHEFORT", "17300"),
        ("MARTIN", ""),
    ]
    assert not data.allocataires[1].HasField("code_cog_insee_commune_naissance")
    assert [e.date_naissance for e in data.enfants] == ["2017-05-22", "2025-01-08"]
    assert data.adresse.code_postal_ville == "17000 LA ROCHELLE"
    parametres = data.parametres_calcul_participation_familiale
    assert (parametres.nombre_enfants_a_charge, parametres.nombre_enfants_beneficiaire_aeeh) == (2, 0)
    assert parametres.HasField("nombre_enfants_beneficiaire_aeeh")
    assert (
        parametres.base_ressources_annuelles.valeur,
        parametres.base_ressources_annuelles.annee_calcul,
    ) == (
        31250,
        2024,
    )


async def test_eaje_household_without_a_young_child_is_not_eligible(
    cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub,
) -> None:
    """LEFEBVRE's children are 11 and 14: NOT_FOUND 37003 from the CNAV, by identity and by FranceConnect."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetParticipationFamilialeEajeByIdentity(
            cnaf_pb2.GetParticipationFamilialeEajeByIdentityRequest(identite=lefebvre())
        )
    status = rich_status(caught.value)
    assert (status.code, status.api_code, status.error_info.metadata["provider"]) == (
        grpc.StatusCode.NOT_FOUND,
        "37003",
        "CNAV",
    )
    assert status.error_info.metadata["title"] == "Allocataire non éligible"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetParticipationFamilialeEajeByFranceConnect(
            cnaf_pb2.GetParticipationFamilialeEajeByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(
                    access_token="opaque", identite_pivot=lefebvre()
                )
            )
        )
    assert rich_status(caught.value).api_code == "37003"


async def test_eaje_and_aeeh_of_someone_unknown(cnaf: cnaf_pb2_grpc.CnafServiceAsyncStub) -> None:
    """Someone no caisse knows is 35003 for the AEEH and the EAJE alike, never 37003."""
    unknown = person("Inconnu", "Paul", 1990, 1, 1, "M")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetParticipationFamilialeEajeByIdentity(
            cnaf_pb2.GetParticipationFamilialeEajeByIdentityRequest(identite=unknown)
        )
    assert rich_status(caught.value).api_code == "35003"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cnaf.GetAllocationEnfantHandicapeByFranceConnect(
            cnaf_pb2.GetAllocationEnfantHandicapeByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(
                    access_token="opaque", identite_pivot=unknown
                )
            )
        )
    assert rich_status(caught.value).api_code == "35003"


@pytest.mark.parametrize(
    ("today", "eligible"),
    [(dt.date(2032, 1, 7), True), (dt.date(2032, 1, 8), False)],
    ids=["aged-6", "aged-7"],
)
async def test_eaje_eligibility_follows_the_service_clock(today: dt.date, eligible: bool) -> None:
    """The same household is eligible while its youngest child is 6, and not from their 7th birthday."""
    assembly = replace(CNAF, servicer=partial(CnafServicer, today=lambda: today))
    async with running(assembly.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        call = cnaf_pb2_grpc.CnafServiceStub(channel).GetParticipationFamilialeEajeByIdentity(
            cnaf_pb2.GetParticipationFamilialeEajeByIdentityRequest(identite=rochefort())
        )
        if eligible:
            assert len((await call).data.enfants) == 2
            return
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert rich_status(caught.value).api_code == "37003"
