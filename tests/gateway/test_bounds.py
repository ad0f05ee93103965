"""Out-of-range numbers in tokens, through a real gateway and a real Redis: refused alone, 00101.

Found by fuzzing the claims: a token with a rate limit above about 8,000,000 per
second made the rate-limit script fail in Redis, which opened the breaker for every
token; an ``exp`` of 1e19, 1e999 or NaN gave INTERNAL.
"""

from __future__ import annotations

import json
import time

import grpc
import jwt
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND, TOKEN_LIFETIME_MAX_SECONDS
from tests.gateway.conftest import Mesh
from tests.gateway.grpc.test_proxy import metadata, qf_request
from tests.gateway.tokens import TokenFactory
from tests.rich_status import rich_status


def raw_token(factory: TokenFactory, claims_json: str) -> str:
    """A token signed over exactly ``claims_json``: JSON literals such as 1e999 or NaN included."""
    key = factory.key
    return jwt.api_jws.PyJWS().encode(
        claims_json.encode(), key.private, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "JWT"}
    )


def claims_with(factory: TokenFactory, **literals: str) -> str:
    """Valid claims as JSON text, with some values replaced by raw JSON literals."""
    text = {name: json.dumps(value) for name, value in factory.claims().items()}
    text.update(literals)
    return "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in text.items()) + "}"


async def call(mesh: Mesh, token: str) -> str:
    """The outcome of a call with ``token``: OK, or the API Particulier code of the error."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    try:
        await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(f"Bearer {token}"))
    except grpc.aio.AioRpcError as error:
        return rich_status(error).api_code
    return "OK"


async def test_a_token_with_a_huge_rate_limit_is_refused_and_leaves_others_served(mesh: Mesh) -> None:
    """Above the bound, the token alone is 00101; the breaker stays closed for every other token."""
    for rate_limit in (8_000_000, 10**12, RATE_LIMIT_MAX_PER_SECOND + 1):
        assert await call(mesh, mesh.factory.token(rate_limit=rate_limit)) == "00101"
        assert await call(mesh, mesh.factory.token()) == "OK"
    assert await call(mesh, mesh.factory.token(rate_limit=RATE_LIMIT_MAX_PER_SECOND)) == "OK"


@pytest.mark.parametrize(
    "literals",
    [
        {"exp": "1e19"},
        {"exp": str(10**50)},
        {"exp": "1e999"},
        {"exp": "NaN"},
        {"exp": "-Infinity"},
        {"nbf": "NaN"},
        {"iat": "1e999"},
        {"iat": "-1", "nbf": "-1"},
        {"rate_limit": "1e999"},
        {"rate_limit": str(2**64)},
    ],
    ids=lambda literals: ",".join(f"{k}={v}" for k, v in literals.items()),
)
async def test_out_of_range_numbers_are_00101_not_internal(mesh: Mesh, literals: dict[str, str]) -> None:
    """Dates beyond the year 9999, infinities, NaN, negative dates: invalid token, nothing else."""
    token = raw_token(mesh.factory, claims_with(mesh.factory, **literals))
    assert await call(mesh, token) == "00101"
    assert await call(mesh, mesh.factory.token()) == "OK"


async def test_a_lifetime_beyond_the_bound_is_00101(mesh: Mesh) -> None:
    """The lifetime the admin CLI refuses to issue is refused at verification too."""
    now = int(time.time())
    too_long = mesh.factory.token(iat=now, nbf=now, exp=now + TOKEN_LIFETIME_MAX_SECONDS + 1)
    assert await call(mesh, too_long) == "00101"
    longest = mesh.factory.token(iat=now, nbf=now, exp=now + TOKEN_LIFETIME_MAX_SECONDS)
    assert await call(mesh, longest) == "OK"
