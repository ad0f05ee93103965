"""What a caller gets when grpcio itself refuses a call, before the mesh sees it: measured on a
real gateway, over raw HTTP/2, since no gRPC library sends such calls. The README's error table
states these answers; this test keeps it true.
"""

from __future__ import annotations

import asyncio
import base64

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from tests.gateway.conftest import Mesh
from tests.gateway.grpc.test_proxy import RECIPIENT, qf_request
from tests.raw_http2 import unary_call
from tests.rich_status import rich_status

PATH = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
INTERNAL = grpc.StatusCode.INTERNAL.value[0]


async def raw_call(mesh: Mesh, *replaced: tuple[bytes, bytes]) -> tuple[int | None, str, str]:
    """(grpc-status, grpc-message, API Particulier code or "") of a valid call with some headers
    added, or replaced when they have the name of one the call carries."""
    headers = {
        b"authorization": f"Bearer {mesh.factory.token()}".encode(),
        b"x-recipient": RECIPIENT.encode(),
        **dict(replaced),
    }
    answer = await asyncio.to_thread(
        unary_call, ("127.0.0.1", mesh.port), PATH, qf_request().SerializeToString(), list(headers.items())
    )
    return answer.grpc_status, answer.headers.get("grpc-message", ""), api_code(answer.headers)


def api_code(headers: dict[str, str]) -> str:
    """The code in the ErrorInfo of ``grpc-status-details-bin`` (base64 on the wire), or ""."""
    raw = headers.get("grpc-status-details-bin")
    if raw is None:
        return ""
    status = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.metadata["code"])
    return ""


async def test_a_well_formed_raw_call_is_served(mesh: Mesh) -> None:
    """The raw client itself is sound: without a bad header the call is answered OK."""
    assert await raw_call(mesh) == (0, "", "")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ((b"x-reci\x00pient", b"1"), "Illegal header key"),
        ((b"X-Request-Id", b"abc"), "Illegal header key"),
        ((b"grpc-timeout", b"abc"), "Error parsing 'grpc-timeout' metadata"),
        ((b"grpc-timeout", b""), "Error parsing 'grpc-timeout' metadata"),
        ((b"x-trace-bin", b"!!not base64!!"), "illegal base64 encoding"),
    ],
    ids=[
        "NUL in a name",
        "capital in a name",
        "grpc-timeout not a timeout",
        "grpc-timeout empty",
        "-bin not base64",
    ],
)
async def test_grpcio_refuses_before_the_mesh_with_a_bare_internal(
    mesh: Mesh, header: tuple[bytes, bytes], message: str
) -> None:
    """INTERNAL with grpcio's own message and no API Particulier code: the mesh never saw the call."""
    status, text, code = await raw_call(mesh, header)
    assert status == INTERNAL
    assert message in text
    assert code == ""


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ((b"x-recipient", b"1300252650\x000013"), "00210"),
        ((b"authorization", b"Bearer a\x00b.c.d"), "00101"),
        ((b"x-request-id", b"a\x00b"), "00401"),
    ],
    ids=["NUL in x-recipient", "NUL in authorization", "NUL in x-request-id (no UUID: 00401 on CNAV)"],
)
async def test_a_nul_byte_in_a_value_reaches_the_mesh_which_decides(
    mesh: Mesh, header: tuple[bytes, bytes], code: str
) -> None:
    """grpcio lets control bytes through in values: the mesh's own checks answer."""
    status, _, answered = await raw_call(mesh, header)
    assert answered == code
    assert (status == 0) == (code == "")


async def test_a_body_over_4_mib_is_resource_exhausted_by_grpcio(mesh: Mesh) -> None:
    """A request over grpcio's 4 MiB limit: RESOURCE_EXHAUSTED, no API Particulier code."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    request = qf_request()
    request.identite.nom_naissance = "A" * (4 * 1024 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetQuotientFamilialByIdentity(
            request,
            metadata=(("authorization", f"Bearer {mesh.factory.token()}"), ("x-recipient", RECIPIENT)),
        )
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Received message larger than max" in (refused.value.details() or "")
    with pytest.raises(AssertionError, match="no rich status"):
        rich_status(refused.value)
