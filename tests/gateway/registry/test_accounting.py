"""The journal and the usage of a registry token's call name its habilitation, besides the token.

An editor token's call also names its editor and the delegation its recipient picked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import psycopg
import redis.asyncio

from apiparticulier.admin.v1 import admin_pb2
from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from devstack.redis import RedisProcess
from gateway.journal.signing import generate
from gateway.usage import habilitation_counter, usage_key
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.journal.conftest import SigningKey, journalled_gateway
from tests.gateway.registry.conftest import SIRET, AdminApi
from tests.gateway.registry.test_hot_path import _code, _eventually
from tests.gateway.tokens import SigningKey as TokenKey
from tests.gateway.tokens import TokenFactory
from tests.people import LEFEBVRE_QUERY

_QF = "cnaf_quotient_familial"
_EDITOR_SIRET = "21756011100015"
"""The editor's own SIRET (Luhn-valid), not the body's."""


async def test_the_journal_row_and_the_usage_name_the_habilitation(
    admin_api: AdminApi,
    redis_server: RedisProcess,
    keys_dir: tuple[Path, TokenKey, TokenKey],
    tmp_path: Path,
) -> None:
    private, public = generate(tmp_path, "journal-signing")
    _, es, _ = keys_dir
    async with journalled_gateway(
        redis_server.url,
        admin_api.keys_dir,
        admin_api.database_url,  # the journal's schema beside the registry's, as make run has them
        SigningKey(private, public),
        TokenFactory(es),
        registry_database_url=admin_api.database_url,
        registry_change_delay_seconds=0.02,
    ) as mesh:
        created = await admin_api.stub.CreateHabilitation(
            admin_pb2.CreateHabilitationRequest(label="CCAS de Lyon", siret=SIRET, scopes=[_QF]),
            metadata=admin_api.as_admin(),
        )
        habilitation = created.habilitation.id
        issued = await admin_api.stub.IssueToken(
            admin_pb2.IssueTokenRequest(habilitation_id=habilitation), metadata=admin_api.as_admin()
        )
        cnaf = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)

        async def quotient() -> str:
            call = cnaf.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(f"Bearer {issued.jwt}"))
            return await _code(call)

        await _eventually(2, quotient, "OK")
        await quotient()

        async def journalled() -> str:
            async with await psycopg.AsyncConnection.connect(mesh.database_url) as conn:
                cursor = await conn.execute(
                    "SELECT DISTINCT habilitation_id, editor_id, delegation_id FROM journal.calls "
                    "WHERE token_id = %s AND status = 'OK'",
                    (issued.token.id,),
                )
                return repr(await cursor.fetchall())

        await _eventually(3, journalled, repr([(habilitation, None, None)]))
        store = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
        day = dt.datetime.now(dt.UTC).date().isoformat()
        expected = {"cnaf.quotient_familial|OK": "2"}
        try:
            # The two calls may be written by two flushes: wait for both, not for the first.
            for _ in range(50):
                counted = await store.hgetall(usage_key(habilitation_counter(habilitation), day))
                token_counted = await store.hgetall(usage_key(issued.token.id, day))
                if counted == token_counted == expected:
                    break
                await asyncio.sleep(0.1)
        finally:
            await store.aclose()
        assert counted == token_counted == expected


async def test_the_journal_row_of_an_editor_token_s_call_names_editor_delegation_and_habilitation(
    admin_api: AdminApi,
    redis_server: RedisProcess,
    keys_dir: tuple[Path, TokenKey, TokenKey],
    tmp_path: Path,
) -> None:
    """Over gRPC and REST, each call of the editor token for a body is journalled under that body's
    habilitation, with the editor and the delegation the recipient picked."""
    private, public = generate(tmp_path, "journal-signing")
    _, es, _ = keys_dir
    admin = admin_api.as_admin()
    async with journalled_gateway(
        redis_server.url,
        admin_api.keys_dir,
        admin_api.database_url,
        SigningKey(private, public),
        TokenFactory(es),
        registry_database_url=admin_api.database_url,
        registry_change_delay_seconds=0.02,
    ) as mesh:
        editor = (
            await admin_api.stub.CreateEditor(
                admin_pb2.CreateEditorRequest(siret=_EDITOR_SIRET, name="Logiciel"), metadata=admin
            )
        ).editor.id
        issued = await admin_api.stub.IssueEditorToken(
            admin_pb2.IssueEditorTokenRequest(editor_id=editor), metadata=admin
        )
        habilitation = (
            await admin_api.stub.CreateHabilitation(
                admin_pb2.CreateHabilitationRequest(label="CCAS", siret=SIRET, scopes=[_QF]), metadata=admin
            )
        ).habilitation.id
        delegation = (
            await admin_api.stub.CreateDelegation(
                admin_pb2.CreateDelegationRequest(editor_id=editor, habilitation_id=habilitation),
                metadata=admin,
            )
        ).delegation.id
        cnaf = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)

        async def over_grpc() -> str:
            call = cnaf.GetQuotientFamilialByIdentity(
                qf_request(), metadata=metadata(f"Bearer {issued.jwt}", SIRET)
            )
            return await _code(call)

        await _eventually(2, over_grpc, "OK")
        async with httpx.AsyncClient(base_url=mesh.rest_url, timeout=10) as http:
            over_rest = await http.get(
                "/v3/dss/quotient_familial/identite",
                params={**LEFEBVRE_QUERY, "recipient": SIRET},
                headers={"Authorization": f"Bearer {issued.jwt}"},
            )
        assert over_rest.status_code == 200, over_rest.text

        async def journalled() -> str:
            async with await psycopg.AsyncConnection.connect(mesh.database_url) as conn:
                cursor = await conn.execute(
                    "SELECT habilitation_id, editor_id, delegation_id, recipient FROM journal.calls "
                    "WHERE token_id = %s AND status = 'OK' ORDER BY seq",
                    (issued.token.id,),
                )
                return repr(await cursor.fetchall())

        await _eventually(3, journalled, repr([(habilitation, editor, delegation, SIRET)] * 2))
