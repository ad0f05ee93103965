"""The call boundary's request id, against a real server: a caller's id is taken only when a UUID.

Found by fuzzing the metadata: an id such as ``level:error event:forged`` went verbatim into
every log line and journal event of the call; and a plain one such as
``LEFEBVRE.ALEXIS.1982-12-27`` put a person's name and birth date there.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.conftest import LOG_FILE, running
from tests.rich_status import rich_status
from tests.runtime.test_metrics import INCONNU


async def echoed_request_id(request_id: str) -> str:
    """The request id a real server answers, in its trailers and its ErrorInfo, for a call that
    gave ``request_id`` (a refused call: one the server logs)."""
    async with running(CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await cnaf_pb2_grpc.CnafServiceStub(channel).GetQuotientFamilialByIdentity(
                cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=INCONNU),
                metadata=(("x-request-id", request_id),),
            )
    trailers = dict(cast("Any", refused.value.trailing_metadata()))
    assert rich_status(refused.value).error_info.metadata["request_id"] == trailers["x-request-id"]
    return str(trailers["x-request-id"])


@pytest.mark.parametrize(
    ("request_id", "kept"),
    [
        ("e5463a81-1fd2-4d93-82ef-30ebfcb09724", "e5463a81-1fd2-4d93-82ef-30ebfcb09724"),
        ("C929D9A4-953C-4F79-82C7-D1032FDD8645", "C929D9A4-953C-4F79-82C7-D1032FDD8645"),
        ("{e5463a81-1fd2-4d93-82ef-30ebfcb09724}", "e5463a81-1fd2-4d93-82ef-30ebfcb09724"),
    ],
)
async def test_a_uuid_is_kept_as_the_real_api_reads_it(request_id: str, kept: str) -> None:
    """Characters but letters, digits, _, - and @ dropped (as Rails reads it): a UUID left is the id."""
    assert await echoed_request_id(request_id) == kept


@pytest.mark.parametrize(
    "request_id",
    [
        "LEFEBVRE.ALEXIS.1982-12-27",
        "ticket-1234",
        "2024.05.17_batch-7",
        "level:error event:forged",
        "x" * 65,
        "a b",
        "a=b",
        'quote"d',
        "{json}",
        "ticket:1234",
        "%0a",
    ],
)
async def test_anything_else_is_replaced_by_a_fresh_uuid_in_answers_and_logs(request_id: str) -> None:
    echoed = await echoed_request_id(request_id)
    assert str(uuid.UUID(echoed)) == echoed
    logged = [json.loads(line) for line in LOG_FILE.read_text(encoding="utf-8").splitlines()]
    assert any(event.get("request_id") == echoed for event in logged)
    assert not any(request_id in json.dumps(event) for event in logged)


MALFORMED = "3d8f1a2b-6c4e-4f7a-9b1c-2e5d8a7f6c3b"


async def test_a_malformed_body_is_invalid_argument_00400() -> None:
    """Bytes that are no message of the method: INVALID_ARGUMENT 00400 with a field violation, not UNKNOWN."""
    async with running(CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))) as channel:
        send: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send(b"\xff\xff\xff", metadata=(("x-request-id", MALFORMED),))
    status = rich_status(refused.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "00400")
    assert status.error_info.metadata["request_id"] == MALFORMED
    assert status.violated_fields == {"request"}
    assert "\\xff" not in status.message and "Error" not in status.message
