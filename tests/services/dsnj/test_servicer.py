"""The dsnj service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.dsnj.v1 import dsnj_pb2, dsnj_pb2_grpc
from contract.v3_json import data_object
from tests.rich_status import rich_status

ARMAND_LEO = {
    "nomNaissance": "Armand",
    "prenoms": ["Léo", "Marcel"],
    "anneeDateNaissance": 2008,
    "moisDateNaissance": 3,
    "jourDateNaissance": 14,
    "sexeEtatCivil": "M",
    "codeCogInseePaysNaissance": "99100",
    "codeCogInseeCommuneNaissance": "35238",
}


def pivot(**fields: Any) -> identity_pb2.IdentityPivot:
    """Léo ARMAND's pivot with fields (proto3 JSON names) replaced."""
    return json_format.ParseDict({**ARMAND_LEO, **fields}, identity_pb2.IdentityPivot())


def born(years_ago: int, days_later: int = 0, **fields: Any) -> identity_pb2.IdentityPivot:
    """A pivot born ``years_ago`` years before today, plus ``days_later`` days."""
    today = dt.date.today()
    try:
        anniversary = today.replace(year=today.year - years_ago)
    except ValueError:  # 29 February
        anniversary = today.replace(year=today.year - years_ago, day=28)
    birth = anniversary + dt.timedelta(days=days_later)
    return pivot(
        anneeDateNaissance=birth.year, moisDateNaissance=birth.month, jourDateNaissance=birth.day, **fields
    )


async def by_identity(dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub, identity: identity_pb2.IdentityPivot) -> Any:
    """Ask by identity pivot."""
    return await dsnj.GetServiceNationalByIdentity(
        dsnj_pb2.GetServiceNationalByIdentityRequest(identite=identity)
    )


async def by_france_connect(
    dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub, identity: identity_pb2.IdentityPivot
) -> Any:
    """Ask as the gateway does once it resolved a FranceConnect token to this identity."""
    subject = identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=identity)
    return await dsnj.GetServiceNationalByFranceConnect(
        dsnj_pb2.GetServiceNationalByFranceConnectRequest(france_connect=subject)
    )


ASKERS = pytest.mark.parametrize(
    ("ask", "prefix"),
    [(by_identity, "identite"), (by_france_connect, "franceConnect.identitePivot")],
    ids=["identity", "france-connect"],
)


async def refusal(
    ask: Any, dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub, identity: identity_pb2.IdentityPivot
) -> Any:
    """The rich status of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(dsnj, identity)
    return rich_status(caught.value)


@ASKERS
@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (pivot(), {"statut_service_national": "en_regle", "commentaires": "JDC effectuée le 2026-05-12"}),
        (
            pivot(prenoms=["IRIS"], moisDateNaissance=6, jourDateNaissance=2, sexeEtatCivil="F"),
            {
                "statut_service_national": "pas_en_regle",
                "commentaires": "Recensement effectué, JDC non effectuée",
            },
        ),
        (
            pivot(
                nomNaissance="Brumaire",
                prenoms=["Hugo"],
                anneeDateNaissance=2010,
                moisDateNaissance=1,
                jourDateNaissance=20,
                codeCogInseeCommuneNaissance="33063",
            ),
            {"statut_service_national": "indetermine", "commentaires": None},
        ),
        (
            pivot(
                nomNaissance="Vernet",
                prenoms=["Sami"],
                anneeDateNaissance=2009,
                moisDateNaissance=9,
                jourDateNaissance=9,
                codeCogInseePaysNaissance="99350",
                codeCogInseeCommuneNaissance="",
            ),
            {"statut_service_national": "non_concerne", "commentaires": "Dispensé de la JDC"},
        ),
    ],
    ids=["en-regle", "pas-en-regle", "indetermine-without-comment", "non-concerne-born-abroad"],
)
async def test_sandbox_persons_get_their_v3_data_object(
    dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub,
    ask: Any,
    prefix: str,
    identity: identity_pb2.IdentityPivot,
    expected: dict[str, Any],
) -> None:
    """Each documented status comes back as the v3 object; no comment is null, not an empty string."""
    assert data_object(await ask(dsnj, identity)) == expected


@ASKERS
@pytest.mark.parametrize(
    "identity",
    [born(26), born(15), born(26, days_later=-1), born(40)],
    ids=["26", "15", "26-since-yesterday", "40"],
)
async def test_persons_outside_16_to_25_are_refused_before_the_dsnj(
    dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub, ask: Any, prefix: str, identity: identity_pb2.IdentityPivot
) -> None:
    """Outside the ages of the service national: 39400 from the DSNJ, naming the birth year."""
    status = await refusal(ask, dsnj, identity)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "39400")
    assert status.error_info.metadata["provider"] == "DSNJ"
    assert status.error_info.metadata["title"] == "Age non pertinent pour le Service National"
    assert status.violated_fields == {f"{prefix}.anneeDateNaissance"}


@ASKERS
@pytest.mark.parametrize(
    "identity", [born(16), born(25), born(26, days_later=1)], ids=["16-today", "25", "26-tomorrow"]
)
async def test_ages_16_to_25_reach_the_dsnj(
    dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub, ask: Any, prefix: str, identity: identity_pb2.IdentityPivot
) -> None:
    """Both bounds are included: such a person is asked about, and unknown to the sandbox (39003)."""
    status = await refusal(ask, dsnj, identity)
    assert (status.code, status.api_code) == (grpc.StatusCode.NOT_FOUND, "39003")


@ASKERS
@pytest.mark.parametrize(
    ("field", "rules"),
    [
        ("sexe_etat_civil", [("sexeEtatCivil", "00427")]),
        ("code_cog_insee_pays_naissance", [("codeCogInseePaysNaissance", "00400")]),
        ("jour_date_naissance", [("jourDateNaissance", "00424")]),
        ("prenoms", [("prenoms", "00421")]),
        ("annee_date_naissance", [("anneeDateNaissance", "00422"), ("anneeDateNaissance", "39400")]),
    ],
)
async def test_the_dsnj_needs_a_full_identity(
    dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub, ask: Any, prefix: str, field: str, rules: list[tuple[str, str]]
) -> None:
    """Sex, birth country, the full birth date and a first name are required, each its code.

    The age is checked even after a refused date: no year is year 0, so 39400 follows 00422.
    """
    identity = pivot()
    identity.ClearField(field)  # type: ignore[arg-type]
    status = await refusal(ask, dsnj, identity)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, rules[0][1])
    assert status.broken_rules == [(f"{prefix}.{name}", code) for name, code in rules]


@pytest.mark.parametrize(
    ("name", "first", "birth", "code", "api_code"),
    [
        ("Fantome", "Lina", (2007, 7, 7), grpc.StatusCode.NOT_FOUND, "39003"),
        ("Indisponible", "Jules", (2007, 2, 11), grpc.StatusCode.UNAVAILABLE, "39001"),
        ("Delai", "Rose", (2008, 10, 23), grpc.StatusCode.DEADLINE_EXCEEDED, "39002"),
        ("Etrange", "Noé", (2009, 4, 17), grpc.StatusCode.UNKNOWN, "39999"),
    ],
    ids=["not-found", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    dsnj: dsnj_pb2_grpc.DsnjServiceAsyncStub,
    name: str,
    first: str,
    birth: tuple[int, int, int],
    code: grpc.StatusCode,
    api_code: str,
) -> None:
    """Each error person yields its status and DSNJ code; not found speaks the v3 API's words."""
    year, month, day = birth
    identity = pivot(
        nomNaissance=name,
        prenoms=[first],
        anneeDateNaissance=year,
        moisDateNaissance=month,
        jourDateNaissance=day,
    )
    status = await refusal(by_identity, dsnj, identity)
    assert (status.code, status.api_code, status.error_info.metadata["provider"]) == (code, api_code, "DSNJ")
    if code == grpc.StatusCode.NOT_FOUND:
        assert status.error_info.metadata["detail"].startswith(
            "Le ou les paramètre(s) d'entrée n'existent pas"
        )
