"""``GET /api/errors``: the error nomenclature, as the real API serves it, derived from the catalogue."""

from __future__ import annotations

import jsonschema  # type: ignore[import-untyped]

from contract.openapi import response_schema
from runtime.error_catalogue import CODES, PROVIDER_CODES, RULE_CODES
from tests.gateway.rest.conftest import Front

QF_BY_IDENTITY = "api_particulier_v3_cnav_quotient_familial_with_civility"
QF_BY_FRANCE_CONNECT = "api_particulier_v3_cnav_quotient_familial_with_france_connect"


def _codes(items: dict[str, list[dict[str, str]]]) -> dict[str, set[str]]:
    return {status: {item["code"] for item in listed} for status, listed in items.items()}


async def test_the_nomenclature_is_the_catalogue_without_a_token(front: Front) -> None:
    response = await front.http.get("/api/errors")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["content-type"].startswith("application/json")
    assert "ratelimit-limit" not in response.headers
    body = response.json()
    jsonschema.validate(body, response_schema("/api/errors", 200))
    assert body["api"] == "particulier"
    assert body["providers"]["37"] == "CNAV"
    assert body["providers"]["51"] == "FranceConnect"
    assert set(body["generic_subcodes"]) == set(PROVIDER_CODES)
    platform = _codes(body["platform_codes"])
    assert {"00101", "00103", "00105"} <= platform["401"]
    assert "00100" in platform["403"]
    assert {"00203", "00210", "00420", "00368"} <= platform["422"]
    listed = {code for codes in platform.values() for code in codes}
    assert listed == {code for code in CODES if code.startswith("00")} | set(RULE_CODES)
    text = {item["detail"] for item in body["platform_codes"]["401"] if item["code"] == "00103"}
    assert text == {CODES["00103"].detail}


async def test_each_route_has_its_provider_s_codes(front: Front) -> None:
    body = (await front.http.get("/api/errors")).json()
    identity = body["endpoints"][QF_BY_IDENTITY]
    assert identity["provider"] == "CNAV"
    assert "37999" in _codes(identity["errors"])["502"]
    assert not any(code.startswith("51") for codes in _codes(identity["errors"]).values() for code in codes)
    france_connect = _codes(body["endpoints"][QF_BY_FRANCE_CONNECT]["errors"])
    assert {"51501", "51502", "51503", "51504"} <= france_connect["401"]
    assert "51564" in france_connect["422"]
    assert "api_particulier_v5_cnous_etudiant_boursier_with_ine" in body["endpoints"]
    assert "api_particulier_v3_cnav_allocation_rentree_scolaire_with_civility" in body["endpoints"]


async def test_an_operation_id_keeps_its_endpoint_alone(front: Front) -> None:
    whole = (await front.http.get("/api/errors")).json()
    one = await front.http.get("/api/errors", params={"operation_id": QF_BY_IDENTITY})
    assert one.status_code == 200
    assert one.json() == {**whole, "endpoints": {QF_BY_IDENTITY: whole["endpoints"][QF_BY_IDENTITY]}}


async def test_an_unknown_operation_id_is_a_404(front: Front) -> None:
    response = await front.http.get("/api/errors", params={"operation_id": "api_particulier_v9_nothing"})
    assert response.status_code == 404
    jsonschema.validate(response.json(), response_schema("/api/errors", 404))
    assert response.json()["errors"][0]["code"] == "00404"
