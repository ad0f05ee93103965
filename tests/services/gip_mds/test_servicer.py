"""The gip_mds service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gip_mds.v1 import gip_mds_pb2, gip_mds_pb2_grpc
from contract.v3_json import data_object
from tests.rich_status import rich_status

NO_CONTRACT = {
    "contrat_trouve": False,
    "organisme_accueil": {"siret": None, "raison_sociale": None},
    "date_debut_contrat": None,
    "date_fin_contrat": None,
}
DINUM = {"siret": "13002526500013", "raison_sociale": "DIRECTION INTERMINISTERIELLE DU NUMERIQUE"}


def pivot(name: str, first: str, birth: str, **fields: Any) -> identity_pb2.IdentityPivot:
    """A pivot without sex nor birthplace, as the GIP-MDS is asked; ``birth`` is YYYY-MM-DD."""
    year, month, day = (int(part) for part in birth.split("-"))
    document = {
        "nomNaissance": name,
        "prenoms": [first],
        "anneeDateNaissance": year,
        "moisDateNaissance": month,
        "jourDateNaissance": day,
        **fields,
    }
    return json_format.ParseDict(document, identity_pb2.IdentityPivot())


async def by_identity(
    gip_mds: gip_mds_pb2_grpc.GipMdsServiceAsyncStub, identity: identity_pb2.IdentityPivot
) -> Any:
    """Ask by identity pivot."""
    return await gip_mds.GetServiceCiviqueByIdentity(
        gip_mds_pb2.GetServiceCiviqueByIdentityRequest(identite=identity)
    )


async def by_france_connect(
    gip_mds: gip_mds_pb2_grpc.GipMdsServiceAsyncStub, identity: identity_pb2.IdentityPivot
) -> Any:
    """Ask as the gateway does once it resolved a FranceConnect token to this identity."""
    subject = identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=identity)
    return await gip_mds.GetServiceCiviqueByFranceConnect(
        gip_mds_pb2.GetServiceCiviqueByFranceConnectRequest(france_connect=subject)
    )


ASKERS = pytest.mark.parametrize("ask", [by_identity, by_france_connect], ids=["identity", "france-connect"])


@ASKERS
@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (
            pivot("Lavande", "Nina", "2002-04-11"),
            {
                "statut_actuel": {
                    "contrat_trouve": True,
                    "organisme_accueil": DINUM,
                    "date_debut_contrat": "2025-10-01",
                    "date_fin_contrat": None,
                },
                "statut_passe": NO_CONTRACT,
            },
        ),
        (
            pivot("LAVANDE", "OSCAR", "2000-09-23", sexeEtatCivil="M"),
            {
                "statut_actuel": NO_CONTRACT,
                "statut_passe": {
                    "contrat_trouve": True,
                    "organisme_accueil": {
                        "siret": "77567227200020",
                        "raison_sociale": "ASSOCIATION LES AMIS DU LITTORAL",
                    },
                    "date_debut_contrat": "2023-01-15",
                    "date_fin_contrat": "2023-07-14",
                },
            },
        ),
        (
            pivot("Sanscontrat", "Éva", "1998-12-12"),
            {"statut_actuel": NO_CONTRACT, "statut_passe": NO_CONTRACT},
        ),
    ],
    ids=["running", "over", "without-contract"],
)
async def test_sandbox_persons_get_their_v3_data_object(
    gip_mds: gip_mds_pb2_grpc.GipMdsServiceAsyncStub,
    ask: Any,
    identity: identity_pb2.IdentityPivot,
    expected: dict[str, Any],
) -> None:
    """Both statuses always come back; the one without contract is false with every field null."""
    assert data_object(await ask(gip_mds, identity)) == expected


@ASKERS
@pytest.mark.parametrize(
    ("identity", "code", "api_code", "provider"),
    [
        (pivot("Fantome", "Marc", "1999-03-03"), grpc.StatusCode.NOT_FOUND, "31003", "GIP-MDS"),
        (pivot("Homonyme", "Alex", "2001-01-01"), grpc.StatusCode.INVALID_ARGUMENT, "00391", None),
        (pivot("Indisponible", "Lou", "2001-05-05"), grpc.StatusCode.UNAVAILABLE, "31001", "GIP-MDS"),
        (pivot("Delai", "Tom", "2002-06-06"), grpc.StatusCode.DEADLINE_EXCEEDED, "31002", "GIP-MDS"),
        (pivot("Etrange", "Mia", "2003-07-07"), grpc.StatusCode.UNKNOWN, "31999", "GIP-MDS"),
    ],
    ids=["not-found", "ambiguous", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    gip_mds: gip_mds_pb2_grpc.GipMdsServiceAsyncStub,
    ask: Any,
    identity: identity_pb2.IdentityPivot,
    code: grpc.StatusCode,
    api_code: str,
    provider: str | None,
) -> None:
    """Each error person yields its status and code; 00391 is a parameter error, naming no provider."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(gip_mds, identity)
    status = rich_status(caught.value)
    assert (status.code, status.api_code, status.error_info.metadata.get("provider")) == (
        code,
        api_code,
        provider,
    )


@ASKERS
@pytest.mark.parametrize(
    ("field", "violated", "code"),
    [
        ("mois_date_naissance", "moisDateNaissance", "00423"),
        ("prenoms", "prenoms", "00421"),
        ("nom_naissance", "nomNaissance", "00420"),
    ],
)
async def test_the_gip_mds_needs_names_and_a_full_birth_date(
    gip_mds: gip_mds_pb2_grpc.GipMdsServiceAsyncStub, ask: Any, field: str, violated: str, code: str
) -> None:
    """Without a full birth date, a first name or a birth name: its civility code, naming the field."""
    identity = pivot("Lavande", "Nina", "2002-04-11")
    identity.ClearField(field)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(gip_mds, identity)
    status = rich_status(caught.value)
    assert status.api_code == code
    assert [(path.rsplit(".", 1)[1], reason) for path, reason in status.broken_rules] == [(violated, code)]
