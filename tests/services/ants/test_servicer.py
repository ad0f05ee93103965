"""The ants service over gRPC on loopback, on its sandbox files."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.ants.v1 import ants_pb2, ants_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from contract.v3_json import data_object, meta_object
from tests.rich_status import rich_status

MOREL = {
    "nomNaissance": "Morel",
    "prenoms": ["Léa", "Claire"],
    "anneeDateNaissance": 1990,
    "moisDateNaissance": 5,
    "jourDateNaissance": 4,
    "sexeEtatCivil": "F",
    "codeCogInseePaysNaissance": "99100",
    "codeCogInseeCommuneNaissance": "75056",
}


async def extrait(ants: ants_pb2_grpc.AntsServiceAsyncStub, immatriculation: str, **identity: Any) -> Any:
    """Ask as the gateway does once it resolved the user's FranceConnect token (Léa MOREL by default)."""
    pivot = json_format.ParseDict({**MOREL, **identity}, identity_pb2.IdentityPivot())
    subject = identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=pivot)
    request = ants_pb2.GetExtraitImmatriculationVehiculeByFranceConnectRequest(
        france_connect=subject, immatriculation=immatriculation
    )
    return await ants.GetExtraitImmatriculationVehiculeByFranceConnect(request)


async def refusal(ants: ants_pb2_grpc.AntsServiceAsyncStub, immatriculation: str, **identity: Any) -> Any:
    """The rich status of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await extrait(ants, immatriculation, **identity)
    return rich_status(caught.value)


@pytest.mark.parametrize(
    ("immatriculation", "rattachement", "location", "birth_date"),
    [
        ("SB-101-AA", "titulaire", "N", 1.0),
        ("sb-102-aa", "locataire", "LLD", 1.0),
        ("SB-103-AA", "cotitulaire", "N", 0.0),
        ("1234 sb 75", "titulaire", "N", 1.0),
    ],
    ids=["titulaire", "locataire-any-case", "cotitulaire-other-birth-date", "fni-plate"],
)
async def test_lea_morel_s_vehicles(
    ants: ants_pb2_grpc.AntsServiceAsyncStub,
    immatriculation: str,
    rattachement: str,
    location: str,
    birth_date: float,
) -> None:
    """Each of Léa MOREL's files: how she stands to the vehicle, the lease, the identity check in meta."""
    answer = await extrait(ants, immatriculation)
    data = data_object(answer)
    assert data["statut_rattachement"] == rattachement
    assert data["donnees_immatriculation_vehicule"]["statut_location"]["code"] == location
    assert data["donnees_immatriculation_vehicule"]["numero_immatriculation"] == immatriculation.upper()
    assert (data["identite_particulier"]["nom"], data["identite_particulier"]["prenom"]) == ("MOREL", "LEA")
    assert meta_object(answer) == {
        "identity_matching": {
            "family_name": 1.0,
            "given_name": 1.0,
            "birth_date": birth_date,
            "overall_match": True,
        }
    }


@pytest.mark.parametrize(
    ("immatriculation", "identity", "code", "api_code"),
    [
        ("SB-404-AA", {}, grpc.StatusCode.NOT_FOUND, "42003"),
        ("ZZ-999-ZZ", {}, grpc.StatusCode.NOT_FOUND, "42003"),
        ("SB-105-AA", {}, grpc.StatusCode.NOT_FOUND, "42005"),
        ("SB-101-AA", {"nomNaissance": "Durand", "prenoms": ["Paul"]}, grpc.StatusCode.NOT_FOUND, "42005"),
        ("SB-503-AA", {}, grpc.StatusCode.UNAVAILABLE, "42001"),
        ("SB-504-AA", {}, grpc.StatusCode.DEADLINE_EXCEEDED, "42002"),
        ("SB-500-AA", {}, grpc.StatusCode.UNKNOWN, "42999"),
    ],
    ids=[
        "no-file",
        "outside-the-sandbox",
        "someone-else-s",
        "not-on-the-file",
        "unavailable",
        "timeout",
        "unknown",
    ],
)
async def test_sandbox_error_paths(
    ants: ants_pb2_grpc.AntsServiceAsyncStub,
    immatriculation: str,
    identity: dict[str, Any],
    code: grpc.StatusCode,
    api_code: str,
) -> None:
    """No file: 42003; a file without the user on it: 42005 "Identité non trouvée"; the SIV's failures."""
    status = await refusal(ants, immatriculation, **identity)
    assert (status.code, status.api_code, status.error_info.metadata["provider"]) == (code, api_code, "ANTS")
    if api_code == "42005":
        assert status.error_info.metadata["title"] == "Identité non trouvée"


@pytest.mark.parametrize(
    ("immatriculation", "detail"),
    [
        ("", "L'immatriculation du véhicule est manquante"),
        ("   ", "L'immatriculation du véhicule est manquante"),
    ],
    ids=["missing", "blank"],
)
async def test_a_registration_number_is_required(
    ants: ants_pb2_grpc.AntsServiceAsyncStub, immatriculation: str, detail: str
) -> None:
    """00430 before the SIV is asked, naming the field without its value; any other format is the SIV's."""
    status = await refusal(ants, immatriculation)
    assert (status.code, status.api_code, status.violated_fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "00430",
        {"immatriculation"},
    )
    assert status.error_info.metadata["detail"] == detail


async def test_the_identity_must_come_from_the_gateway(ants: ants_pb2_grpc.AntsServiceAsyncStub) -> None:
    """A FranceConnect subject the gateway did not resolve is refused: 00366."""
    request = ants_pb2.GetExtraitImmatriculationVehiculeByFranceConnectRequest(
        france_connect=identity_pb2.FranceConnectSubject(access_token="opaque"), immatriculation="SB-101-AA"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ants.GetExtraitImmatriculationVehiculeByFranceConnect(request)
    assert rich_status(caught.value).api_code == "00366"
