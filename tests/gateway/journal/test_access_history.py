"""A citizen's access history through the gateway: their own accesses only, with their FranceConnect token."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc
import httpx
import pytest

from apiparticulier.admin.v1 import admin_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from tests.gateway.journal.conftest import (
    JournalledMesh,
    fresh_database,
    journalled_gateway,
)
from tests.gateway.registry.conftest import SIRET, admin_settings, running_admin_api
from tests.gateway.tokens import TokenFactory
from tests.people import lefebvre
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"


def identity(
    nom: str, prenoms: list[str], sexe: str, born: tuple[int, int, int], commune: str
) -> identity_pb2.IdentityPivot:
    return identity_pb2.IdentityPivot(
        nom_naissance=nom,
        prenoms=prenoms,
        sexe_etat_civil=sexe,
        annee_date_naissance=born[0],
        mois_date_naissance=born[1],
        jour_date_naissance=born[2],
        code_cog_insee_pays_naissance="99100",
        code_cog_insee_commune_naissance=commune,
    )


async def accesses(mesh: JournalledMesh, token: str, **metadata: str) -> gateway_pb2.ListAccessesResponse:
    request = gateway_pb2.ListAccessesRequest()
    request.france_connect.access_token = token
    stub = gateway_pb2_grpc.GatewayServiceStub(mesh.channel)
    response: gateway_pb2.ListAccessesResponse = await stub.ListAccesses(
        request, metadata=tuple(metadata.items())
    )
    return response


async def listed(mesh: JournalledMesh, token: str, count: int) -> gateway_pb2.ListAccessesResponse:
    """The history once the journal has written ``count`` accesses (rows leave in batches)."""
    for _ in range(100):
        response = await accesses(mesh, token)
        if len(response.accesses) >= count:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} accesses listed")


@pytest.fixture(scope="module")
async def called(journalled: JournalledMesh) -> JournalledMesh:
    """Two calls about LEFEBVRE (by identity, first name only; by FranceConnect), one about MOREAU."""
    stub = cnaf_pb2_grpc.CnafServiceStub(journalled.channel)
    metadata = (
        ("authorization", f"Bearer {journalled.factory.token(sub='CCAS de Lyon')}"),
        ("x-recipient", RECIPIENT),
    )
    await stub.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(prenoms=["Alexis"])),
        metadata=metadata,
    )
    fc = cnaf_pb2.GetQuotientFamilialByFranceConnectRequest()
    fc.france_connect.access_token = "fc-lefebvre"
    await stub.GetQuotientFamilialByFranceConnect(fc, metadata=metadata)
    await stub.GetQuotientFamilialByIdentity(
        cnaf_pb2.GetQuotientFamilialByIdentityRequest(
            identite=identity("MOREAU", ["JEAN"], "M", (1958, 4, 3), "12202")
        ),
        metadata=metadata,
    )
    return journalled


async def test_the_citizen_sees_the_calls_about_them_and_nobody_else(called: JournalledMesh) -> None:
    response = await listed(called, "fc-lefebvre", 2)
    assert [(a.recipient, a.habilitation, a.api, a.outcome, a.code) for a in response.accesses] == [
        (RECIPIENT, "CCAS de Lyon", gateway_pb2.API_QUOTIENT_FAMILIAL, "OK", ""),
    ] * 2
    assert response.accesses[0].time.ToDatetime() >= response.accesses[1].time.ToDatetime()
    moreau = await listed(called, "fc-moreau", 1)
    assert len(moreau.accesses) == 1
    # The history calls themselves are not accesses by a public body.
    assert len((await accesses(called, "fc-lefebvre")).accesses) == 2


async def test_no_api_token_is_needed_and_a_bad_france_connect_token_is_refused(
    called: JournalledMesh,
) -> None:
    for token, status, code in (
        ("fc-inactive", grpc.StatusCode.UNAUTHENTICATED, "51502"),
        ("fc-expired", grpc.StatusCode.UNAUTHENTICATED, "51502"),
        ("", grpc.StatusCode.UNAUTHENTICATED, "51504"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await accesses(called, token)
        assert refused.value.code() == status
        assert rich_status(refused.value).api_code == code


async def test_the_history_is_rate_limited_per_citizen(
    redis_server: Any, postgres_server: Any, keys_dir: Any, journal_key: Any
) -> None:
    with fresh_database(postgres_server) as url:
        async with journalled_gateway(
            redis_server.url, keys_dir[0], url, journal_key, TokenFactory(keys_dir[1])
        ) as mesh:
            # One a second, and as the rate limiter's buckets go, one at once.
            await accesses(mesh, "fc-mercier")
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await accesses(mesh, "fc-mercier")
            assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert rich_status(limited.value).api_code == "00429"
            # Another citizen has a bucket of their own.
            await accesses(mesh, "fc-bernard")


async def test_the_history_over_rest_takes_the_france_connect_token_as_bearer(called: JournalledMesh) -> None:
    """`GET /mesh/v1/citizen/accesses`: the same history as the gRPC method, by bearer, with its errors."""
    expected = await listed(called, "fc-lefebvre", 2)
    async with httpx.AsyncClient(base_url=called.rest_url) as http:
        answer = await http.get("/mesh/v1/citizen/accesses", headers={"Authorization": "Bearer fc-lefebvre"})
        assert answer.status_code == 200
        assert answer.json() == {
            "accesses": [
                {
                    "time": access.time.ToDatetime(dt.UTC).isoformat(),
                    "recipient": RECIPIENT,
                    "habilitation": "CCAS de Lyon",
                    "api": "cnaf.quotient_familial",
                    "outcome": "OK",
                    "code": "",
                    # A gateway without a registry names neither: the console shows the SIRET.
                    "organisation_name": "",
                    "use_case": "",
                }
                for access in expected.accesses
            ]
        }
        assert "x-request-id" in answer.headers and "ratelimit-remaining" in answer.headers
        for headers in ({"Authorization": "Bearer fc-expired"}, {}):
            refused = await http.get("/mesh/v1/citizen/accesses", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["errors"][0]["code"] in {"51501", "51502", "51504"}


async def test_each_access_names_the_body_and_the_use_case_the_registry_holds_now(
    redis_server: Any, postgres_server: Any, journal_key: Any, keys_dir: Any, tmp_path: Any
) -> None:
    """Read from the registry's snapshot by the row's habilitation id: a name changed shows at once, the
    journal's rows unchanged."""
    with fresh_database(postgres_server) as journal_url, fresh_database(postgres_server) as registry_url:
        async with running_admin_api(admin_settings(registry_url, tmp_path, redis_server.url)) as api:
            created = await api.stub.CreateHabilitation(
                admin_pb2.CreateHabilitationRequest(
                    label="QF cantine",
                    siret=SIRET,
                    scopes=["cnaf_quotient_familial"],
                    organisation_name="Direction interministérielle du numérique",
                    use_case="Tarification de la restauration scolaire",
                ),
                metadata=api.as_admin(),
            )
            habilitation = created.habilitation.id
            issued = await api.stub.IssueToken(
                admin_pb2.IssueTokenRequest(habilitation_id=habilitation, days=1), metadata=api.as_admin()
            )
            async with journalled_gateway(
                redis_server.url,
                api.keys_dir,
                journal_url,
                journal_key,
                TokenFactory(keys_dir[1]),
                registry_database_url=registry_url,
                registry_change_delay_seconds=0.02,
                access_history_rate_per_second=1000,
            ) as mesh:
                fc = cnaf_pb2.GetQuotientFamilialByFranceConnectRequest()
                fc.france_connect.access_token = "fc-lefebvre"
                await cnaf_pb2_grpc.CnafServiceStub(mesh.channel).GetQuotientFamilialByFranceConnect(
                    fc, metadata=(("authorization", f"Bearer {issued.jwt}"), ("x-recipient", SIRET))
                )
                access = (await listed(mesh, "fc-lefebvre", 1)).accesses[0]
                assert (access.recipient, access.habilitation) == (SIRET, "QF cantine")
                assert access.organisation_name == "Direction interministérielle du numérique"
                assert access.use_case == "Tarification de la restauration scolaire"

                await api.stub.UpdateHabilitation(
                    admin_pb2.UpdateHabilitationRequest(id=habilitation, organisation_name="DINUM"),
                    metadata=api.as_admin(),
                )
                for _ in range(100):
                    access = (await accesses(mesh, "fc-lefebvre")).accesses[0]
                    if access.organisation_name == "DINUM":
                        break
                    await asyncio.sleep(0.05)
                assert access.organisation_name == "DINUM"
                assert access.habilitation == "QF cantine"
