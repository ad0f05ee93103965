"""The REST front against a running gateway and every sandbox provider, over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shlex
import sys
import time
from typing import Any

import grpc
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client import REGISTRY

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from contract.openapi import current_spec, published_spec, response_schema
from contract.routes import build_routes
from devstack.run import curl_examples
from gateway.admin.registry import register, revoke
from gateway.france_connect.clients import link, unlink
from gateway.france_connect.sandbox import SANDBOX_CLIENT_ID
from gateway.pings import BY_ID, PINGS, Window, clear_window, declare_window
from tests.gateway.rest.conftest import LEFEBVRE, Front
from tests.people import RECIPIENT

QF = "/v3/dss/quotient_familial/identite"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DSS = {key: value for key, value in LEFEBVRE.items() if key != "recipient"}
_BERNARD = {
    "nomNaissance": "BERNARD",
    "prenoms[]": ["CAMILLE"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "2005",
    "moisDateNaissance": "5",
    "jourDateNaissance": "17",
}
_MERCIER = {
    "nomNaissance": "MERCIER",
    "prenoms[]": ["ZOÉ"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "2006",
    "moisDateNaissance": "3",
    "jourDateNaissance": "21",
}
_ROCHE = {
    "nomNaissance": "ROCHE",
    "prenoms[]": ["LÉA"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "2013",
    "moisDateNaissance": "4",
    "jourDateNaissance": "9",
    "codeEtablissement": "0132733A",
    "anneeScolaire": f"{dt.date.today().year - 1}-{dt.date.today().year}",
}
_ROCHEFORT = {
    "nomNaissance": "ROCHEFORT",
    "prenoms[]": ["ANNE"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "1991",
    "moisDateNaissance": "4",
    "jourDateNaissance": "12",
    "codeCogInseePaysNaissance": "99100",
}
_ARMAND = {
    "nomNaissance": "ARMAND",
    "prenoms[]": ["LÉO", "MARCEL"],
    "sexeEtatCivil": "M",
    "anneeDateNaissance": "2008",
    "moisDateNaissance": "3",
    "jourDateNaissance": "14",
    "codeCogInseePaysNaissance": "99100",
    "codeCogInseeCommuneNaissance": "35238",
}
_LAVANDE = {
    "nomNaissance": "LAVANDE",
    "prenoms[]": ["NINA", "ROSE"],
    "sexeEtatCivil": "F",
    "anneeDateNaissance": "2002",
    "moisDateNaissance": "4",
    "jourDateNaissance": "11",
}
EVERY_ROUTE: dict[str, tuple[dict[str, Any], str | None]] = {
    "/v3/dss/quotient_familial/identite": (_DSS, None),
    "/v3/dss/quotient_familial/france_connect": ({}, "fc-lefebvre"),
    "/v3/dss/revenu_solidarite_active/identite": (_DSS, None),
    "/v3/dss/revenu_solidarite_active/france_connect": ({}, "fc-lefebvre"),
    "/v3/dss/prime_activite/identite": (_DSS, None),
    "/v3/dss/prime_activite/france_connect": ({}, "fc-lefebvre"),
    "/v3/dss/allocation_adulte_handicape/identite": (_DSS, None),
    "/v3/dss/allocation_adulte_handicape/france_connect": ({}, "fc-lefebvre"),
    "/v3/dss/allocation_soutien_familial/identite": (_DSS, None),
    "/v3/dss/allocation_soutien_familial/france_connect": ({}, "fc-lefebvre"),
    "/v3/dss/complementaire_sante_solidaire/identite": (_DSS, None),
    "/v3/dss/complementaire_sante_solidaire/france_connect": ({}, "fc-lefebvre"),
    "/v3/france_travail/statut/identifiant": ({"identifiant": "claire.fontaine75"}, None),
    "/v3/france_travail/indemnites/identifiant": ({"identifiant": "claire.fontaine75"}, None),
    "/v3/mesri/statut_etudiant/identite": (_BERNARD, None),
    "/v3/mesri/statut_etudiant/ine": ({"ine": "2301456789K"}, None),
    "/v3/mesri/statut_etudiant/france_connect": ({}, "fc-bernard"),
    "/v5/cnous/etudiant_boursier/identite": ({**_MERCIER, "campaignYear": "2025"}, None),
    "/v5/cnous/etudiant_boursier/ine": ({"ine": "2406123457A"}, None),
    "/v5/cnous/etudiant_boursier/france_connect": ({}, "fc-mercier"),
    "/v5/men/scolarites/identite": (_ROCHE, None),
    "/v3/dss/allocation_rentree_scolaire/identite": (_DSS, None),
    "/v3/dss/allocation_rentree_scolaire/france_connect": ({}, "fc-lefebvre"),
    "/v4/cnous/etudiant_boursier/identite": (_MERCIER, None),
    "/v4/cnous/etudiant_boursier/ine": ({"ine": "2406123457A"}, None),
    "/v4/cnous/etudiant_boursier/france_connect": ({}, "fc-mercier"),
    "/v4/men/scolarites/identite": (_ROCHE, None),
    "/v3/men/scolarites/identite": (_ROCHE, None),
    "/v3/dss/allocation_enfant_handicape/identite": (_DSS, None),
    "/v3/dss/allocation_enfant_handicape/france_connect": ({}, "fc-lefebvre"),
    "/v3/dss/participation_familiale_eaje/identite": (_ROCHEFORT, None),
    "/v3/dss/participation_familiale_eaje/france_connect": ({}, "fc-rochefort"),
    "/v3/cnous/etudiant_boursier/identite": (_MERCIER, None),
    "/v3/cnous/etudiant_boursier/ine": ({"ine": "2406123457A"}, None),
    "/v3/cnous/etudiant_boursier/france_connect": ({}, "fc-mercier"),
    "/v3/dsnj/service_national/identite": (_ARMAND, None),
    "/v3/dsnj/service_national/france_connect": ({}, "fc-armand"),
    "/v3/gip_mds/service_civique/identite": (_LAVANDE, None),
    "/v3/gip_mds/service_civique/france_connect": ({}, "fc-lavande"),
    "/v3/sdh/statut_sportif/identifiant": ({"identifiant": "700001"}, None),
    "/v3/ants/extrait_immatriculation_vehicule/france_connect": (
        {"immatriculation": "SB-101-AA"},
        "fc-morel",
    ),
}
"""One sandbox call answered 200 per route of the front: query parameters, FranceConnect bearer."""


def _schema(path: str, status: str) -> dict[str, Any]:
    return response_schema(path, int(status))


def _error(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    (item,) = response.json()["errors"]
    assert set(item) == {"code", "title", "detail", "source", "meta"}
    return dict(item)


def test_every_route_of_the_route_table_is_tested() -> None:
    """EVERY_ROUTE holds exactly the paths the route table declares."""
    assert {path for route in build_routes().routes for path in route.http_paths} == set(EVERY_ROUTE)


@pytest.mark.parametrize("path", sorted(EVERY_ROUTE))
async def test_every_route_answers_the_spec_body(front: Front, path: str) -> None:
    """Each route answers 200 with the v3 envelope, its data valid against the spec's 200 schema."""
    params, france_connect = EVERY_ROUTE[path]
    headers = {"Authorization": f"Bearer {france_connect}"} if france_connect else front.bearer()
    response = await front.http.get(path, params={**params, "recipient": RECIPIENT}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["links"] == {}
    # Only ANTS fills meta, with its identity check; the spec's schema says what it holds.
    assert (body["meta"] != {}) == path.startswith("/v3/ants/")
    jsonschema.validate(body, _schema(path, "200"))
    if france_connect:
        assert "identite" not in body["data"]


async def test_lefebvre_quotient_familial_with_headers(front: Front) -> None:
    """The call of `make run`: QF 2550, RateLimit headers and a request id."""
    before = time.time()
    response = await front.http.get(QF, params=LEFEBVRE, headers=front.bearer())
    assert response.status_code == 200
    assert response.json()["data"]["quotient_familial"]["valeur"] == 2550
    assert _UUID.fullmatch(response.headers["x-request-id"])
    # The token's 10,000 per second gets a bucket as long as the default one: 50 x 10,000 / 20 calls.
    assert int(response.headers["ratelimit-limit"]) == 25_000
    assert 0 <= int(response.headers["ratelimit-remaining"]) < 25_000
    # The epoch second at which the bucket is full again, as the spec documents it: not a delay.
    assert before < int(response.headers["ratelimit-reset"]) <= time.time() + 2
    assert "retry-after" not in response.headers


async def test_a_well_formed_request_id_is_echoed(front: Front) -> None:
    """A UUID X-Request-ID sent by the integrator comes back, on success and on refusal."""
    request_id = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
    for headers in ({**front.bearer(), "X-Request-ID": request_id}, {"X-Request-ID": request_id}):
        response = await front.http.get(QF, params=LEFEBVRE, headers=headers)
        assert response.headers["x-request-id"] == request_id


async def test_masked_fields_are_absent(front: Front) -> None:
    """A token with the QF scope only gets quotient_familial alone, as the real API masks."""
    token = front.factory.token(scopes=["cnaf_quotient_familial"])
    response = await front.http.get(QF, params=LEFEBVRE, headers=front.bearer(token))
    assert response.status_code == 200
    assert set(response.json()["data"]) == {"quotient_familial"}


# -- the README's error table, as HTTP ------------------------------------------------------------


async def test_without_a_token_401_00101(front: Front) -> None:
    response = await front.http.get(QF, params=LEFEBVRE)
    assert response.status_code == 401
    error = _error(response)
    assert error["code"] == "00101"
    assert error["title"] == "Interdit"
    assert error["source"] == {"parameter": "token"}
    assert "x-request-id" in response.headers
    jsonschema.validate(response.json(), _schema(QF, "401"))


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Basic abc", "00101"),
        ("Bearer not-a-jwt", "00101"),
        ("expired", "00103"),
    ],
)
async def test_bad_tokens_401(front: Front, authorization: str, code: str) -> None:
    if authorization == "expired":
        authorization = f"Bearer {front.factory.token(exp=1_000_000, iat=900_000, nbf=900_000)}"
    response = await front.http.get(QF, params=LEFEBVRE, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert _error(response)["code"] == code


async def test_revoked_token_401_00105(front: Front) -> None:
    claims = front.factory.claims()
    register(front.redis, claims)
    revoke(front.redis, claims["jti"])
    response = await front.http.get(QF, params=LEFEBVRE, headers=front.bearer(front.factory.token(**claims)))
    assert response.status_code == 401
    assert _error(response)["code"] == "00105"


async def test_no_scope_403_00100(front: Front) -> None:
    token = front.factory.token(scopes=["complementaire_sante_solidaire"])
    response = await front.http.get(QF, params=LEFEBVRE, headers=front.bearer(token))
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "00100"
    assert error["detail"].endswith("Listez vos privilèges sur /api/introspect")
    jsonschema.validate(response.json(), _schema(QF, "403"))


async def test_no_recipient_422_00203(front: Front) -> None:
    params = {key: value for key, value in LEFEBVRE.items() if key != "recipient"}
    response = await front.http.get(QF, params=params, headers=front.bearer())
    assert response.status_code == 422
    error = _error(response)
    assert (error["code"], error["detail"]) == ("00203", "Le paramètre recipient est obligatoire")
    assert error["source"] == {"parameter": "recipient"}


async def test_recipient_not_a_siret_422_00210(front: Front) -> None:
    response = await front.http.get(
        QF, params={**LEFEBVRE, "recipient": "12345678901234"}, headers=front.bearer()
    )
    assert response.status_code == 422
    assert _error(response)["code"] == "00210"


async def test_unknown_person_404_with_the_provider_code(front: Front) -> None:
    response = await front.http.get(
        QF, params={**LEFEBVRE, "nomNaissance": "INCONNU"}, headers=front.bearer()
    )
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "35003"
    assert error["meta"] == {"provider": "CNAF & MSA"}
    assert error["source"] is None


@pytest.mark.parametrize(
    ("identifiant", "status", "code"),
    [
        ("paul.inconnu", 404, "24003"),
        ("lucie.indisponible", 504, "24001"),
        ("marc.delai", 504, "24002"),
        ("claire.etrange", 502, "24999"),
    ],
)
async def test_provider_errors_take_the_spec_statuses(
    front: Front, identifiant: str, status: int, code: str
) -> None:
    path = "/v3/france_travail/statut/identifiant"
    params = {"identifiant": identifiant, "recipient": RECIPIENT}
    response = await front.http.get(path, params=params, headers=front.bearer())
    assert response.status_code == status
    error = _error(response)
    assert error["code"] == code
    assert error["meta"] == {"provider": "France Travail"}
    jsonschema.validate(response.json(), _schema(path, str(status)))


async def test_men_exclusive_filters_422_00419(front: Front) -> None:
    params = {**_ROCHE, "codesBcnDepartements[]": ["075"], "recipient": RECIPIENT}
    response = await front.http.get("/v4/men/scolarites/identite", params=params, headers=front.bearer())
    assert response.status_code == 422
    assert _error(response)["code"] == "00419"


async def test_over_the_rate_limit_429_with_retry_after(front: Front) -> None:
    token = front.factory.token(rate_limit=1)
    statuses = []
    for _ in range(5):
        response = await front.http.get(QF, params=LEFEBVRE, headers=front.bearer(token))
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429
    error = _error(response)
    assert (error["code"], error["title"]) == ("00429", "Trop de requêtes")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    # A bucket as many seconds long as the default one: 50 calls at 20/s is 2.5 s, 3 calls at 1/s.
    assert response.headers["ratelimit-limit"] == "3"
    jsonschema.validate(response.json(), _schema(QF, "429"))


async def test_unknown_route_is_a_404_of_the_mesh(front: Front) -> None:
    """Distinct from a person not found: the mesh's own 00404."""
    for path in ("/v3/dss/nothing/identite", "/v3/dss/quotient_familial/identite/", "/"):
        response = await front.http.get(path, headers=front.bearer())
        assert response.status_code == 404
        assert _error(response)["code"] == "00404"
        assert "x-request-id" in response.headers


async def test_another_method_is_a_405(front: Front) -> None:
    response = await front.http.post(QF, params=LEFEBVRE, headers=front.bearer())
    assert response.status_code == 405
    assert _error(response)["code"] == "00405"
    # Only what the front serves: a HEAD is refused too (gateway.rest.protocol).
    assert response.headers["allow"] == "GET"


# -- FranceConnect by bearer --------------------------------------------------------------------


async def test_france_connect_token_alone(front: Front) -> None:
    """The FranceConnect token is the bearer; the call counts against the client's linked habilitation."""
    path = "/v3/dss/quotient_familial/france_connect"
    first = await front.http.get(
        path, params={"recipient": RECIPIENT}, headers={"Authorization": "Bearer fc-lefebvre"}
    )
    second = await front.http.get(
        path, params={"recipient": RECIPIENT}, headers={"Authorization": "Bearer fc-lefebvre-qf"}
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["quotient_familial"]["valeur"] == 2550
    # The FranceConnect token's scopes mask the answer: fc-lefebvre-qf holds the QF value only.
    assert set(second.json()["data"]) == {"quotient_familial"}
    # Each FranceConnect token's own bucket, at the default rate (the fixture's burst: 50), is the
    # tighter beside the linked habilitation's 25,000: the headers tell it.
    assert first.headers["ratelimit-limit"] == second.headers["ratelimit-limit"] == "50"


async def test_a_france_connect_token_without_the_scope_is_403(front: Front) -> None:
    """fc-bernard holds MESR scopes only: the quotient familial is 403 00100, with the rate-limit headers."""
    refused = await front.http.get(
        "/v3/dss/quotient_familial/france_connect",
        params={"recipient": RECIPIENT},
        headers={"Authorization": "Bearer fc-bernard"},
    )
    assert (refused.status_code, _error(refused)["code"]) == (403, "00100")
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(refused.headers)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, "51504"), ("Bearer fc-inactive", "51502"), ("Bearer fc-expired", "51502")],
)
async def test_france_connect_refusals(front: Front, authorization: str | None, code: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await front.http.get(
        "/v3/dss/quotient_familial/france_connect", params={"recipient": RECIPIENT}, headers=headers
    )
    assert response.status_code == 401
    error = _error(response)
    assert error["code"] == code
    assert error["source"] == {"parameter": "token"}


async def test_france_connect_without_recipient_422_00203(front: Front) -> None:
    response = await front.http.get(
        "/v3/dss/quotient_familial/france_connect", headers={"Authorization": "Bearer fc-lefebvre"}
    )
    assert response.status_code == 422
    assert _error(response)["code"] == "00203"


async def test_france_connect_under_the_linked_habilitation(front: Front) -> None:
    """Unlinked: 00101; linked to a revoked token: 00105; linked again: served."""
    path = "/v3/dss/quotient_familial/france_connect"
    params, headers = {"recipient": RECIPIENT}, {"Authorization": "Bearer fc-lefebvre"}
    try:
        unlink(front.redis, SANDBOX_CLIENT_ID)
        response = await front.http.get(path, params=params, headers=headers)
        assert response.status_code == 401
        error = _error(response)
        assert error["code"] == "00101"
        assert "client FranceConnect" in error["detail"]
        claims = front.factory.claims()
        register(front.redis, claims)
        link(front.redis, SANDBOX_CLIENT_ID, revoke(front.redis, claims["jti"]))
        response = await front.http.get(path, params=params, headers=headers)
        assert response.status_code == 401
        assert _error(response)["code"] == "00105"
    finally:
        link(front.redis, SANDBOX_CLIENT_ID, front.linked)
    assert (await front.http.get(path, params=params, headers=headers)).status_code == 200


async def test_grpc_france_connect_token_alone(front: Front) -> None:
    """The gRPC ...ByFranceConnect methods take the FranceConnect token alone too."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{front.gateway.port}") as channel:
        answer = await cnaf_pb2_grpc.CnafServiceStub(channel).GetQuotientFamilialByFranceConnect(
            cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="fc-lefebvre")
            ),
            metadata=(("x-recipient", RECIPIENT),),
        )
    assert answer.data.quotient_familial.valeur == 2550


# -- utility routes -----------------------------------------------------------------------------


async def test_introspect(front: Front) -> None:
    response = await front.http.get("/api/introspect", headers=front.bearer())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"_id", "name", "scopes"}
    assert _UUID.fullmatch(body["_id"])
    assert "cnaf_quotient_familial" in body["scopes"]
    assert (await front.http.get("/api/introspect")).status_code == 401


_PARIS_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0[12]:00")


async def test_pings_in_the_real_shape(front: Front) -> None:
    """/api/pings lists each real ping by label and URL (relative without REST_PUBLIC_URL); each answers."""
    listing = await front.http.get("/api/pings", headers={"Host": "attacker.example"})
    assert listing.status_code == 200
    assert listing.json() == [{"name": ping.label, "url": f"/api/{ping.id}/ping"} for ping in PINGS]
    for entry in listing.json():
        one = await front.http.get(entry["url"])
        body = one.json()
        assert body["status"] in {"ok", "unknown", "bad_gateway"}
        assert one.status_code == (502 if body["status"] == "bad_gateway" else 200)
        assert set(body) == {"status", "last_update", "last_ok_status"}
        assert _PARIS_TIME.fullmatch(body["last_update"]) and _PARIS_TIME.fullmatch(body["last_ok_status"])
        assert "ratelimit-limit" not in one.headers
    assert (await front.http.get("/api/cnaf_msa_quotient_familial/ping")).json()["status"] == "ok"
    unknown = await front.http.get("/api/cnaf/ping")
    assert (unknown.status_code, unknown.json()) == (404, {})
    assert (await front.http.get("/api/ping")).json() == {"status": "ok"}


async def test_a_maintenance_window_shows_with_its_end(front: Front) -> None:
    """A window an operator declared: maintenance and until, over REST as over gRPC."""
    now = time.time()
    declare_window(front.redis, "men_scolarite", Window(now - 1, now + 3600), now)
    try:
        body = (await front.http.get("/api/men_scolarite/ping")).json()
        assert body["status"] == "maintenance"
        assert dt.datetime.fromisoformat(body["until"]).timestamp() == pytest.approx(now + 3600, abs=0.01)
    finally:
        clear_window(front.redis, "men_scolarite")
    assert (await front.http.get("/api/men_scolarite/ping")).json()["status"] != "maintenance"


async def test_the_maintenances_open_and_scheduled_are_listed_by_start(front: Front) -> None:
    """Public: the status page's source, windows not over only, each with its start and end."""
    now = time.time()
    declare_window(front.redis, "ants", Window(now + 86_400, now + 90_000), now)
    declare_window(front.redis, "men_scolarite", Window(now - 60, now + 3600), now)
    try:
        answer = await front.http.get("/mesh/v1/status/maintenances")
        assert answer.status_code == 200
        listed = answer.json()["maintenances"]
        assert [(w["ping"], w["name"], w["open"]) for w in listed] == [
            ("men_scolarite", BY_ID["men_scolarite"].label, True),
            ("ants", BY_ID["ants"].label, False),
        ]
        assert dt.datetime.fromisoformat(listed[1]["start"]).timestamp() == pytest.approx(
            now + 86_400, abs=0.01
        )
        assert dt.datetime.fromisoformat(listed[1]["end"]).timestamp() == pytest.approx(
            now + 90_000, abs=0.01
        )
    finally:
        clear_window(front.redis, "ants")
        clear_window(front.redis, "men_scolarite")
    assert (await front.http.get("/mesh/v1/status/maintenances")).json() == {"maintenances": []}


async def proofs_avoided(front: Front) -> int:
    response = await front.http.get("/api/proofs_avoided")
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == 30
    proofs: int = body["proofs_avoided"]
    return proofs


async def test_two_ok_calls_raise_the_proofs_avoided_by_two(front: Front) -> None:
    """`/api/proofs_avoided` counts the successful provider calls of the last 30 days, and only them."""
    # A flush first, so that the counts of the calls of earlier tests have landed.
    await asyncio.sleep(0.5)
    before = await proofs_avoided(front)
    for _ in range(2):
        assert (await front.http.get(QF, params=LEFEBVRE, headers=front.bearer())).status_code == 200
    unknown = {**LEFEBVRE, "nomNaissance": "INCONNU"}
    assert (await front.http.get(QF, params=unknown, headers=front.bearer())).status_code == 404
    written_by = time.monotonic() + 5
    proofs = before
    while proofs < before + 2 and time.monotonic() < written_by:
        await asyncio.sleep(0.1)
        proofs = await proofs_avoided(front)
    # A flush more, so that a third count (the refusal's) would have landed too.
    await asyncio.sleep(0.5)
    assert await proofs_avoided(front) == before + 2


async def _proofs_of_today(front: Front, api: str) -> int:
    response = await front.http.get("/mesh/v1/statistics/proofs_avoided")
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == 62
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return sum(row["proofs"] for row in body["proofs_avoided"] if (row["day"], row["api"]) == (today, api))


async def test_two_ok_calls_raise_the_day_s_proofs_of_their_api_by_two(front: Front) -> None:
    """The public statistics per API and day count the successful calls to that API, and only them."""
    await asyncio.sleep(0.5)
    before = await _proofs_of_today(front, "cnaf.quotient_familial")
    for _ in range(2):
        assert (await front.http.get(QF, params=LEFEBVRE, headers=front.bearer())).status_code == 200
    unknown = {**LEFEBVRE, "nomNaissance": "INCONNU"}
    assert (await front.http.get(QF, params=unknown, headers=front.bearer())).status_code == 404
    written_by = time.monotonic() + 5
    proofs = before
    while proofs < before + 2 and time.monotonic() < written_by:
        await asyncio.sleep(0.1)
        proofs = await _proofs_of_today(front, "cnaf.quotient_familial")
    await asyncio.sleep(0.5)
    assert await _proofs_of_today(front, "cnaf.quotient_familial") == before + 2


async def test_the_availability_history_lists_every_ping_and_today_s_sample(front: Front) -> None:
    """The gateway samples the pings from its start: today is in the 90 days of some ping."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for _ in range(100):
        body = (await front.http.get("/mesh/v1/statistics/availability")).json()
        if any(day["day"] == today for ping in body["pings"] for day in ping["days"]):
            break
        await asyncio.sleep(0.05)
    assert body["days"] == 90
    assert [(ping["id"], ping["name"]) for ping in body["pings"]] == [(ping.id, ping.label) for ping in PINGS]
    sampled = [day for ping in body["pings"] for day in ping["days"] if day["day"] == today]
    assert sampled and all(day["ok"] + day["bad"] + day["maintenance"] >= 1 for day in sampled)
    assert isinstance(body["incidents"], list)


async def test_openapi_yaml_is_the_spec_restricted_to_the_front(front: Front) -> None:
    response = await front.http.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    spec = yaml.safe_load(response.text)
    utility = {
        "/api/ping",
        "/api/pings",
        "/api/{ping}/ping",
        "/api/introspect",
        "/api/proofs_avoided",
        "/api/errors",
    }
    mesh = {
        "/mesh/v1/citizen/accesses",
        "/mesh/v1/statistics/proofs_avoided",
        "/mesh/v1/statistics/availability",
        "/mesh/v1/status/maintenances",
    }
    assert set(spec["paths"]) == set(EVERY_ROUTE) | utility | mesh
    assert spec["paths"]["/v5/men/scolarites/identite"]["get"]["responses"]["200"]
    assert spec["servers"] == [{"url": "/", "description": spec["servers"][0]["description"]}]
    assert spec["paths"][QF] == published_spec()["paths"][QF]


def _http_requests() -> dict[tuple[str, str], float]:
    """``http_server_requests_total`` of GET by route template and status."""
    return {
        (sample.labels["http_route"], sample.labels["http_response_status_code"]): sample.value
        for metric in REGISTRY.collect()
        if metric.name == "http_server_requests"
        for sample in metric.samples
        if sample.name == "http_server_requests_total" and sample.labels["http_request_method"] == "GET"
    }


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("/v5/men/scolarites/identite", "/v5/men/scolarites/identite"),
        ("/v5/cnous/etudiant_boursier/identite", "/v5/cnous/etudiant_boursier/identite"),
        ("/v3/dss/allocation_rentree_scolaire/identite", "/v3/dss/allocation_rentree_scolaire/identite"),
        ("/api/pings", "/api/pings"),
        ("/api/men_scolarite/ping", "/api/{ping}/ping"),
        ("/api/not_a_ping/ping", "/api/{ping}/ping"),
    ],
)
async def test_the_newer_routes_are_counted_by_their_route_template(
    front: Front, url: str, template: str
) -> None:
    """The v5, ARS and ping routes in the HTTP series by template: never the ping's name nor the query."""
    params, _ = EVERY_ROUTE.get(url, ({}, None))
    before = _http_requests()
    answer = await front.http.get(url, params={**params, "recipient": RECIPIENT}, headers=front.bearer())
    key = (template, str(answer.status_code))
    # Counted as the boundary closes, which may be a moment after the answer arrived.
    for _ in range(100):
        after = _http_requests()
        if after.get(key, 0.0) != before.get(key, 0.0):
            break
        await asyncio.sleep(0.05)
    assert {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)} == {key: 1.0}


@pytest.mark.parametrize("index", [0, 1])
async def test_the_curl_calls_make_run_prints(front: Front, index: int) -> None:
    """Each curl of `make run`, pointed at this front, gets LEFEBVRE's quotient familial with the headers."""
    line = curl_examples(front.base_url)[index]
    arguments = shlex.split(line.replace("$TOKEN", front.token))
    assert arguments[:2] == ["curl", "-gi"]
    header, url = arguments[3], arguments[4]
    name, _, value = header.partition(": ")
    response = await front.http.get(url, headers={name: value})
    assert response.status_code == 200
    assert response.json()["data"]["quotient_familial"]["valeur"] == 2550
    expected = {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-request-id"}
    assert expected <= set(response.headers)


def test_every_path_of_the_current_spec_is_a_route_of_the_mesh() -> None:
    """Each provider path of the spec (v3 to v5) is a provider method's, so gRPC and REST serve it."""
    spec_paths = {path for path in current_spec()["paths"] if path.startswith("/v")}
    assert spec_paths == {path for route in build_routes().routes for path in route.http_paths}


async def test_a_request_with_only_recipient_is_refused_by_its_route(front: Front) -> None:
    """Every path of the spec is a route of the front: a bare call is refused by it, never a route 404."""
    for path in sorted(path for path in current_spec()["paths"] if path.startswith("/v")):
        response = await front.http.get(path, params={"recipient": RECIPIENT}, headers=front.bearer())
        assert "00404" not in [error["code"] for error in response.json()["errors"]], path
        assert response.status_code in {401, 422}, (path, response.text)


async def test_the_token_and_recipient_are_checked_before_the_query(front: Front) -> None:
    """A query the route's rules refuse is refused after the token and the recipient, as over gRPC."""
    bad = {**LEFEBVRE, "anneeDateNaissance": "abc"}
    no_token = await front.http.get(QF, params=bad)
    assert (no_token.status_code, _error(no_token)["code"]) == (401, "00101")
    bad_recipient = await front.http.get(
        QF, params={**bad, "recipient": "12345678901234"}, headers=front.bearer()
    )
    assert (bad_recipient.status_code, _error(bad_recipient)["code"]) == (422, "00210")
    refused = await front.http.get(QF, params=bad, headers=front.bearer())
    assert (refused.status_code, _error(refused)["code"]) == (422, "00363")
    assert "ratelimit-remaining" in refused.headers


async def test_the_client_calls_a_france_connect_method_with_the_france_connect_token_alone(
    front: Front,
) -> None:
    """`python -m client call … --fc-token` needs no API token: the gateway takes the FranceConnect one."""
    environment = {key: value for key, value in os.environ.items() if key != "API_PARTICULIER_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        "call",
        "cnaf.quotient_familial",
        "--fc-token",
        "fc-lefebvre",
        "--json",
        "--address",
        f"127.0.0.1:{front.gateway.port}",
        "--recipient",
        RECIPIENT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["data"]["quotient_familial"]["valeur"] == 2550


async def test_the_token_carriers_the_real_api_still_accepts(front: Front) -> None:
    """X-Api-Key, else ?token=, when no Authorization is sent; never on a FranceConnect route."""
    by_header = await front.http.get(QF, params=LEFEBVRE, headers={"X-Api-Key": front.token})
    assert by_header.status_code == 200, by_header.text
    by_query = await front.http.get(QF, params={**LEFEBVRE, "token": front.token})
    assert by_query.status_code == 200, by_query.text
    introspected = await front.http.get("/api/introspect", headers={"X-Api-Key": front.token})
    assert introspected.status_code == 200
    # Authorization wins over the other carriers, as in the real API.
    both = await front.http.get(
        QF, params=LEFEBVRE, headers={"Authorization": "Bearer not-a-token", "X-Api-Key": front.token}
    )
    assert (both.status_code, _error(both)["code"]) == (401, "00101")
    france_connect = await front.http.get(
        "/v3/dss/quotient_familial/france_connect",
        params={"recipient": RECIPIENT},
        headers={"X-Api-Key": front.token},
    )
    assert (france_connect.status_code, _error(france_connect)["code"]) == (401, "51504")
