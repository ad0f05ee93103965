"""The sdh service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from apiparticulier.sdh.v1 import sdh_pb2, sdh_pb2_grpc
from contract.v3_json import data_object
from tests.rich_status import rich_status


async def statut(sdh: sdh_pb2_grpc.SdhServiceAsyncStub, identifiant: str) -> Any:
    """Ask the sports status of an identifiant."""
    return await sdh.GetStatutSportifByIdentifiant(
        sdh_pb2.GetStatutSportifByIdentifiantRequest(identifiant=identifiant)
    )


@pytest.mark.parametrize(
    ("identifiant", "est", "a_ete", "actuel_haut_niveau", "precedents"),
    [("700001", True, True, True, 1), ("700002", False, True, False, 1), ("700003", False, False, False, 0)],
    ids=["high-level", "was-high-level", "collectif-national"],
)
async def test_sandbox_sportspeople(
    sdh: sdh_pb2_grpc.SdhServiceAsyncStub,
    identifiant: str,
    est: bool,
    a_ete: bool,
    actuel_haut_niveau: bool,
    precedents: int,
) -> None:
    """Each documented sportsperson: today's status, whether high-level now and ever, the others."""
    data = data_object(await statut(sdh, identifiant))
    assert (data["est_sportif_de_haut_niveau"], data["a_ete_sportif_de_haut_niveau"]) == (est, a_ete)
    assert data["informations_statut"]["sportif_de_haut_niveau"] is actuel_haut_niveau
    assert len(data["informations_statuts_precedents"]) == precedents
    assert isinstance(data["identite"]["prenoms"], str)


@pytest.mark.parametrize(
    "identifiant", ["", "12AB", "70000 1", "١٢"], ids=["empty", "letters", "space", "arabic-indic-digits"]
)
async def test_an_identifiant_that_is_not_digits_is_refused(
    sdh: sdh_pb2_grpc.SdhServiceAsyncStub, identifiant: str
) -> None:
    """Missing or malformed, the one code 00380, naming the field without its value."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await statut(sdh, identifiant)
    status = rich_status(caught.value)
    assert (status.code, status.api_code, status.violated_fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "00380",
        {"identifiant"},
    )
    assert "provider" not in status.error_info.metadata


@pytest.mark.parametrize(
    ("identifiant", "code", "api_code"),
    [
        ("700404", grpc.StatusCode.NOT_FOUND, "41003"),
        ("123456", grpc.StatusCode.NOT_FOUND, "41003"),
        ("700503", grpc.StatusCode.UNAVAILABLE, "41001"),
        ("700504", grpc.StatusCode.DEADLINE_EXCEEDED, "41002"),
        ("700500", grpc.StatusCode.UNKNOWN, "41999"),
    ],
    ids=["not-found", "outside-the-sandbox", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    sdh: sdh_pb2_grpc.SdhServiceAsyncStub, identifiant: str, code: grpc.StatusCode, api_code: str
) -> None:
    """Each error identifiant yields its status and SDH code."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await statut(sdh, identifiant)
    status = rich_status(caught.value)
    assert (status.code, status.api_code, status.error_info.metadata["provider"]) == (code, api_code, "SDH")
